"""MuZero's hyperparameter table: ``benchmarks/muzero.yml``, one entry per env id (RL Zoo format).

The benchmark harness (``benchmarks.harness.zoo``) and the RL Zoo (``benchmarks.harness.rlzoo``)
both read it through ``muzero_hyperparams``, so a run through either uses the same numbers, and
the CartPole script (``benchmarks.cartpole``) takes its MuZero settings from the same entry.

An entry's keys are the Zoo's env keys (``n_envs``, ``n_timesteps``, ``policy``, ``frame_stack``,
``normalize``) and MuZero's constructor arguments. Grouped settings (``search_kwargs``,
``replay_buffer_kwargs``, ``reanalyze_kwargs``, ``self_play_kwargs``, ``learner_kwargs``,
``play_kwargs``, ``policy_kwargs``) are YAML mappings or ``"dict(...)"`` strings; a schedule is
written ``lin_X`` (linear from X to 0 over the budget), at the top (``learning_rate``) or inside
a group (``self_play_kwargs: {temperature: lin_1.0}``). A flat name that moved into a group
(``temperature``) or an option that no longer exists is refused with the entry to write instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MUZERO_YML = Path(__file__).resolve().parent.parent / "muzero.yml"
"""The table's file: ``benchmarks/muzero.yml``."""


def load_muzero_yml(path: Path = MUZERO_YML) -> dict[str, dict[str, Any]]:
    """The yml as written (env id -> settings); raises if it is not a mapping of mappings."""
    with open(path) as handle:
        table = yaml.safe_load(handle)
    if not isinstance(table, dict):
        raise TypeError(f"{path} must map env ids to settings; got {type(table).__name__}")
    for env_id, entry in table.items():
        if not isinstance(entry, dict):
            raise TypeError(
                f"{path}: the entry of {env_id} must be a mapping of settings; got {type(entry).__name__}"
            )
    return table


def check_entry(env_id: str, entry: dict[str, Any], path: Path = MUZERO_YML) -> None:
    """Refuse MuZero's old flat setting names (naming their group) and the options it no longer has."""
    from muzero_agents.legacy import MOVED_SETTINGS, REMOVED_OPTIONS

    for name in entry:
        if name in MOVED_SETTINGS:
            group, key = MOVED_SETTINGS[name]
            raise ValueError(
                f"{path}, {env_id}: {name} is no longer a MuZero argument; write it as "
                f"'{group}: {{{key}: {entry[name]!r}}}' (merged with any other {group} of the entry)"
            )
        if name in REMOVED_OPTIONS:
            raise ValueError(f"{path}, {env_id}: MuZero no longer has {name}; delete it from the entry")
        if name == "support_size":
            raise ValueError(
                f"{path}, {env_id}: support_size is set in policy_kwargs now: "
                f"'policy_kwargs: {{support_size: {entry[name]!r}}}'"
            )
        value = entry[name]
        if name.endswith("_kwargs") and not isinstance(value, (dict, str)):
            raise TypeError(
                f"{path}, {env_id}: {name} must be a mapping or a 'dict(...)' string; "
                f"got {type(value).__name__} {value!r}"
            )


def muzero_hyperparams(path: Path = MUZERO_YML) -> dict[str, dict[str, Any]]:
    """Env id -> MuZero's settings as written in ``path``, each entry checked (``check_entry``)."""
    table = load_muzero_yml(path)
    for env_id, entry in table.items():
        check_entry(env_id, entry, path)
    return table
