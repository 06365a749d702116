"""RL Zoo's tuned hyperparameters for the SB3 baselines (read from the installed ``rl_zoo3``).

Without ``rl_zoo3`` installed we fall back to a copy of its numbers for the envs of our suites
(rl_zoo3 2.9.2, hyperparams/{ppo,dqn,a2c}.yml: CartPole-v1, Acrobot-v1, MountainCar-v0,
LunarLander-v3 and the shared ``atari`` entry), so the benchmarks still run; a test checks the
copy against the installed Zoo.
MuZero's own table (``benchmarks/muzero.yml``, RL Zoo format) is read through the same code.
Atari env ids fall back to the Zoo's shared ``atari`` entry, as the Zoo itself does.
"""

from __future__ import annotations

import ast
import importlib.resources
from dataclasses import dataclass, field
from typing import Any

import yaml
from stable_baselines3.common.utils import LinearSchedule

_ATARI_WRAPPER = ["stable_baselines3.common.atari_wrappers.AtariWrapper"]
_MLP_256 = "dict(net_arch=[256, 256])"
FALLBACK: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        "CartPole-v1": {
            "n_envs": 8,
            "n_timesteps": 1e5,
            "policy": "MlpPolicy",
            "n_steps": 32,
            "batch_size": 256,
            "gae_lambda": 0.8,
            "gamma": 0.98,
            "n_epochs": 20,
            "ent_coef": 0.0,
            "learning_rate": "lin_0.001",
            "clip_range": "lin_0.2",
        },
        "Acrobot-v1": {
            "normalize": True,
            "n_envs": 16,
            "n_timesteps": 1e6,
            "policy": "MlpPolicy",
            "n_steps": 256,
            "gae_lambda": 0.94,
            "gamma": 0.99,
            "n_epochs": 4,
            "ent_coef": 0.0,
        },
        "MountainCar-v0": {
            "normalize": True,
            "n_envs": 16,
            "n_timesteps": 1e6,
            "policy": "MlpPolicy",
            "n_steps": 16,
            "gae_lambda": 0.98,
            "gamma": 0.99,
            "n_epochs": 4,
            "ent_coef": 0.0,
        },
        "LunarLander-v3": {
            "n_envs": 16,
            "n_timesteps": 1e6,
            "policy": "MlpPolicy",
            "n_steps": 1024,
            "batch_size": 64,
            "gae_lambda": 0.98,
            "gamma": 0.999,
            "n_epochs": 4,
            "ent_coef": 0.01,
        },
        "atari": {
            "env_wrapper": _ATARI_WRAPPER,
            "frame_stack": 4,
            "policy": "CnnPolicy",
            "n_envs": 8,
            "n_steps": 128,
            "n_epochs": 4,
            "batch_size": 256,
            "n_timesteps": 1e7,
            "learning_rate": "lin_2.5e-4",
            "clip_range": "lin_0.1",
            "vf_coef": 0.5,
            "ent_coef": 0.01,
        },
    },
    "dqn": {
        "CartPole-v1": {
            "n_timesteps": 5e4,
            "policy": "MlpPolicy",
            "learning_rate": 2.3e-3,
            "batch_size": 64,
            "buffer_size": 100000,
            "learning_starts": 1000,
            "gamma": 0.99,
            "target_update_interval": 10,
            "train_freq": 256,
            "gradient_steps": 128,
            "exploration_fraction": 0.16,
            "exploration_final_eps": 0.04,
            "policy_kwargs": _MLP_256,
        },
        "Acrobot-v1": {
            "n_timesteps": 1e5,
            "policy": "MlpPolicy",
            "learning_rate": 6.3e-4,
            "batch_size": 128,
            "buffer_size": 50000,
            "learning_starts": 0,
            "gamma": 0.99,
            "target_update_interval": 250,
            "train_freq": 4,
            "gradient_steps": -1,
            "exploration_fraction": 0.12,
            "exploration_final_eps": 0.1,
            "policy_kwargs": _MLP_256,
        },
        "MountainCar-v0": {
            "n_timesteps": 1.2e5,
            "policy": "MlpPolicy",
            "learning_rate": 4e-3,
            "batch_size": 128,
            "buffer_size": 10000,
            "learning_starts": 1000,
            "gamma": 0.98,
            "target_update_interval": 600,
            "train_freq": 16,
            "gradient_steps": 8,
            "exploration_fraction": 0.2,
            "exploration_final_eps": 0.07,
            "policy_kwargs": _MLP_256,
        },
        "LunarLander-v3": {
            "n_timesteps": 1e5,
            "policy": "MlpPolicy",
            "learning_rate": 6.3e-4,
            "batch_size": 128,
            "buffer_size": 50000,
            "learning_starts": 0,
            "gamma": 0.99,
            "target_update_interval": 250,
            "train_freq": 4,
            "gradient_steps": -1,
            "exploration_fraction": 0.12,
            "exploration_final_eps": 0.1,
            "policy_kwargs": _MLP_256,
        },
        "atari": {
            "env_wrapper": _ATARI_WRAPPER,
            "frame_stack": 4,
            "policy": "CnnPolicy",
            "n_timesteps": 1e7,
            "buffer_size": 100000,
            "learning_rate": 1e-4,
            "batch_size": 32,
            "learning_starts": 100000,
            "target_update_interval": 1000,
            "train_freq": 4,
            "gradient_steps": 1,
            "exploration_fraction": 0.1,
            "exploration_final_eps": 0.01,
            "optimize_memory_usage": False,
        },
    },
    "a2c": {
        "CartPole-v1": {"n_envs": 8, "n_timesteps": 5e5, "policy": "MlpPolicy", "ent_coef": 0.0},
        "Acrobot-v1": {
            "normalize": True,
            "n_envs": 16,
            "n_timesteps": 5e5,
            "policy": "MlpPolicy",
            "ent_coef": 0.0,
        },
        "MountainCar-v0": {
            "normalize": True,
            "n_envs": 16,
            "n_timesteps": 1e6,
            "policy": "MlpPolicy",
            "ent_coef": 0.0,
        },
        "LunarLander-v3": {
            "n_envs": 8,
            "n_timesteps": 2e5,
            "policy": "MlpPolicy",
            "gamma": 0.995,
            "n_steps": 5,
            "learning_rate": "lin_0.00083",
            "ent_coef": 1e-5,
        },
        "atari": {
            "env_wrapper": _ATARI_WRAPPER,
            "frame_stack": 4,
            "policy": "CnnPolicy",
            "n_envs": 16,
            "n_timesteps": 1e7,
            "ent_coef": 0.01,
            "vf_coef": 0.25,
            "policy_kwargs": "dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5))",
        },
    },
}
NOT_CONSTRUCTOR_ARGS = {
    "n_envs",
    "n_timesteps",
    "policy",
    "normalize",
    "env_wrapper",
    "frame_stack",
    "callback",
    "vec_env_wrapper",
    "env_kwargs",
    "monitor_kwargs",
}


@dataclass(frozen=True)
class ZooConfig:
    """One Zoo entry, split into what builds the envs and what the algorithm's constructor takes.

    ``normalize`` is None, or VecNormalize's keyword arguments (the Zoo's ``normalize: true``,
    with the algorithm's gamma, as the Zoo does). ``source`` says where the numbers came from.
    """

    n_envs: int
    n_timesteps: int
    policy: str
    kwargs: dict[str, Any]
    normalize: dict[str, Any] | None = None
    frame_stack: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def is_atari(env_id: str) -> bool:
    """The Zoo's rule: Atari ids are the ALE's (``ALE/Pong-v5``) or ``...NoFrameskip-v4``."""
    return env_id.startswith("ALE/") or "NoFrameskip" in env_id


def _table(algo: str) -> tuple[dict[str, Any], str]:
    if algo == "muzero":
        from benchmarks.harness.muzero_config import MUZERO_YML, muzero_hyperparams

        folded = {env_id: fold_grouped_settings(entry) for env_id, entry in muzero_hyperparams().items()}
        return folded, str(MUZERO_YML.name)  # group.key settings (as -optimize prints them) in their groups
    try:
        text = importlib.resources.files("rl_zoo3").joinpath(f"hyperparams/{algo}.yml").read_text()
        return yaml.load(text, Loader=yaml.UnsafeLoader), f"rl_zoo3 hyperparams/{algo}.yml"
    except ModuleNotFoundError:
        return FALLBACK.get(algo, {}), "benchmarks/harness/zoo.py FALLBACK (copy of rl_zoo3's numbers)"
    except FileNotFoundError:  # the Zoo has no table for this algorithm (e.g. MaskablePPO)
        return {}, f"rl_zoo3 (no {algo}.yml)"


def _raw_hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    return _lookup(algo, env_id)[0]


def _lookup(algo: str, env_id: str) -> tuple[dict[str, Any], str]:
    table, source = _table(algo)
    key = env_id if env_id in table else ("atari" if is_atari(env_id) and "atari" in table else None)
    if key is None:
        raise KeyError(f"RL Zoo has no {algo} hyperparameters for {env_id}")
    return dict(table[key]), f"{source} [{key}]"


def convert_zoo_value(name: str, value: Any) -> Any:
    """Turn the Zoo's string encodings into objects: ``lin_X`` into a linear schedule from X to 0,
    a ``*_kwargs`` setting written ``"dict(...)"`` into a dict, and the same inside a ``*_kwargs``
    mapping (``self_play_kwargs: {temperature: lin_1.0}``).

    Public so task overrides (``benchmarks/harness/suites.py``, ``benchmarks.boardgame_play
    --muzero-kwargs``) accept the same encodings as the Zoo's YAML files.
    """
    if isinstance(value, str) and value.startswith("lin_"):
        return LinearSchedule(float(value[4:]), 0.0, 1.0)
    if name.endswith("_kwargs") and isinstance(value, str):
        value = _eval_dict_source(value)
    if name.endswith("_kwargs") and isinstance(value, dict):
        return {key: convert_zoo_value(key, item) for key, item in value.items()}
    return value


def merge_settings(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``overrides``; grouped settings (``*_kwargs`` mappings) merge key by key,
    so overriding ``self_play_kwargs.temperature`` keeps the group's other keys."""
    merged = dict(base)
    for name, value in overrides.items():
        if name.endswith("_kwargs") and isinstance(value, dict) and isinstance(base.get(name), dict):
            merged[name] = {**base[name], **value}
        else:
            merged[name] = value
    return merged


def _known_names() -> dict[str, Any]:
    """Names the Zoo's ``dict(...)`` strings use (activations, the TF-like RMSprop), and the
    MinAtar suite's features extractor (``MinAtarCNN``)."""
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
    from torch import nn

    from benchmarks.harness.minatar_cnn import MinAtarCNN

    names: dict[str, Any] = {"RMSpropTFLike": RMSpropTFLike, "MinAtarCNN": MinAtarCNN}
    for activation in ("ReLU", "Tanh", "ELU", "LeakyReLU", "SiLU", "GELU"):
        names[f"nn.{activation}"] = getattr(nn, activation)
    return names


def _eval_dict_source(source: str) -> dict[str, Any]:
    """Parse ``dict(...)`` strings without eval: literals, nested ``dict(...)`` and known names only."""
    value = _safe_value(ast.parse(source, mode="eval").body, source)
    if not isinstance(value, dict):
        raise TypeError(f"unsupported setting {source!r}: expected dict(...)")
    return value


def _safe_value(node: ast.AST, source: str) -> Any:
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict" and not node.args:
        return {kw.arg: _safe_value(kw.value, source) for kw in node.keywords}
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = ast.unparse(node)
        known = _known_names()
        if name not in known:
            raise ValueError(f"unsupported name {name!r} in {source!r}; known: {sorted(known)}")
        return known[name]
    if isinstance(node, ast.List):
        return [_safe_value(item, source) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {ast.literal_eval(k): _safe_value(v, source) for k, v in zip(node.keys, node.values)}
    try:
        return ast.literal_eval(node)
    except ValueError as error:
        raise ValueError(f"unsupported setting {source!r}: {error}") from error


def normalize_kwargs(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The Zoo's ``normalize`` entry as VecNormalize kwargs (None when absent or false)."""
    value = raw.get("normalize", False)
    if value is False or value is None:
        return None
    kwargs = {} if value is True else (dict(value) if isinstance(value, dict) else _eval_dict_source(value))
    discount = raw.get("gamma", raw.get("discount"))  # SB3's name, MuZero's name
    if discount is not None:  # the Zoo normalizes returns with the algorithm's own discount
        kwargs["gamma"] = discount
    return kwargs


def default_discount(algo: str) -> dict[str, float]:
    """``{"discount": MuZero's default}`` for MuZero, else nothing: what VecNormalize discounts
    returns with when an entry sets no discount (SB3's default gamma is VecNormalize's)."""
    if algo != "muzero":
        return {}
    from muzero_agents.settings import SETTINGS

    return {"discount": SETTINGS["discount"].default}


def zoo_config(algo: str, env_id: str) -> ZooConfig:
    """The Zoo's settings for ``algo`` on ``env_id`` (KeyError if the Zoo has none)."""
    raw, source = _lookup(algo, env_id)
    kwargs = {k: convert_zoo_value(k, v) for k, v in raw.items() if k not in NOT_CONSTRUCTOR_ARGS}
    frame_stack = raw.get("frame_stack")
    return ZooConfig(
        n_envs=int(raw.get("n_envs", 1)),
        n_timesteps=int(float(raw.get("n_timesteps", 1e5))),
        policy=str(raw.get("policy", "MlpPolicy")),
        kwargs=kwargs,
        normalize=normalize_kwargs({**default_discount(algo), **raw}),
        frame_stack=int(frame_stack) if frame_stack else None,
        env_kwargs=dict(raw.get("env_kwargs") or {}),
        source=source,
    )


def zoo_hyperparams(algo: str, env_id: str) -> tuple[int, int, dict[str, Any]]:
    """(n_envs, zoo's n_timesteps, constructor kwargs) for ``algo`` on ``env_id``."""
    config = zoo_config(algo, env_id)
    return config.n_envs, config.n_timesteps, config.kwargs


def fold_grouped_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with every ``group.key`` entry merged into its ``group`` mapping (the group's
    other keys kept; a group written ``"dict(...)"`` is parsed first)."""
    folded = {name: value for name, value in settings.items() if "." not in name}
    for name, value in settings.items():
        if "." not in name:
            continue
        group, key = name.split(".", 1)
        if not group.endswith("_kwargs") or "." in key:
            raise ValueError(
                f"{name!r} is not a grouped MuZero setting: write group.key with a *_kwargs group, "
                "e.g. learner_kwargs.reward_loss_coef"
            )
        base = convert_zoo_value(group, folded.get(group)) or {}
        folded[group] = {**base, key: value}
    return folded
