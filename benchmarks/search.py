"""MCTS throughput of our Numba engine, with a stub network and with the default MLP (and mctx's).

    python -m benchmarks.search            # the full table (a few minutes on 2 cores)
    python -m benchmarks.search --quick    # B in {1, 256}, 50 simulations, 9 and 362 actions
    python -m benchmarks.search --engines ours mlp   # then: --engines mctx

One table from one run: for B roots, S simulations and A actions, tree-simulations per second
(B * S / seconds per search) and microseconds per simulation per tree, median of ``--repeats``
searches after a warm-up, for:

- ``ours/muzero``, ``ours/gumbel``: our engine with a cheap stub recurrent function (outputs
  precomputed, next hidden state = the gathered one): the tree's cost alone;
- ``ours+mlp/...``: the whole search with the default ``MlpPolicy`` network (hidden 64,
  net_arch [128, 128], support 20), torch on the CPU; the ``tree %`` column is the share of
  the search time spent outside the network call;
- ``mctx/muzero``, ``mctx/gumbel``: mctx's policies with an equally cheap jitted recurrent
  function on the CPU, compile time reported apart (only if jax and mctx import).

Then the fresh-process time to a first search (Numba's cached kernels, no compile) and the
memory of the largest tree. That the engine and the plain-Python reference search agree is
checked by the tests (``tests/test_search.py``), not here.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from muzero_agents.search import gumbel_muzero_search, muzero_search
from muzero_agents.search._tree import new_tree

HIDDEN = 64
SEARCHES = {"muzero": muzero_search, "gumbel": gumbel_muzero_search}
ENGINES = ("ours", "mlp", "mctx")
LABELS = {"stub": "ours", "mlp": "ours+mlp"}


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

    @torch.inference_mode()
    def recurrent(hidden: torch.Tensor, action: np.ndarray) -> tuple:
        start = time.perf_counter()
        out = net.recurrent_inference(hidden, torch.from_numpy(action))
        result = (
            support_to_scalar(out.reward_logits, support).numpy(),
            support_to_scalar(out.value_logits, support).numpy(),
            out.policy_logits.numpy(),
            out.hidden,
        )
        timer["seconds"] += time.perf_counter() - start
        return result

    with torch.inference_mode():
        out = net.initial_inference(torch.randn(batch, obs_dim))
        value = support_to_scalar(out.value_logits, support).numpy()
        logits = out.policy_logits.numpy().copy()
        hidden = out.hidden.clone()
    return (logits, value, hidden), recurrent, timer


def median_seconds(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm-up: compile (first time only) and allocate the cached tree
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_ours(name: str, batch: int, sims: int, num_actions: int, repeats: int, kind: str) -> dict:
    """kind: "stub" (cheap Python stub: the tree alone) or "mlp" (the default MLP network)."""
    search = SEARCHES[name]
    timer = None
    if kind == "mlp":
        roots, recurrent, timer = mlp_search_inputs(batch, num_actions)
    else:
        roots, recurrent = stub_roots(batch, num_actions), stub_recurrent(batch, num_actions)
    kwargs = {"rng": np.random.default_rng(0)}
    if name == "muzero":
        kwargs.update(dirichlet_fraction=0.25, temperature=1.0)

    def run() -> None:
        search(*roots, recurrent, sims, **kwargs)

    row = {"engine": f"{LABELS[kind]}/{name}", "seconds": median_seconds(run, repeats)}
    if timer is not None:  # share of time outside the network, measured over one more search
        timer["seconds"] = 0.0
        start = time.perf_counter()
        run()
        total = time.perf_counter() - start
        row["tree_share"] = 1.0 - timer["seconds"] / total
    return row


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    return parser.parse_args(argv)


def measure_rows(batch: int, sims: int, num_actions: int, args: argparse.Namespace, use_mctx: bool) -> list:
    """The table's rows for one configuration, in the order of ``ENGINES``."""
    kinds = [kind for kind, engine in (("stub", "ours"), ("mlp", "mlp")) if engine in args.engines]
    rows = [
        bench_ours(name, batch, sims, num_actions, args.repeats, kind) for kind in kinds for name in SEARCHES
    ]
    if use_mctx and sims <= args.mctx_max_sims:
        rows += [bench_mctx(name, batch, sims, num_actions, args.repeats) for name in SEARCHES]
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
    tree = new_tree(256, 201, 362)
    print(
        f"tree memory at B=256, 200 simulations, 362 actions: {tree.nbytes / 2**30:.3f} GiB "
        f"(+ hidden states: 256 x 201 x {HIDDEN} float32 = "
        f"{256 * 201 * HIDDEN * 4 / 2**30:.3f} GiB)"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "mlp" in args.engines:
        import torch

        torch.set_num_threads(args.torch_threads)
    batches, sims_list, actions = (1, 16, 256), (50, 200), (2, 9, 362)
    if args.quick:
        batches, sims_list, actions = (1, 256), (50,), (9, 362)
    if args.batches:
        batches = tuple(args.batches)
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
        print("mctx: not measured (install jax and mctx, the 'bench' extra, to include it)")
    if "ours" in args.engines:
        print_costs()


if __name__ == "__main__":
    main()
