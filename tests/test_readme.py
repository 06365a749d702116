"""The README's examples run, and the commands and files it names exist.

Every ```python block runs in a fresh namespace, inside a temporary working directory (so the
files it saves land there). Budgets are cut down so that the whole file takes well under a minute:
before a block runs, each literal given to one of the keywords in ``TEST_BUDGETS``
(``total_timesteps=5_000``, ``"num_simulations": 100``, ...) is capped at the value listed
there. The examples keep the budgets a user would run; only their size changes here. For the
cap to apply, every ``learn`` call in the README passes ``total_timesteps=`` by keyword (checked
below).

```bash blocks do not run. Each ``python -m benchmarks...`` module named anywhere in the README
must be importable, each suite given to ``--suite`` must exist, and each ``make`` target must be
in the Makefile. Every relative link in the README and in docs/*.md must point to a file.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

TEST_BUDGETS = {
    "total_timesteps": 100,
    "n_eval_episodes": 1,
    "num_simulations": 8,
    "eval_freq": 100,
    "save_freq": 100,
    "learning_starts": 50,
}
"""Keyword -> the largest literal value a README example runs with under test."""

OPTIONAL_PACKAGES = {
    "ale_py",
    "minatar",
    "pettingzoo",
    "sb3_contrib",
    "tensorboard",
    "chess",
    "cshogi",
    "pygame",
}
"""Top-level packages of the optional extras: an example that needs a missing one is skipped."""

ENGINES = ("gnugo", "stockfish", "gnushogi")


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the README's fenced code blocks in ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def capped(code: str) -> str:
    """``code`` with every literal budget in ``TEST_BUDGETS`` capped (``name=N`` or ``"name": N``)."""
    names = "|".join(TEST_BUDGETS)
    pattern = (
        rf"(?P<head>\b(?P<keyword>{names})\s*=\s*|[\"'](?P<key>{names})[\"']\s*:\s*)(?P<value>\d[\d_]*)\b"
    )

    def cap(match: re.Match) -> str:
        name = match.group("keyword") or match.group("key")
        value = int(match.group("value").replace("_", ""))
        return f"{match.group('head')}{min(value, TEST_BUDGETS[name])}"

    return re.sub(pattern, cap, code)


def missing_engine(code: str) -> str | None:
    """The first game engine ``code`` plays against whose binary is not installed, if any."""
    for engine in ENGINES:
        named = re.search(rf"[\"']{engine}[\"']", code)
        if named and not (shutil.which(engine) or Path("/usr/games", engine).exists()):
            return engine
    return None


README_TEXT = README.read_text()
PYTHON_BLOCKS = fenced_blocks(README_TEXT, "python")


def block_id(code: str) -> str:
    first = next((line for line in code.splitlines() if line and not line.startswith(("import", "from"))), "")
    return first[:40]


def test_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 10, "the README lost its examples"


def test_some_example_takes_gradient_steps_under_test():
    """At least one example starts learning within the capped budget, so training runs too."""
    starts = [
        int(v.replace("_", "")) for v in re.findall(r"learning_starts=(\d[\d_]*)", "".join(PYTHON_BLOCKS))
    ]
    assert any(
        min(start, TEST_BUDGETS["learning_starts"]) < TEST_BUDGETS["total_timesteps"] for start in starts
    )


def test_budgets_are_capped():
    code = 'm.learn(total_timesteps=5_000)\nMuZero(play_kwargs={"num_simulations": 100}, num_simulations=50)'
    assert (
        capped(code)
        == 'm.learn(total_timesteps=100)\nMuZero(play_kwargs={"num_simulations": 8}, num_simulations=8)'
    )
    assert (
        capped("evaluate_policy(model, env, n_eval_episodes=1)")
        == "evaluate_policy(model, env, n_eval_episodes=1)"
    )
    assert capped("x = 5_000  # total_timesteps") == "x = 5_000  # total_timesteps"


def test_every_learn_call_passes_total_timesteps_by_keyword():
    for code in PYTHON_BLOCKS:
        for call in re.findall(r"\.learn\(([^)]*)", code):
            assert call.strip().startswith("total_timesteps="), (
                f"learn({call}...) must pass total_timesteps= first"
            )


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=[block_id(code) for code in PYTHON_BLOCKS])
def test_python_block_runs(code, tmp_path, monkeypatch):
    engine = missing_engine(code)
    if engine:
        pytest.skip(f"{engine} is not installed (Debian package {engine})")
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAY_worker_niceness", "0")  # Ray's workers at the tests' priority
    try:
        exec(compile(capped(code), "README.md", "exec"), {"__name__": "__readme__"})
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] in OPTIONAL_PACKAGES:
            pytest.skip(f"optional package missing: {error.name}")
        raise
    finally:  # a block that started Ray leaves no cluster behind for the later tests
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()


def benchmark_modules(text: str) -> set[str]:
    return set(re.findall(r"python -m (benchmarks(?:\.\w+)*)", text))


def test_benchmark_modules_named_in_readme_exist(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    modules = benchmark_modules(README_TEXT)
    assert "benchmarks" in modules and "benchmarks.cartpole" in modules
    for module in sorted(modules):
        name = module if module != "benchmarks" else "benchmarks.__main__"
        assert importlib.util.find_spec(name) is not None, (
            f"README names `python -m {module}`, which does not exist"
        )


def test_suites_named_in_readme_exist(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.harness.suites import SUITES

    named = set(re.findall(r"--suite (\w+)", README_TEXT))
    assert named, "the README names no suite"
    assert named <= set(SUITES), f"unknown suites in the README: {sorted(named - set(SUITES))}"


def test_make_targets_named_in_readme_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"(?:^|`)make ([\w-]+)", README_TEXT, flags=re.MULTILINE))
    assert {"demo", "test"} <= named
    assert named <= targets, f"make targets missing from the Makefile: {sorted(named - targets)}"


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_relative_links_point_to_files(page):
    path = README if page == "README.md" else ROOT / "docs" / page
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    broken = [link for link in links if "://" not in link and not (path.parent / link).exists()]
    assert not broken, f"{page} links to missing files: {broken}"
