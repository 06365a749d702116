"""RL Zoo's tuned hyperparameters for the SB3 baselines (read from the installed ``rl_zoo3``).

Without ``rl_zoo3`` installed we fall back to a copy of its CartPole-v1 numbers
(rl_zoo3/hyperparams/{ppo,dqn,a2c}.yml, rl-baselines3-zoo 2.x), so the benchmark still runs.
"""

from __future__ import annotations

import ast
import importlib.resources
from typing import Any

import yaml
from stable_baselines3.common.utils import LinearSchedule

FALLBACK: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {"CartPole-v1": dict(n_envs=8, n_timesteps=1e5, policy="MlpPolicy", n_steps=32, batch_size=256,
                                gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                                learning_rate="lin_0.001", clip_range="lin_0.2")},
    "dqn": {"CartPole-v1": dict(n_timesteps=5e4, policy="MlpPolicy", learning_rate=2.3e-3, batch_size=64,
                                buffer_size=100000, learning_starts=1000, gamma=0.99, target_update_interval=10,
                                train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                                exploration_final_eps=0.04, policy_kwargs="dict(net_arch=[256, 256])")},
    "a2c": {"CartPole-v1": dict(n_envs=8, n_timesteps=5e5, policy="MlpPolicy", ent_coef=0.0)},
}
NOT_CONSTRUCTOR_ARGS = {"n_envs", "n_timesteps", "policy", "normalize", "env_wrapper", "frame_stack",
                        "callback", "vec_env_wrapper"}


def _raw_hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    try:
        text = importlib.resources.files("rl_zoo3").joinpath(f"hyperparams/{algo}.yml").read_text()
        table = yaml.load(text, Loader=yaml.UnsafeLoader)
    except ModuleNotFoundError:
        table = FALLBACK.get(algo, {})
    if env_id not in table:
        raise KeyError(f"RL Zoo has no {algo} hyperparameters for {env_id}")
    return dict(table[env_id])


def _convert(name: str, value: Any) -> Any:
    """Turn the Zoo's string encodings (lin_X schedules, policy_kwargs source) into objects."""
    if isinstance(value, str) and value.startswith("lin_"):
        return LinearSchedule(float(value[4:]), 0.0, 1.0)
    if name == "policy_kwargs" and isinstance(value, str):
        return _eval_policy_kwargs(value)
    return value


def _eval_policy_kwargs(source: str) -> dict[str, Any]:
    """Parse ``dict(...)`` strings without eval: only literal keyword values are allowed."""
    call = ast.parse(source, mode="eval").body
    if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "dict"):
        raise ValueError(f"unsupported policy_kwargs {source!r}")
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def zoo_hyperparams(algo: str, env_id: str) -> tuple[int, int, dict[str, Any]]:
    """(n_envs, zoo's n_timesteps, constructor kwargs) for ``algo`` on ``env_id``."""
    raw = _raw_hyperparams(algo, env_id)
    kwargs = {k: _convert(k, v) for k, v in raw.items() if k not in NOT_CONSTRUCTOR_ARGS}
    return int(raw.get("n_envs", 1)), int(float(raw.get("n_timesteps", 1e5))), kwargs
