# One-command set-up: `make test` and `make demo` create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
export OMP_NUM_THREADS ?= 1

.PHONY: install engines test test-all demo bench-cartpole lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,games,bench,atari,minatar]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Real game engines from Debian (GTP, UCI, xshogi) for the engine-opponent tests; installed in
# /usr/games. Without root or network the engine tests skip and say which package is missing.
ENGINES := gnugo stockfish gnushogi
engines:
	@missing=""; for e in $(ENGINES); do command -v $$e >/dev/null || test -x /usr/games/$$e || missing="$$missing $$e"; done; \
	if [ -n "$$missing" ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	  || echo "could not install$$missing; their tests will skip"; fi

test: install engines
	$(PY) -m pytest -q --timeout=600

test-all: install
	$(PY) -m pytest -q -m "slow or not slow"

# The smoke suite: MuZero and PPO on CartPole-v1 with progress bars, then the table and the
# paths of the report and plots.
demo: install
	$(PY) -m benchmarks run --suite smoke

bench-cartpole: install
	$(PY) -m benchmarks.cartpole --seeds 3

lint: install
	$(VENV)/bin/ruff check muzero_agents wrappers benchmarks tests

clean:
	rm -rf $(VENV) .pytest_cache
