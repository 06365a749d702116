"""MuZero's hyperparameter table: ``benchmarks/muzero.yml`` with the tuned CartPole settings on top.

The table is what both the benchmark harness and the RL Zoo (``benchmarks.rlzoo``) read, so a
run through either uses the same numbers. CartPole-v1's entry comes from
``benchmarks.cartpole.MUZERO_CARTPOLE``, the project's own tuning, imported rather than copied.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

MUZERO_YML = Path(__file__).with_name("muzero.yml")


def load_muzero_yml(path: Path = MUZERO_YML) -> dict[str, dict[str, Any]]:
    """The yml as written (RL Zoo format: env id -> settings)."""
    with open(path) as handle:
        table = yaml.safe_load(handle)
    if not isinstance(table, dict):
        raise TypeError(f"{path} must map env ids to settings; got {type(table).__name__}")
    return table


def muzero_hyperparams() -> dict[str, dict[str, Any]]:
    """Env id -> MuZero settings, with ``MUZERO_CARTPOLE`` merged over the CartPole-v1 entry."""
    from benchmarks.cartpole import MUZERO_CARTPOLE

    table = load_muzero_yml()
    cartpole = dict(table.get("CartPole-v1", {"policy": "MlpPolicy", "n_timesteps": 2e4}))
    cartpole["n_envs"] = MUZERO_CARTPOLE["n_envs"]
    cartpole.update(copy.deepcopy(MUZERO_CARTPOLE["kwargs"]))
    table["CartPole-v1"] = cartpole
    return table
