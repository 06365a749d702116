"""MuZero in the RL Baselines3 Zoo: ``python -m benchmarks.harness.rlzoo train --algo muzero --env CartPole-v1``.

The Zoo picks algorithms from its ``rl_zoo3.ALGOS`` dict and reads each algorithm's
hyperparameters from ``hyperparams/<algo>.yml`` or from ``--conf-file``. Since the Zoo is
installed as a package, MuZero is added to ``ALGOS`` at run time (``register()``), and its
settings come from ``benchmarks/muzero.yml`` through this module's ``hyperparams`` dict (the
Zoo accepts a Python module as ``--conf-file``). The Zoo turns ``lin_X`` into a schedule only
for top-level settings such as ``learning_rate``, so this module converts the grouped settings
(``self_play_kwargs: {temperature: lin_1.0}``) itself. Everything after the script name is the
Zoo's own command line::

    python -m benchmarks.harness.rlzoo train --algo muzero --env CartPole-v1 -n 20000 -f logs
    python -m benchmarks.harness.rlzoo enjoy --algo muzero --env CartPole-v1 -f logs --no-render
    python -m benchmarks.harness.rlzoo train --algo muzero --env BoardGame/TicTacToe-v0 --gym-packages wrappers
    python -m benchmarks.harness.rlzoo train --algo muzero --env CartPole-v1 --conf-file benchmarks/muzero.yml

Other algorithms (``--algo ppo``) behave exactly as with ``python -m rl_zoo3.cli``.
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.harness.muzero_config import muzero_hyperparams
from benchmarks.harness.zoo import NOT_CONSTRUCTOR_ARGS, convert_zoo_value

CONF_MODULE = "benchmarks.harness.rlzoo"
SCRIPTS = ("train", "enjoy")


def zoo_ready(entry: dict[str, Any]) -> dict[str, Any]:
    """A muzero.yml entry with MuZero's grouped settings (``*_kwargs``) turned into dicts whose
    ``lin_X`` values are schedules; the Zoo handles the rest of the entry itself."""
    return {
        name: convert_zoo_value(name, value)
        if name.endswith("_kwargs") and name not in NOT_CONSTRUCTOR_ARGS
        else value
        for name, value in entry.items()
    }


hyperparams: dict[str, dict[str, Any]] = {
    env_id: zoo_ready(entry) for env_id, entry in muzero_hyperparams().items()
}
"""Env id -> MuZero's settings, for the Zoo's ``--conf-file benchmarks.harness.rlzoo``."""


def register() -> None:
    """Add MuZero to the Zoo's algorithm table (``rl_zoo3.ALGOS["muzero"]``)."""
    try:
        from rl_zoo3 import ALGOS
    except ImportError as error:
        raise ImportError("The RL Zoo is not installed: pip install 'muzero-agents[bench]'") from error
    from muzero_agents import MuZero

    ALGOS.setdefault("muzero", MuZero)


def _with_muzero_config(args: list[str]) -> list[str]:
    """Point ``train --algo muzero`` at MuZero's table unless a ``--conf-file`` was given."""
    algo = next((args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--algo"), None)
    has_conf = any(arg in ("-conf", "--conf-file") or arg.startswith("--conf-file=") for arg in args)
    if algo == "muzero" and not has_conf:
        return [*args, "--conf-file", CONF_MODULE]
    return args


def main(argv: list[str] | None = None) -> None:
    """Run a Zoo script (``train`` or ``enjoy``) with MuZero registered."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in SCRIPTS:
        raise SystemExit(
            f"usage: python -m benchmarks.harness.rlzoo {{{','.join(SCRIPTS)}}} [RL Zoo options]"
        )
    register()
    script, rest = args[0], args[1:]
    if script == "train":
        from rl_zoo3.train import train as run

        rest = _with_muzero_config(rest)
    else:
        from rl_zoo3.enjoy import enjoy as run
    saved = sys.argv
    sys.argv = [f"rl_zoo3 {script}", *rest]
    try:
        run()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
