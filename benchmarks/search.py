"""MCTS throughput of our Numba engine, with a stub network and with the default MLP (and mctx's,
and LightZero's C++ tree).

    python -m benchmarks.search            # the full table (a few minutes on 2 cores)
    python -m benchmarks.search --quick    # B in {1, 256}, 50 simulations, 9 and 362 actions
    python -m benchmarks.search --engines ours mlp   # then: --engines mctx
    python -m benchmarks.search --engines ours lightzero --lightzero-python VENV/bin/python \\
        --batches 256 --sims 50 --actions 9     # against LightZero's C++ tree, in one run
    python -m benchmarks.search --engines ours policy --baseline OLD_CHECKOUT --cpu-time \\
        --batches 256 --sims 50 --actions 9   # before and after, alternating in one run

One table from one run: for B roots, S simulations and A actions, tree-simulations per second
(B * S / seconds per search) and microseconds per simulation per tree, median of ``--repeats``
searches after a warm-up, for:

- ``ours/muzero``, ``ours/gumbel``: our engine with a cheap stub recurrent function (outputs
  precomputed, next hidden state = the gathered one): the tree's cost alone;
- ``ours+mlp/...``: the whole search with the default ``MlpPolicy`` network (hidden 64,
  net_arch [128, 128], support 20), torch on the CPU; the ``tree %`` column is the share of
  the search time spent outside the network call;
- ``ours+policy/...``: the same with the library's own ``MlpPolicy`` (8 inputs) and its network
  step as self-play calls it (``recurrent_numpy``, traced), timed as ``benchmarks.profile`` times
  it (``--engines policy``);
- ``mctx/muzero``, ``mctx/gumbel``: mctx's policies with an equally cheap jitted recurrent
  function on the CPU, compile time reported apart (only if jax and mctx import);
- ``lightzero/ctree``, ``lightzero/loop``: LightZero's C++ MuZero tree (``lzero.mcts.ctree``, as
  ``MuZeroMCTSCtree.search`` drives it) with the same kind of stub: ``ctree`` counts only its
  two calls per simulation (``batch_traverse``, ``batch_backpropagate``) and the roots'
  ``prepare``, ``loop`` also the Python around them (gathering the leaves' hidden states, the
  ``tolist`` conversions the calls take). LightZero needs its own environment (numpy < 2):
  ``--lightzero-python`` names that environment's python, which runs this file as a worker.

``--baseline CHECKOUT`` (a copy of another version of this repository) runs that version's
search beside ours on the same inputs, the two alternating search by search, as ``base:`` rows:
a before/after comparison from one run. ``--cpu-time`` times with the thread's CPU clock instead
of the wall clock: on a machine shared with other work, waits for a core then no longer count
(torch runs in the same thread with ``--torch-threads 1``). Then the fresh-process time to a
first search (Numba's cached kernels, no compile) and the memory of the largest tree. That the
engine and the plain-Python reference search agree is checked by the tests
(``tests/test_search.py``), not here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HIDDEN = 64
ENGINES = ("ours", "mlp", "policy", "mctx", "lightzero")
LABELS = {"stub": "ours", "mlp": "ours+mlp", "policy": "ours+policy"}
CLOCK = {"now": time.perf_counter}  # --cpu-time: time.thread_time


def searches() -> dict[str, Callable]:
    """Our two searches (imported here: the LightZero worker runs without our package)."""
    from muzero_agents.search import gumbel_muzero_search, muzero_search

    return {"muzero": muzero_search, "gumbel": gumbel_muzero_search}


def stub_recurrent(batch: int, num_actions: int, seed: int = 0) -> Callable:
    """A cheap batched recurrent function cycling through 8 precomputed random outputs."""
    rng = np.random.default_rng(seed)
    outputs = [
        (
            rng.uniform(-1, 1, batch).astype(np.float32),
            rng.uniform(-1, 1, batch).astype(np.float32),
            rng.standard_normal((batch, num_actions)).astype(np.float32),
        )
        for _ in range(8)
    ]
    state = {"i": 0}

    def recurrent(embedding: Any, action: np.ndarray) -> tuple:
        state["i"] = (state["i"] + 1) % 8
        reward, value, logits = outputs[state["i"]]
        return reward, value, logits, embedding

    return recurrent


def stub_roots(batch: int, num_actions: int, seed: int = 1) -> tuple:
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((batch, num_actions)).astype(np.float32),
        rng.uniform(-1, 1, batch).astype(np.float32),
        rng.random((batch, HIDDEN), dtype=np.float32),
    )


def mlp_search_inputs(batch: int, num_actions: int, obs_dim: int = 8) -> tuple:
    """Roots and a timed recurrent function from the default MlpPolicy-sized network."""
    import torch

    from muzero_agents.networks import MlpMuZeroNetwork
    from muzero_agents.support import support_to_scalar

    support = 20
    torch.manual_seed(0)
    net = MlpMuZeroNetwork(obs_dim, num_actions, support).eval()
    for p in net.parameters():  # random heads, so the tree is not uniform
        torch.nn.init.normal_(p, std=0.1)
    timer = {"seconds": 0.0}
    now = CLOCK["now"]

    @torch.inference_mode()
    def recurrent(hidden: torch.Tensor, action: np.ndarray) -> tuple:
        start = now()
        out = net.recurrent_inference(hidden, torch.from_numpy(action))
        result = (
            support_to_scalar(out.reward_logits, support).numpy(),
            support_to_scalar(out.value_logits, support).numpy(),
            out.policy_logits.numpy(),
            out.hidden,
        )
        timer["seconds"] += now() - start
        return result

    with torch.inference_mode():
        out = net.initial_inference(torch.randn(batch, obs_dim))
        value = support_to_scalar(out.value_logits, support).numpy()
        logits = out.policy_logits.numpy().copy()
        hidden = out.hidden.clone()
    return (logits, value, hidden), recurrent, timer


def median_seconds(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm-up: compile (first time only) and allocate the cached tree
    now = CLOCK["now"]
    times = []
    for _ in range(repeats):
        start = now()
        run()
        times.append(now() - start)
    return statistics.median(times)


def policy_search_inputs(batch: int, num_actions: int, obs_dim: int = 8) -> tuple:
    """Roots and a timed recurrent function from the library's ``MlpPolicy``: its network step
    as self-play calls it (``recurrent_numpy``, traced), timed as ``benchmarks.profile`` times it."""
    import torch
    from gymnasium import spaces

    from muzero_agents.policies import MuZeroPolicy

    torch.manual_seed(0)
    space = spaces.Box(-1.0, 1.0, (obs_dim,), np.float32)
    policy = MuZeroPolicy(space, spaces.Discrete(num_actions), lambda _: 1e-3)
    policy.set_training_mode(False)
    observations = np.random.default_rng(0).uniform(-1, 1, (batch, obs_dim)).astype(np.float32)
    with torch.inference_mode():
        hidden, value, logits = policy.initial_inference_numpy(observations)
    timer = {"seconds": 0.0}
    now = CLOCK["now"]

    def recurrent(hidden: Any, action: np.ndarray) -> tuple:
        start = now()
        result = policy.recurrent_numpy(hidden, action)
        timer["seconds"] += now() - start
        return result

    return (logits, value, hidden), recurrent, timer


def search_inputs(kind: str, batch: int, num_actions: int) -> tuple:
    """(roots, recurrent function, network timer or None) for a row kind."""
    if kind == "mlp":
        return mlp_search_inputs(batch, num_actions)
    if kind == "policy":
        return policy_search_inputs(batch, num_actions)
    return stub_roots(batch, num_actions), stub_recurrent(batch, num_actions), None


def bench_ours(
    name: str, batch: int, sims: int, num_actions: int, repeats: int, kind: str, baseline: Any = None
) -> list[dict]:
    """kind: "stub" (cheap Python stub: the tree alone), "mlp" (the default MLP network) or
    "policy" (MlpPolicy's traced step). With ``baseline`` (another version's search package),
    its searches alternate with ours on the same inputs and get rows of their own."""
    roots, recurrent, timer = search_inputs(kind, batch, num_actions)
    engines = {"": searches()[name]}
    if baseline is not None:
        engines["base:"] = getattr(baseline, f"{name}_search" if name == "muzero" else "gumbel_muzero_search")
    kwargs = {"rng": np.random.default_rng(0)}
    if name == "muzero":
        kwargs.update(dirichlet_fraction=0.25, temperature=1.0)
    runs = {
        prefix: (lambda search=search: search(*roots, recurrent, sims, **kwargs))
        for prefix, search in engines.items()
    }
    for run in runs.values():
        run()  # warm-up: compile (first time only) and allocate the cached tree
    times: dict[str, list[float]] = {prefix: [] for prefix in runs}
    shares: dict[str, list[float]] = {prefix: [] for prefix in runs}
    order = list(runs)
    for repeat in range(repeats):
        for prefix in order if repeat % 2 == 0 else order[::-1]:
            network_before = timer["seconds"] if timer else 0.0
            start = CLOCK["now"]()
            runs[prefix]()
            seconds = CLOCK["now"]() - start
            times[prefix].append(seconds)
            if timer is not None:
                shares[prefix].append(1.0 - (timer["seconds"] - network_before) / seconds)
    rows = []
    for prefix in runs:
        row = {"engine": f"{prefix}{LABELS[kind]}/{name}", "seconds": statistics.median(times[prefix])}
        if timer is not None:  # share of time outside the network, the median over the searches
            row["tree_share"] = statistics.median(shares[prefix])
        rows.append(row)
    return rows


def load_baseline(checkout: str) -> Any:
    """Another version's search package (``CHECKOUT/muzero_agents/search``), imported beside ours
    as ``baseline_search``: a copy whose imports of itself are renamed (its Numba cache lives
    in the copy)."""
    import importlib
    import shutil
    import tempfile

    source = Path(checkout) / "muzero_agents" / "search"
    root = Path(tempfile.mkdtemp(prefix="search-baseline-"))
    shutil.copytree(source, root / "baseline_search", ignore=shutil.ignore_patterns("__pycache__"))
    for path in (root / "baseline_search").glob("*.py"):
        path.write_text(path.read_text().replace("muzero_agents.search", "baseline_search"))
    sys.path.insert(0, str(root))
    return importlib.import_module("baseline_search")


def mctx_runner(batch: int, sims: int, num_actions: int, gumbel: bool) -> tuple[Callable, float]:
    """A jitted mctx search with a cheap recurrent function; returns (run, compile seconds)."""
    import jax
    import jax.numpy as jnp
    import mctx

    key = jax.random.PRNGKey(0)
    logits = jax.random.normal(key, (batch, num_actions))
    embedding = jnp.zeros((batch, HIDDEN))
    root = mctx.RootFnOutput(prior_logits=logits, value=jnp.zeros(batch), embedding=embedding)

    def recurrent_fn(params, rng_key, action, emb):
        out = mctx.RecurrentFnOutput(
            reward=jnp.full(batch, 0.1),
            discount=jnp.full(batch, 0.997),
            prior_logits=logits,
            value=jnp.full(batch, 0.2),
        )
        return out, emb

    policy = mctx.gumbel_muzero_policy if gumbel else mctx.muzero_policy

    @jax.jit
    def search(rng_key):
        return policy(
            params=(), rng_key=rng_key, root=root, recurrent_fn=recurrent_fn, num_simulations=sims
        ).action

    start = time.perf_counter()
    search(key).block_until_ready()
    compile_seconds = time.perf_counter() - start
    return (lambda: search(key).block_until_ready()), compile_seconds


def bench_mctx(name: str, batch: int, sims: int, num_actions: int, repeats: int) -> dict:
    run, compile_seconds = mctx_runner(batch, sims, num_actions, name == "gumbel")
    return {"engine": f"mctx/{name}", "seconds": median_seconds(run, repeats), "compile": compile_seconds}


def lightzero_tree() -> Any:
    """LightZero's compiled MuZero tree (``lzero.mcts.ctree.ctree_muzero.mz_tree``), loaded from
    its file: importing ``lzero`` itself would import torch and the rest of LightZero."""
    import importlib.util

    spec = importlib.util.find_spec("lzero")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("lzero is not installed in this environment")
    folder = Path(spec.submodule_search_locations[0]) / "mcts" / "ctree" / "ctree_muzero"
    path = next(p for p in folder.iterdir() if p.name.startswith("mz_tree.") and p.suffix in (".so", ".pyd"))
    module_spec = importlib.util.spec_from_file_location("mz_tree", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def lightzero_search(tree: Any, batch: int, sims: int, num_actions: int, inputs: dict) -> tuple[float, float]:
    """One search as LightZero's ``MuZeroMCTSCtree.search`` runs it (not a board game: to_play
    -1), with stub outputs: (seconds in all, seconds in the tree's own calls)."""
    now = CLOCK["now"]
    to_play = [-1] * batch
    start = now()
    roots = tree.Roots(batch, inputs["legal"])
    roots.prepare(0.25, inputs["noises"], [0.0] * batch, inputs["logits"], to_play)
    stats = tree.MinMaxStatsList(batch)
    stats.set_delta(0.01)
    in_tree = now() - start
    states = [inputs["hidden"]]
    for simulation in range(sims):
        mark = now()
        results = tree.ResultsWrapper(num=batch)
        in_path, in_batch, actions, virtual_to_play = tree.batch_traverse(
            roots, 19652, 1.25, 0.997, stats, results, to_play
        )
        in_tree += now() - mark
        gathered = np.asarray([states[x][y] for x, y in zip(in_path, in_batch)])
        np.asarray(actions)  # the network's input
        reward, value, logits = inputs["outputs"][simulation % len(inputs["outputs"])]
        states.append(gathered)  # stub: the next hidden state is the gathered one
        rewards, values, logits = reward.tolist(), value.tolist(), logits.tolist()
        mark = now()
        tree.batch_backpropagate(
            simulation + 1, 0.997, rewards, values, logits, stats, results, virtual_to_play
        )
        in_tree += now() - mark
    mark = now()
    roots.get_distributions()
    roots.get_values()
    end = now()
    return end - start, in_tree + end - mark


def lightzero_worker(batch: int, sims: int, num_actions: int, repeats: int) -> dict:
    """Median (loop, ctree) seconds of ``repeats`` LightZero searches after a warm-up."""
    tree = lightzero_tree()
    rng = np.random.default_rng(0)
    logits, _, hidden = stub_roots(batch, num_actions)
    inputs = {
        "legal": [list(range(num_actions)) for _ in range(batch)],
        "noises": [rng.dirichlet([0.3] * num_actions).astype(np.float32).tolist() for _ in range(batch)],
        "logits": logits.tolist(),
        "hidden": hidden,
        "outputs": [
            (
                rng.uniform(-1, 1, batch).astype(np.float32),
                rng.uniform(-1, 1, batch).astype(np.float32),
                rng.standard_normal((batch, num_actions)).astype(np.float32),
            )
            for _ in range(8)
        ],
    }
    lightzero_search(tree, batch, sims, num_actions, inputs)
    runs = [lightzero_search(tree, batch, sims, num_actions, inputs) for _ in range(repeats)]
    return {"loop": statistics.median(r[0] for r in runs), "ctree": statistics.median(r[1] for r in runs)}


def bench_lightzero(batch: int, sims: int, num_actions: int, args: argparse.Namespace) -> list[dict]:
    """The LightZero rows, measured by this file run as a worker in LightZero's environment."""
    command = [args.lightzero_python, str(Path(__file__).resolve()), "--lightzero-worker"]
    command += ["--batches", str(batch), "--sims", str(sims), "--actions", str(num_actions)]
    command += ["--repeats", str(args.repeats)] + (["--cpu-time"] if args.cpu_time else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    seconds = json.loads(out.strip().splitlines()[-1])
    return [{"engine": f"lightzero/{part}", "seconds": seconds[part]} for part in ("ctree", "loop")]


def first_search_seconds() -> tuple[float, float]:
    """(import seconds, first-search seconds) in a fresh process, kernels already cached."""
    code = (
        "import time; t0 = time.perf_counter();"
        "import numpy as np; from muzero_agents.search import muzero_search;"
        "t1 = time.perf_counter();"
        "muzero_search(np.zeros((4, 9), np.float32), np.zeros(4, np.float32),"
        " np.zeros((4, 8), np.float32), lambda e, a: (np.zeros(4, np.float32),"
        " np.zeros(4, np.float32), np.zeros((4, 9), np.float32), e), 10);"
        "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def have_mctx() -> bool:
    try:
        import jax  # noqa: F401
        import mctx  # noqa: F401
    except ImportError:
        return False
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])  # the first paragraph
    parser.add_argument("--quick", action="store_true", help="fewer configurations")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--engines",
        nargs="+",
        default=list(ENGINES),
        choices=ENGINES,
        help="which rows to measure (run mctx in its own process: JAX's idle "
        "threads can slow whatever shares its cores)",
    )
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument(
        "--mctx-max-sims",
        type=int,
        default=50,
        help="mctx rows only up to this many simulations (its muzero_policy "
        "takes tens of seconds per search at B=256, 200 sims, 362 actions)",
    )
    parser.add_argument("--batches", type=int, nargs="*", help="override the B values")
    parser.add_argument("--sims", type=int, nargs="*", help="override the simulation counts")
    parser.add_argument("--actions", type=int, nargs="*", help="override the action counts")
    parser.add_argument(
        "--cpu-time", action="store_true", help="time with the thread's CPU clock (a shared machine)"
    )
    parser.add_argument(
        "--lightzero-python",
        help="python of an environment with lightzero installed (numpy < 2), for the lightzero rows",
    )
    parser.add_argument("--lightzero-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--baseline",
        help="a checkout of another version: its search alternates with ours in every row (base: rows)",
    )
    return parser.parse_args(argv)


def measure_rows(batch: int, sims: int, num_actions: int, args: argparse.Namespace, use_mctx: bool) -> list:
    """The table's rows for one configuration, in the order of ``ENGINES``."""
    pairs = (("stub", "ours"), ("mlp", "mlp"), ("policy", "policy"))
    kinds = [kind for kind, engine in pairs if engine in args.engines]
    names = ("muzero", "gumbel")
    rows = [
        row
        for kind in kinds
        for name in names
        for row in bench_ours(name, batch, sims, num_actions, args.repeats, kind, args.baseline_module)
    ]
    if use_mctx and sims <= args.mctx_max_sims:
        rows += [bench_mctx(name, batch, sims, num_actions, args.repeats) for name in names]
    if "lightzero" in args.engines and args.lightzero_python:
        rows += bench_lightzero(batch, sims, num_actions, args)
    return rows


def print_row(row: dict, batch: int, sims: int, num_actions: int) -> None:
    rate = batch * sims / row["seconds"]
    share = f"{100 * row['tree_share']:.0f}" if "tree_share" in row else ""
    comp = f"{row['compile']:.2f}" if "compile" in row else ""
    print(
        f"{row['engine']:<22}{batch:>5}{sims:>6}{num_actions:>5}{rate:>14,.0f}"
        f"{1e6 / rate:>13.2f}{share:>8}{comp:>11}",
        flush=True,
    )


def print_costs() -> None:
    """The fresh-process time to a first search and the memory of the largest tree."""
    import_s, first_s = first_search_seconds()
    print(f"fresh process: import {import_s:.2f} s, first search {first_s:.3f} s (cached kernels)")
    from muzero_agents.search._tree import new_tree

    tree = new_tree(256, 201, 362)
    print(
        f"tree memory at B=256, 200 simulations, 362 actions: {tree.nbytes / 2**30:.3f} GiB "
        f"(+ hidden states: 256 x 201 x {HIDDEN} float32 = "
        f"{256 * 201 * HIDDEN * 4 / 2**30:.3f} GiB)"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.cpu_time:
        CLOCK["now"] = time.thread_time
    if args.lightzero_worker:
        print(json.dumps(lightzero_worker(args.batches[0], args.sims[0], args.actions[0], args.repeats)))
        return
    if "mlp" in args.engines or "policy" in args.engines:
        import torch

        torch.set_num_threads(args.torch_threads)
    args.baseline_module = load_baseline(args.baseline) if args.baseline else None
    batches, sims_list, actions = (1, 16, 256), (50, 200), (2, 9, 362)
    if args.quick:
        batches, sims_list, actions = (1, 256), (50,), (9, 362)
    batches = tuple(args.batches or batches)
    sims_list = tuple(args.sims or sims_list)
    actions = tuple(args.actions or actions)
    use_mctx = "mctx" in args.engines and have_mctx()
    print(
        f"{'engine':<22}{'B':>5}{'sims':>6}{'A':>5}{'tree-sims/s':>14}{'us/sim/tree':>13}"
        f"{'tree %':>8}{'compile s':>11}"
    )
    for batch in batches:
        for sims in sims_list:
            for num_actions in actions:
                for row in measure_rows(batch, sims, num_actions, args, use_mctx):
                    print_row(row, batch, sims, num_actions)
    if "mctx" in args.engines and not use_mctx:
        print("mctx: not measured (install jax and mctx, the 'compare' extra, to include it)")
    if "lightzero" in args.engines and not args.lightzero_python:
        print("lightzero: not measured (--lightzero-python names an environment with lightzero)")
    if "ours" in args.engines:
        print_costs()


if __name__ == "__main__":
    main()
