"""Loading models saved by earlier muzero-agents versions.

0.1.0's settings were flat constructor arguments; 0.2.0 groups the settings of the parts
(``search_kwargs``, ``replay_buffer_kwargs``, ...). A 0.1.0 save restores its flat attributes
onto the model; ``migrate_flat_settings`` moves each into its group before the model is built,
and drops the options 0.2.0 no longer has (and moves ``num_reanalyze_workers``, a constructor
argument during 0.3.0's development, into ``reanalyze_kwargs``). 0.3.0 reduces large frames with
a cheaper stem (``downsampling="pool"``, to 6x6 for frames); ``keep_frame_stem`` gives the conv
networks of earlier saves their own stem back.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

from stable_baselines3.common.preprocessing import is_image_space_channels_first

# saved as the model's ``_save_format``; saves before 0.3.0 have none
SAVE_FORMAT = 3

# 0.1.0 attribute -> (0.2.0 group, key)
MOVED_SETTINGS: dict[str, tuple[str, str]] = {
    "pb_c_init": ("search_kwargs", "pb_c_init"),
    "pb_c_base": ("search_kwargs", "pb_c_base"),
    "dirichlet_alpha": ("search_kwargs", "dirichlet_alpha"),
    "dirichlet_fraction": ("search_kwargs", "dirichlet_fraction"),
    "max_considered_actions": ("search_kwargs", "max_considered_actions"),
    "priority_alpha": ("replay_buffer_kwargs", "priority_alpha"),
    "priority_beta": ("replay_buffer_kwargs", "priority_beta"),
    "reanalyze_fraction": ("reanalyze_kwargs", "fraction"),
    "reanalyze_search": ("reanalyze_kwargs", "search"),
    "temperature": ("self_play_kwargs", "temperature"),
    "sampling_moves": ("self_play_kwargs", "sampling_moves"),
    "random_opening_moves": ("self_play_kwargs", "random_opening_moves"),
    "reward_loss_coef": ("learner_kwargs", "reward_loss_coef"),
    "consistency_loss_coef": ("learner_kwargs", "consistency_loss_coef"),
    "weight_decay": ("learner_kwargs", "weight_decay"),
    "mixed_precision": ("learner_kwargs", "mixed_precision"),
    "augment_symmetries": ("learner_kwargs", "augment_symmetries"),
    "play_simulations": ("play_kwargs", "num_simulations"),
    "ema_decay": ("play_kwargs", "ema_decay"),
}
# a constructor argument of 0.3.0's development -> (group, key)
MOVED_IN_0_3: dict[str, tuple[str, str]] = {"num_reanalyze_workers": ("reanalyze_kwargs", "num_workers")}
# options 0.2.0 removed (they measured no gain); a save that had them on plays without them
REMOVED_OPTIONS = ("cut_returns_at_exploration", "play_symmetries")
# 0.1.0's names that MuZero.load still takes (moved into their groups as a save's are)
LOADABLE_NAMES = frozenset({*MOVED_SETTINGS, *MOVED_IN_0_3})
# SB3 off-policy arguments whose job replay_ratio does
SB3_OFF_POLICY_NAMES = frozenset({"train_freq", "gradient_steps"})
# SB3 arguments that MuZero takes under another name
SB3_RENAMED = {"gamma": "discount"}
# 0.1.0 bookkeeping that 0.2.0 keeps elsewhere or not at all
STALE_ATTRIBUTES = ("_search_seconds",)


def migrate_flat_settings(attributes: dict[str, Any]) -> None:
    """Move 0.1.0's flat settings in ``attributes`` (a model's ``__dict__``) into their groups.

    Keys that ``MuZero.load`` was given (``attributes["_load_overrides"]``: group -> keys) keep
    the given value.
    """
    overrides = attributes.pop("_load_overrides", {})
    if "pb_c_init" in attributes:  # only 0.1.0 had it flat
        _keep_image_layout(attributes)
    for name, (group, key) in {**MOVED_SETTINGS, **MOVED_IN_0_3}.items():
        if name in attributes:
            flat = attributes.pop(name)
            if key not in overrides.get(group, ()):
                attributes[group] = {**(attributes.get(group) or {}), key: flat}
    if "support_size" in attributes:
        policy_kwargs = dict(attributes.get("policy_kwargs") or {})
        policy_kwargs.setdefault("support_size", attributes.pop("support_size"))
        attributes["policy_kwargs"] = policy_kwargs
    for name in REMOVED_OPTIONS:
        if attributes.pop(name, False):
            warnings.warn(
                f"This model was saved by muzero-agents 0.1.0 with {name}=True; 0.2.0 removed that "
                "option (it measured no gain), so the model trains and plays without it.",
                UserWarning,
                stacklevel=4,
            )
    for name in STALE_ATTRIBUTES:
        attributes.pop(name, None)


def keep_frame_stem(attributes: dict[str, Any]) -> None:
    """A conv model saved before 0.3.0 reduced frames with a full-resolution conv and a strided conv
    per halving, down to 12 on a side: give its network those settings back (unless given)."""
    if attributes.get("_save_format") is not None:
        return
    attributes["_save_format"] = SAVE_FORMAT
    from muzero_agents.policies import MuZeroCnnPolicy

    policy_class = attributes.get("policy_class")
    if not (isinstance(policy_class, type) and issubclass(policy_class, MuZeroCnnPolicy)):
        return
    policy_kwargs = dict(attributes.get("policy_kwargs") or {})
    network_kwargs = {
        "downsampling": "stride",
        "downsample_to": 12,
        **(policy_kwargs.get("network_kwargs") or {}),
    }
    attributes["policy_kwargs"] = {**policy_kwargs, "network_kwargs": network_kwargs}


def refuse_flat_name(name: str) -> None:
    """Setting a 0.1.0 flat setting on a 0.2.0 model would do nothing: say where it went."""
    for moved, version in ((MOVED_SETTINGS, "0.2.0"), (MOVED_IN_0_3, "0.3.0")):
        if name in moved:
            group, key = moved[name]
            raise AttributeError(
                f'{name} moved to {group}["{key}"] in muzero-agents {version}: set that instead.'
            )
    if name == "support_size":
        raise AttributeError('support_size moved to policy_kwargs["support_size"] in muzero-agents 0.2.0.')
    if name in REMOVED_OPTIONS:
        raise AttributeError(f"{name} was removed in muzero-agents 0.2.0 (it measured no gain).")


def refuse_unknown_arguments(arguments: dict[str, Any], where: str = "MuZero()") -> None:
    """A TypeError for arguments of ``where`` (the constructor, or ``MuZero.load()``'s settings)
    that MuZero does not take, naming where 0.1.0's went."""
    for name in arguments:
        try:
            refuse_flat_name(name)
        except AttributeError as moved:
            raise TypeError(
                f"{where} got the argument {name!r}, which {str(moved).split(' ', 1)[1]}"
            ) from None
    sb3_names = sorted(SB3_OFF_POLICY_NAMES & arguments.keys())
    if sb3_names:
        raise TypeError(
            f"{where} got {', '.join(sb3_names)}, which MuZero does not take: it trains "
            "replay_ratio gradient steps per collected transition (SB3's train_freq and gradient_steps)."
        )
    if arguments:
        hints = ", ".join(_with_hint(name) for name in sorted(arguments))
        raise TypeError(f"{where} got unexpected keyword arguments: {hints}")


def _with_hint(name: str) -> str:
    """``name``, followed by the MuZero setting an SB3 user or a typo most likely meant."""
    from muzero_agents.settings import GROUPS, SETTINGS, group_label

    if name in SB3_RENAMED:
        return f"{name} (MuZero's name is {SB3_RENAMED[name]})"
    labels = {key: group_label(group, key) for group in reversed(GROUPS) for key in GROUPS[group]}
    labels.update({setting: setting for setting in SETTINGS})  # a top-level name wins a shared key
    close = difflib.get_close_matches(name, labels, n=1, cutoff=0.75)
    return f"{name} (did you mean {labels[close[0]]}?)" if close else name


def rename_saved_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """0.1.0 saved the weight average as ``_averaged_policy``; 0.2.0 keeps it on the learner."""
    if "_averaged_policy" in params:
        params = dict(params)
        params["learner.weight_average"] = params.pop("_averaged_policy")
    return params


def _keep_image_layout(attributes: dict[str, Any]) -> None:
    """0.1.0 read every 3-D observation's layout with SB3's smallest-side rule (so square boards
    with many planes, Go's (9, 9, 17), were read channels-first); its conv weights expect that."""
    policy_class, space = attributes.get("policy_class"), attributes.get("observation_space")
    shape = getattr(space, "shape", None)
    from muzero_agents.policies import MuZeroCnnPolicy

    is_cnn = isinstance(policy_class, type) and issubclass(policy_class, MuZeroCnnPolicy)
    if shape is None or len(shape) != 3 or not is_cnn:
        return
    policy_kwargs = dict(attributes.get("policy_kwargs") or {})
    policy_kwargs.setdefault("channels_last", not is_image_space_channels_first(space))
    attributes["policy_kwargs"] = policy_kwargs
