"""One declarative description of every ``MuZero`` constructor setting, and its checks.

``SETTINGS`` describes each top-level argument; ``GROUPS`` describes each key of each
``*_kwargs`` group (and of ``policy_kwargs["network_kwargs"]`` per network family). The same
tables check a value at construction, at ``load`` and whenever a documented attribute is set
later, so every error reads alike: it names the argument (``search_kwargs["pb_c_init"]``), the
value received and the allowed range or the fix.

A wrong type (a string for a number, an int for a bool) raises ``TypeError``; a value of the
right type outside its range (NaN and infinities included) raises ``ValueError``.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.utils import get_device

INT = "int"
FLOAT = "float"
BOOL = "bool"
CHOICE = "choice"
SCHEDULE = "schedule"  # a float, or a callable of the remaining progress (1 -> 0) giving one
INT_LIST = "int list"  # a non-empty list of ints
GROUP = "group"  # a ``*_kwargs`` dict described in GROUPS
POLICY_KWARGS = "policy kwargs"
PATH = "path"
DEVICE = "device"
OPTIMIZER_CLASS = "optimizer class"


def default_temperature(progress_remaining: float) -> float:
    """The paper's visit-count temperature schedule, 1 -> 0.5 -> 0.25, over training progress."""
    if progress_remaining > 0.5:
        return 1.0
    return 0.5 if progress_remaining > 0.25 else 0.25


@dataclass(frozen=True)
class Setting:
    """How one setting is checked.

    :param kind: one of the kind constants above (``INT``, ``FLOAT``, ``BOOL``, ...)
    :param default: the value used when the setting is not given
    :param low: smallest allowed value (numbers), or None for no bound
    :param high: largest allowed value (numbers), or None for no bound
    :param low_inclusive: whether ``low`` itself is allowed
    :param high_inclusive: whether ``high`` itself is allowed
    :param choices: the allowed values of a ``CHOICE`` setting
    :param optional: whether None is allowed
    :param doc: what the setting does (one line)
    :param fix: advice appended to a range error
    """

    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple = ()
    optional: bool = False
    doc: str = ""
    fix: str = ""


def _int(low: int | None, default: Any, doc: str, optional: bool = False, fix: str = "") -> Setting:
    return Setting(INT, default, low=low, optional=optional, doc=doc, fix=fix)


def _positive(default: float, doc: str, fix: str = "") -> Setting:
    return Setting(FLOAT, default, low=0.0, low_inclusive=False, doc=doc, fix=fix)


def _non_negative(default: float, doc: str, fix: str = "") -> Setting:
    return Setting(FLOAT, default, low=0.0, doc=doc, fix=fix)


def _unit(default: float, doc: str) -> Setting:
    return Setting(FLOAT, default, low=0.0, high=1.0, doc=doc)


def _flag(default: bool, doc: str) -> Setting:
    return Setting(BOOL, default, doc=doc)


def _group(doc: str) -> Setting:
    return Setting(GROUP, None, optional=True, doc=doc)


SETTINGS: dict[str, Setting] = {
    "learning_rate": Setting(
        SCHEDULE, 3e-3, low=0.0, doc="optimizer step size, or a schedule of it (0 freezes the weights)"
    ),
    "buffer_size": _int(1, 100_000, "transitions the replay keeps"),
    "learning_starts": _int(0, 256, "transitions collected before the first gradient step"),
    "batch_size": _int(1, 128, "positions per gradient step"),
    "unroll_steps": _int(1, 5, "steps the dynamics function is unrolled in training"),
    "td_steps": _int(1, 50, "steps of rewards before bootstrapping the value target"),
    "td_lambda": _unit(1.0, "TD(lambda) mixing of n-step value targets"),
    "discount": Setting(FLOAT, 0.997, low=0.0, high=1.0, low_inclusive=False, doc="reward discount per step"),
    "num_simulations": _int(1, 25, "search simulations per self-play move"),
    "search": Setting(CHOICE, "muzero", choices=("muzero", "gumbel"), doc="the tree search"),
    "replay_ratio": _positive(0.5, "gradient steps per collected transition"),
    "value_loss_coef": _non_negative(0.25, "weight of the value loss"),
    "max_grad_norm": _positive(
        5.0, "gradient norm clip", "use a positive clip such as 5.0 (negative values reverse the gradient)"
    ),
    "search_kwargs": _group("settings of the tree search"),
    "replay_buffer_kwargs": _group("settings of prioritized replay"),
    "reanalyze_kwargs": _group("settings of Reanalyze"),
    "self_play_kwargs": _group("settings of self-play"),
    "learner_kwargs": _group("settings of the loss and optimizer"),
    "play_kwargs": _group("settings of predict()"),
    "background_training": _flag(False, "train in a background thread while self-play runs"),
    "num_actors": _int(0, 0, "self-play actors run by Ray in other processes (0: self-play in this one)"),
    "policy_kwargs": Setting(POLICY_KWARGS, None, optional=True, doc="arguments of the policy"),
    "stats_window_size": _int(1, 100, "episodes averaged in the logged statistics"),
    "tensorboard_log": Setting(PATH, None, optional=True, doc="tensorboard log folder"),
    "verbose": _int(0, 0, "0 silent, 1 info, 2 debug"),
    "seed": Setting(INT, None, low=0, high=2**32 - 1, optional=True, doc="random seed"),
    "device": Setting(DEVICE, "auto", doc="torch device, or 'auto'"),
}

GROUPS: dict[str, dict[str, Setting]] = {
    "search_kwargs": {
        "pb_c_init": _positive(1.25, "pUCT exploration constant"),
        "pb_c_base": _positive(19652.0, "visit count at which pUCT exploration starts to grow"),
        "dirichlet_alpha": _positive(0.25, "concentration of the root exploration noise"),
        "dirichlet_fraction": _unit(0.25, "share of the root prior replaced by noise"),
        "max_considered_actions": _int(1, 16, "actions Gumbel search samples at the root"),
    },
    "replay_buffer_kwargs": {
        "priority_alpha": _non_negative(1.0, "priority exponent (0 samples uniformly)"),
        "priority_beta": _unit(0.4, "initial importance-sampling exponent, annealed to 1"),
    },
    "reanalyze_kwargs": {
        "fraction": _unit(1.0, "share of sampled positions whose targets are recomputed"),
        "search": _flag(False, "recompute policy targets with a fresh search too"),
        "num_workers": _int(
            0, 0, "Reanalyze workers run by Ray in other processes (0: Reanalyze in the learner's)"
        ),
    },
    "self_play_kwargs": {
        "temperature": Setting(
            SCHEDULE,
            default_temperature,
            low=0.0,
            doc="visit-count temperature (pUCT search; Gumbel explores by its noise)",
        ),
        "sampling_moves": _int(0, None, "moves per episode sampled before greedy play", optional=True),
        "random_opening_moves": _int(0, 0, "most uniformly random moves an episode opens with"),
    },
    "learner_kwargs": {
        "reward_loss_coef": _non_negative(1.0, "weight of the reward loss"),
        "consistency_loss_coef": _non_negative(0.0, "weight of the temporal consistency loss"),
        "weight_decay": _non_negative(1e-4, "AdamW weight decay"),
        "mixed_precision": _flag(False, "bfloat16 autocast in training (CPU or CUDA)"),
        "augment_symmetries": _flag(True, "train on random board symmetries the env declares"),
    },
    "play_kwargs": {
        "num_simulations": _int(1, None, "predict()'s simulations (None: num_simulations)", optional=True),
        "ema_decay": Setting(
            FLOAT,
            None,
            low=0.0,
            high=1.0,
            high_inclusive=False,
            optional=True,
            doc="predict() plays with a moving average of the weights (None: the newest weights)",
            fix="e.g. 0.995 averages over roughly the last 200 gradient steps",
        ),
    },
    "policy_kwargs": {
        "support_size": _int(1, 20, "value/reward support is {-S..S} after the h transform"),
        "network_kwargs": Setting(GROUP, None, optional=True, doc="arguments of the network class"),
        "consistency_kwargs": Setting(GROUP, None, optional=True, doc="arguments of the consistency head"),
        "normalize_images": _flag(True, "scale uint8 images to [0, 1]"),
        "optimizer_class": Setting(OPTIMIZER_CLASS, torch.optim.AdamW, doc="torch optimizer class"),
        "optimizer_kwargs": Setting(GROUP, None, optional=True, doc="optimizer arguments"),
        "channels_last": Setting(BOOL, None, optional=True, doc="CnnPolicy: (H, W, C) images"),
    },
    "consistency_kwargs": {
        "projection_dim": _int(1, 256, "width of the consistency projector"),
        "predictor_dim": _int(1, 128, "width of the consistency predictor"),
    },
    "mlp_network_kwargs": {
        "hidden_dim": _int(1, 64, "size of the hidden state"),
        "net_arch": Setting(INT_LIST, None, low=1, optional=True, doc="hidden layer sizes"),
    },
    "conv_network_kwargs": {
        "channels": _int(1, 32, "channels of the residual towers"),
        "num_blocks": _int(0, 2, "residual blocks per tower"),
        "head_channels": _int(1, 4, "channels of the heads' 1x1 convs"),
        "head_hidden": _int(1, 64, "hidden units of the heads' MLPs"),
        "downsample_to": _int(
            1,
            None,
            "largest side the representation reduces observations to (None: boards up to 32 on a side "
            "keep up to 12, larger frames go down to 6)",
            optional=True,
        ),
        "downsampling": Setting(
            CHOICE,
            None,
            choices=("pool", "stride"),
            optional=True,
            doc="how observations are reduced: 'pool' (strided convs, then average pooling), 'stride' "
            "(a full-resolution conv, then a strided conv per halving), or None: 'pool' for frames "
            "larger than 32 on a side, 'stride' for boards",
        ),
    },
}

# how errors name a group's keys, where it differs from the group's own name
GROUP_LABELS = {
    "consistency_kwargs": 'policy_kwargs["consistency_kwargs"]',
    "mlp_network_kwargs": 'policy_kwargs["network_kwargs"]',
    "conv_network_kwargs": 'policy_kwargs["network_kwargs"]',
}


def group_label(group: str, key: str) -> str:
    """How errors name ``key`` of ``group``: ``search_kwargs["pb_c_init"]``."""
    return f'{GROUP_LABELS.get(group, group)}["{key}"]'


def _requirement(setting: Setting) -> str:
    """The allowed values in words: ``an int >= 1``, ``a finite float in [0, 1)``."""
    if setting.kind == BOOL:
        text = "True or False"
    elif setting.kind == CHOICE:
        text = "one of " + ", ".join(repr(choice) for choice in setting.choices)
    elif setting.kind == SCHEDULE:
        text = f"a finite float{_range_text(setting)} or a schedule (a callable of the remaining progress)"
    else:
        noun = {INT: "an int", FLOAT: "a finite float", INT_LIST: "a non-empty list of ints"}[setting.kind]
        text = noun + _range_text(setting)
    return f"None or {text}" if setting.optional else text


def _range_text(setting: Setting) -> str:
    low, high = setting.low, setting.high
    if low is not None and high is not None:
        left, right = "[" if setting.low_inclusive else "(", "]" if setting.high_inclusive else ")"
        return f" in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f" {'>=' if setting.low_inclusive else '>'} {low:g}"
    if high is not None:
        return f" {'<=' if setting.high_inclusive else '<'} {high:g}"
    return ""


def _fail(error: type[Exception], label: str, setting: Setting, value: Any) -> Exception:
    fix = f"; {setting.fix}" if setting.fix else ""
    return error(f"{label} must be {_requirement(setting)}, got {value!r}{fix}.")


def _in_range(number: float, setting: Setting) -> bool:
    low, high = setting.low, setting.high
    if low is not None and (number < low or (number == low and not setting.low_inclusive)):
        return False
    return high is None or number < high or (number == high and setting.high_inclusive)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_number(label: str, setting: Setting, value: Any) -> int | float:
    """An INT or FLOAT setting's value as a Python int or float, checked against its range."""
    if not _is_number(value):
        raise _fail(TypeError, label, setting, value)
    number = float(value)
    if not math.isfinite(number):
        raise _fail(ValueError, label, setting, value)
    if setting.kind == INT:
        if isinstance(value, (float, np.floating)) and not number.is_integer():
            raise _fail(TypeError, label, setting, value)
        number = int(number) if isinstance(value, (float, np.floating)) else int(value)
    if not _in_range(number, setting):
        raise _fail(ValueError, label, setting, value)
    return number


SCHEDULE_PROBES = (1.0, 0.75, 0.5, 0.25, 0.0)  # the progress values a schedule is checked at


def _check_schedule(label: str, setting: Setting, value: Any) -> Any:
    """A number in range, or a callable of one argument whose values are finite numbers >= 0."""
    if not callable(value):
        return _check_number(label, setting, value)
    for progress in SCHEDULE_PROBES:
        try:
            produced = value(progress)
        except TypeError as error:
            raise TypeError(
                f"{label} must be a number or a callable of one argument, progress_remaining (1 at the "
                f"start of training, 0 at its end); calling it with {progress} raised: {error}"
            ) from error
        if not _is_number(produced) or not math.isfinite(float(produced)) or float(produced) < 0:
            raise ValueError(
                f"{label}'s schedule must return a finite number >= 0 for every progress in [0, 1], "
                f"got {produced!r} at progress_remaining={progress}."
            )
    start = value(1.0)
    if not _in_range(float(start), setting):
        raise ValueError(f"{label}'s schedule starts at {start!r}; it must start at {_requirement(setting)}.")
    return value


def scheduled_value(label: str, schedule: Any, progress_remaining: float) -> float:
    """A number setting's value, or a schedule's at ``progress_remaining``, refused unless a
    finite number >= 0 (a schedule's check when it is set probes a few points only)."""
    value = schedule(progress_remaining) if callable(schedule) else schedule
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(
            f"{label}'s schedule returned {value!r} at progress_remaining={progress_remaining:.4g}; it "
            "must return a finite number >= 0 for every progress in [0, 1]."
        )
    return float(value)


def _check_int_list(label: str, setting: Setting, value: Any) -> list[int]:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise _fail(TypeError, label, setting, value)
    items = list(value)
    if not items:
        raise ValueError(f"{label} must be {_requirement(setting)}, got {value!r}: e.g. [128, 128].")
    item_setting = Setting(INT, low=setting.low)
    checked = []
    for index, item in enumerate(items):
        try:
            checked.append(_check_number(f"{label}[{index}]", item_setting, item))
        except (TypeError, ValueError) as error:
            raise type(error)(f"{label} must be {_requirement(setting)}, got {value!r}: {error}") from None
    return checked


def _check_value(label: str, setting: Setting, value: Any) -> Any:
    """``value`` checked against ``setting`` and normalised; errors name ``label``."""
    if value is None and setting.optional:
        return None
    kind = setting.kind
    if kind in (INT, FLOAT):
        return _check_number(label, setting, value)
    if kind == SCHEDULE:
        return _check_schedule(label, setting, value)
    if kind == BOOL:
        if not isinstance(value, (bool, np.bool_)):
            raise _fail(TypeError, label, setting, value)
        return bool(value)
    if kind == CHOICE:
        if not isinstance(value, str):
            raise _fail(TypeError, label, setting, value)
        if value not in setting.choices:
            raise _fail(ValueError, label, setting, value)
        return value
    if kind == INT_LIST:
        return _check_int_list(label, setting, value)
    return _check_other(label, setting, value)


def _check_other(label: str, setting: Setting, value: Any) -> Any:
    kind = setting.kind
    if kind == GROUP:
        if not isinstance(value, Mapping):
            raise TypeError(f"{label} must be None or a dict, got {value!r}.")
        return dict(value)
    if kind == OPTIMIZER_CLASS:
        if not (isinstance(value, type) and issubclass(value, torch.optim.Optimizer)):
            raise TypeError(
                f"{label} must be a torch optimizer class (e.g. torch.optim.AdamW), got {value!r}."
            )
        return value
    if kind == PATH:
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{label} must be None or a folder path, got {value!r}.")
        return value
    if kind == DEVICE:
        return _check_device(label, value)
    raise AssertionError(f"unknown setting kind {kind!r}")


def _check_device(label: str, value: Any) -> torch.device:
    """``value`` as the torch device SB3 picks for it (``"auto"``: CUDA if there is one)."""
    if isinstance(value, torch.device) or value == "auto":
        return get_device(value)
    if not isinstance(value, str):
        raise TypeError(
            f"{label} must be 'auto', a device name such as 'cpu' or 'cuda', or a torch.device, got {value!r}."
        )
    try:
        torch.device(value)
    except RuntimeError as error:
        raise ValueError(
            f"{label} must be 'auto' or a torch device name such as 'cpu' or 'cuda:0', got {value!r}."
        ) from error
    return get_device(value)


def check_setting(name: str, value: Any, previous: Any = None) -> Any:
    """``value`` for the top-level setting ``name``, checked and normalised (numpy ints -> int).

    A group name (``search_kwargs``, ...) returns a :class:`SettingsGroup` with defaults filled;
    when it replaces a group whose model is built (``previous``), the keys used only to build
    the model must keep their values. ``policy_kwargs`` returns a checked dict (see
    :func:`check_policy_kwargs`).
    """
    if name not in SETTINGS:
        raise KeyError(f"{name!r} is not a MuZero setting; known: {', '.join(SETTINGS)}.")
    setting = SETTINGS[name]
    if setting.kind == GROUP:
        group = SettingsGroup(name, value)
        if isinstance(previous, SettingsGroup) and previous.built:
            for key in BUILD_ONLY.get(name, ()):
                previous[key] = group[key]  # refused if it changes
            group.built = True
        return group
    if setting.kind == POLICY_KWARGS:
        return check_policy_kwargs(value)
    return _check_value(name, setting, value)


def check_group_value(group: str, key: str, value: Any) -> Any:
    """``value`` for ``key`` of ``group``, checked and normalised; unknown keys raise a ValueError."""
    table = GROUPS[group]
    if key not in table:
        known = ", ".join(repr(name) for name in table)
        raise ValueError(
            f"{group_label(group, key)} is not a setting; {GROUP_LABELS.get(group, group)} takes {known}."
        )
    return _check_value(group_label(group, key), table[key], value)


def check_group_keys(group: str, given: Mapping | None) -> dict[str, Any]:
    """The keys of ``given`` checked against ``group``, without filling defaults."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise TypeError(f"{GROUP_LABELS.get(group, group)} must be None or a dict, got {given!r}.")
    unknown = [key for key in given if key not in GROUPS[group]]
    if unknown:
        known = ", ".join(repr(name) for name in GROUPS[group])
        raise ValueError(
            f"{GROUP_LABELS.get(group, group)} got unknown key(s) {unknown}; its keys are {known}."
        )
    return {key: check_group_value(group, key, value) for key, value in given.items()}


def resolve_group(group: str, given: Mapping | None) -> dict[str, Any]:
    """``given``'s values checked, over the group's defaults: the complete settings of ``group``."""
    if group not in GROUPS:
        raise KeyError(f"{group!r} is not a settings group; known: {', '.join(GROUPS)}.")
    checked = check_group_keys(group, given)
    return {key: checked.get(key, setting.default) for key, setting in GROUPS[group].items()}


def check_policy_kwargs(policy_kwargs: Mapping | None, image_policy: bool | None = None) -> dict[str, Any]:
    """``policy_kwargs`` with its known keys checked (defaults not filled: the policy has them).

    :param image_policy: whether the policy is CnnPolicy (``channels_last`` is refused for
        MlpPolicy); None skips that check
    """
    if isinstance(policy_kwargs, Mapping) and "net_arch" in policy_kwargs:
        raise ValueError(
            'policy_kwargs["net_arch"] belongs in the network\'s settings: '
            "policy_kwargs=dict(network_kwargs=dict(net_arch=[...])) (MlpPolicy)."
        )
    checked = check_group_keys("policy_kwargs", policy_kwargs)
    check_group_keys("consistency_kwargs", checked.get("consistency_kwargs"))
    if "lr" in (checked.get("optimizer_kwargs") or {}):
        raise ValueError(
            'policy_kwargs["optimizer_kwargs"]["lr"] is MuZero\'s learning_rate: pass '
            "learning_rate=... (a number or a schedule) instead."
        )
    if image_policy is False and checked.get("channels_last") is not None:
        raise ValueError(
            'policy_kwargs["channels_last"] only applies to CnnPolicy (MlpPolicy flattens '
            "observations); remove it or use CnnPolicy."
        )
    return checked


GROUP_NAMES = (
    "search_kwargs",
    "replay_buffer_kwargs",
    "reanalyze_kwargs",
    "self_play_kwargs",
    "learner_kwargs",
    "play_kwargs",
)

# keys used only when the model is built (the replay's sum tree, the optimizer, the network's
# consistency head): once it is built, they cannot change
BUILD_ONLY = {
    "replay_buffer_kwargs": ("priority_alpha",),
    "learner_kwargs": ("weight_decay", "consistency_loss_coef"),
}
# top-level settings that shape the replay and the learner when the model is built
BUILD_ONLY_SETTINGS = ("buffer_size", "unroll_steps", "td_steps")


def refuse_change_after_build(label: str, current: Any, load_argument: str) -> None:
    """The ValueError for a setting that is used when the model is built and was set afterwards."""
    raise ValueError(
        f"{label} is used when the model is built and cannot change afterwards (it is {current!r}); "
        f"pass it to the constructor, or to MuZero.load(path, {load_argument})."
    )


class SettingsGroup(dict):
    """A ``*_kwargs`` group that checks each value as it is set, also after construction.

    ``model.play_kwargs["num_simulations"] = 0`` raises at once. Keys cannot be removed. Once
    ``built`` (the model that reads it is built), keys in ``BUILD_ONLY`` cannot change. Pickles
    and copies as a plain dict's contents, so saved models do not depend on this class.
    """

    def __init__(self, group: str, given: Mapping | None = None) -> None:
        self.group = group
        self.built = False
        super().__init__(resolve_group(group, given))

    def __setitem__(self, key: str, value: Any) -> None:
        value = check_group_value(self.group, key, value)
        if self.built and key in BUILD_ONLY.get(self.group, ()) and value != self[key]:
            refuse_change_after_build(
                group_label(self.group, key), self[key], f"{self.group}=dict({key}=...)"
            )
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Mapping) -> SettingsGroup:
        self.update(other)
        return self

    def setdefault(self, key: str, value: Any = None) -> Any:
        if key not in self:
            self[key] = value
        return self[key]

    def _refuse_removal(self, *args: Any) -> Any:
        raise TypeError(f"{self.group} keeps all its keys; set a value instead of removing it.")

    __delitem__ = pop = popitem = clear = _refuse_removal

    def __reduce__(self) -> tuple:
        return (dict, (dict(self),))

    def __copy__(self) -> SettingsGroup:
        return SettingsGroup(self.group, dict(self))

    def __deepcopy__(self, memo: dict) -> SettingsGroup:
        return SettingsGroup(self.group, copy.deepcopy(dict(self), memo))


def _group_value(values: Mapping, group: str, key: str) -> Any:
    return (values.get(group) or {}).get(key, GROUPS[group][key].default)


def check_change_after_build(values: Mapping[str, Any], name: str, value: Any, n_envs: int) -> None:
    """Refuse setting top-level ``name`` to (checked) ``value`` on a built model whose settings are
    ``values``: a build-only setting that changes, or a value that breaks a rule between settings."""
    if name in BUILD_ONLY_SETTINGS and value != values[name]:
        refuse_change_after_build(name, values[name], f"{name}=...")
    if name == "device" and not _same_device(value, values[name]):
        raise ValueError(
            f"device cannot change on a built model (its network is on {values[name]}); load it on "
            "another device with MuZero.load(path, device=...)."
        )
    if name == "policy_kwargs" and _network_changes(values[name], value):
        raise ValueError(
            f"policy_kwargs builds the network and cannot change on a built model (it is {values[name]!r}); "
            "make a new model with it: MuZero(policy, env, policy_kwargs=...)."
        )
    check_cross_settings({**values, name: value}, n_envs)


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are one (``cuda`` without an index is the current CUDA device)."""

    def index(device: torch.device) -> int | None:
        if device.index is None and device.type == "cuda":
            return torch.cuda.current_device()
        return device.index

    return a.type == b.type and index(a) == index(b)


def _network_changes(current: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` policy_kwargs differ from the built network's ``current`` ones (whose
    ``channels_last`` the policy filled in where it was not given)."""
    layout = {"channels_last": current["channels_last"]} if "channels_last" in current else {}
    return {**layout, **new} != dict(current)


def check_cross_settings(values: Mapping[str, Any], n_envs: int = 1) -> None:
    """Rules between settings; ``values`` maps top-level names to checked values (groups as dicts).

    Settings missing from ``values`` take their defaults. ``n_envs``: the replay keeps
    ``buffer_size`` rounded down to a multiple of it.
    """

    def get(name: str) -> Any:
        return values.get(name, SETTINGS[name].default)

    capacity = get("buffer_size") // n_envs * n_envs
    if get("learning_starts") > capacity:
        kept = f"buffer_size ({get('buffer_size')})"
        if capacity != get("buffer_size"):
            kept = (
                f"the replay's capacity ({capacity}: buffer_size {get('buffer_size')} rounded down to "
                f"a multiple of the {n_envs} envs)"
            )
        raise ValueError(
            f"learning_starts ({get('learning_starts')}) must not exceed {kept}: training could never "
            "start; lower learning_starts or raise buffer_size."
        )
    workers = _group_value(values, "reanalyze_kwargs", "num_workers")
    if workers and not _group_value(values, "reanalyze_kwargs", "fraction"):
        raise ValueError(
            f'reanalyze_kwargs["num_workers"]={workers} needs Reanalyze, but reanalyze_kwargs["fraction"] '
            'is 0: set reanalyze_kwargs["fraction"] above 0, or reanalyze_kwargs["num_workers"] to 0.'
        )
    if _group_value(values, "learner_kwargs", "consistency_loss_coef") > 0 and get("batch_size") < 2:
        raise ValueError(
            f'batch_size must be >= 2 when learner_kwargs["consistency_loss_coef"] > 0 (the consistency '
            f"heads' batch norm needs two samples), got batch_size={get('batch_size')}."
        )


def check_learn_arguments(total_timesteps: Any, callback: Any, log_interval: Any) -> None:
    """Refuse ``learn()`` arguments of the wrong kind before anything starts."""
    from stable_baselines3.common.callbacks import BaseCallback

    if not _is_number(total_timesteps) or not math.isfinite(float(total_timesteps)) or total_timesteps < 0:
        error = ValueError if _is_number(total_timesteps) else TypeError
        raise error(f"learn()'s total_timesteps must be a number of env steps >= 0, got {total_timesteps!r}.")
    if log_interval is not None:
        _check_number(
            "learn()'s log_interval", Setting(INT, low=0, doc="episodes between dumps"), log_interval
        )
    if isinstance(callback, list):
        valid = all(isinstance(item, BaseCallback) for item in callback)
    else:
        valid = callback is None or isinstance(callback, BaseCallback) or callable(callback)
    if not valid:
        raise TypeError(
            "learn()'s callback must be None, an SB3 BaseCallback, a list of them, or a function of "
            f"(locals, globals), got {callback!r}."
        )


def check_train_arguments(gradient_steps: Any, batch_size: Any, values: Mapping[str, Any]) -> tuple[int, int]:
    """``train()``'s (gradient_steps, batch_size), checked; batch_size None is the model's."""
    steps = _check_number("train()'s gradient_steps", _int(0, 1, "gradient steps to take"), gradient_steps)
    if batch_size is None:
        return steps, values["batch_size"]
    batch = _check_number("train()'s batch_size", SETTINGS["batch_size"], batch_size)
    check_cross_settings({**values, "batch_size": batch})
    return steps, batch
