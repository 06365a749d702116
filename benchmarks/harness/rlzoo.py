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

Board games train by self-play, but the Zoo evaluates without action masks: ``enjoy``, the
``EvalCallback`` that ``train`` adds (``--eval-freq``) and the score of each ``-optimize`` trial
call ``predict`` with no masks, so the agent may choose an illegal move, which ends the game as
a loss for the mover (a tic-tac-toe agent under ``enjoy`` against ``opponent:'random'`` had a
mean reward of -1.00 over episodes of 2 steps). Those numbers do not measure board-game play;
play the saved agent (``logs/muzero/BoardGame-TicTacToe-v0_1/BoardGame-TicTacToe-v0.zip``) with
the masks instead, against the game's opponents::

    python -m benchmarks.boardgame_play --game tictactoe --no-ppo --load AGENT.zip

Hyperparameter optimization (the Zoo's ``-optimize``, with Optuna) samples MuZero's settings
from ``benchmarks.harness.muzero_sampler`` on top of the env's ``muzero.yml`` entry; each trial
trains for ``--n-timesteps`` env steps and is scored by its last evaluation (``--eval-episodes``
episodes, ``--n-evaluations`` evaluations per trial). The Zoo prints the best trial and writes
the trials to ``logs/muzero/report_<env>_...csv``::

    python -m benchmarks.harness.rlzoo train --algo muzero --env CartPole-v1 -optimize \
        --n-trials 20 --n-timesteps 20000 --n-jobs 1 --sampler tpe --pruner median -f logs

Grouped settings are written ``group.key``, in the trial parameters and on the command line
(``-params learner_kwargs.reward_loss_coef:10``); ``ZooMuZero`` merges them into their group.
``-params`` takes a whole group too (``-params "self_play_kwargs:dict(temperature='lin_1.0')"``,
which replaces the entry's group, as the Zoo's ``-params`` does), and either form reads as the
same setting in ``muzero.yml`` does (``self_play_kwargs.temperature:'lin_1.0'`` is a schedule).

Other algorithms (``--algo ppo``) behave exactly as with ``python -m rl_zoo3.cli``.
"""

from __future__ import annotations

import sys
from typing import Any

from muzero_agents import MuZero

from benchmarks.harness.muzero_config import muzero_hyperparams
from benchmarks.harness.muzero_sampler import convert_muzero_params, sample_muzero_params
from benchmarks.harness.zoo import NOT_CONSTRUCTOR_ARGS, convert_zoo_value, fold_grouped_settings

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


def muzero_ready(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings the Zoo hands MuZero (the muzero.yml entry updated by ``-params`` and the
    optimizer's samples) read as a muzero.yml entry is: ``group.key`` settings merged into their
    group, then every group converted by :func:`zoo_ready` (``lin_X`` inside it made a schedule),
    so ``-params self_play_kwargs.temperature:'lin_1.0'`` and
    ``-params "self_play_kwargs:dict(temperature='lin_1.0')"`` work as the yml's ``lin_1.0`` does."""
    return zoo_ready(fold_grouped_settings(settings))


def zoo_table() -> dict[str, dict[str, Any]]:
    """Env id -> MuZero's settings from ``muzero.yml``, each entry made ready for the Zoo."""
    return {env_id: zoo_ready(entry) for env_id, entry in muzero_hyperparams().items()}


hyperparams: dict[str, dict[str, Any]] = zoo_table()
"""Env id -> MuZero's settings, for the Zoo's ``--conf-file benchmarks.harness.rlzoo`` (``main``
puts a fresh table here for every run: the Zoo edits the entry it reads in place)."""


class ZooMuZero(MuZero):
    """MuZero as the Zoo builds it: the settings it is handed, at construction and at load (the
    Zoo's ``-i`` continues a saved agent), are read as a muzero.yml entry is (:func:`muzero_ready`):
    grouped settings written ``group.key`` (``learner_kwargs.reward_loss_coef=10.0``, from the
    optimizer's samples or ``-params``) merge into their group with its other keys kept, and a
    ``lin_X`` inside a group from ``-params`` (applied after the table was converted) becomes a
    schedule."""

    def __init__(self, policy: Any, env: Any, **kwargs: Any) -> None:
        super().__init__(policy, env, **muzero_ready(kwargs))

    @classmethod
    def load(cls, path: Any, env: Any = None, device: Any = "auto", **kwargs: Any) -> MuZero:
        return super().load(path, env=env, device=device, **muzero_ready(kwargs))


def register() -> None:
    """Add MuZero to the Zoo's algorithm table (``rl_zoo3.ALGOS["muzero"]``, as :class:`ZooMuZero`)
    and its sampler to the Zoo's hyperparameter optimization (``HYPERPARAMS_SAMPLER``)."""
    try:
        from rl_zoo3 import ALGOS
        from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
    except ImportError as error:
        raise ImportError("The RL Zoo is not installed: pip install 'muzero-agents[bench]'") from error
    ALGOS["muzero"] = ZooMuZero
    HYPERPARAMS_SAMPLER["muzero"] = sample_muzero_params
    HYPERPARAMS_CONVERTER["muzero"] = convert_muzero_params


def _with_muzero_config(args: list[str]) -> list[str]:
    """Point ``train --algo muzero`` at MuZero's table unless a ``--conf-file`` was given."""
    algo = next((args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--algo"), None)
    algo = next((arg.split("=", 1)[1] for arg in args if arg.startswith("--algo=")), algo)
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
    global hyperparams
    hyperparams = zoo_table()  # a second run in this process must not see the first run's edits
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
