"""Build what one benchmark run needs: the algorithm on its training envs, and its eval envs.

Seeds are shared by every algorithm: run seed ``s`` seeds the algorithm and its training envs
with ``s`` (sub-env ``i`` with ``s + i``) and the eval envs with ``10_000 + s``, again before
every evaluation, so evaluations never replay training episodes and every algorithm, at every
evaluation, is measured on the same episodes (board games: the learner plays first in every
other one).

Hyperparameters: the RL Zoo's entry for the algorithm and env (``benchmarks.harness.zoo``; MuZero's
from ``benchmarks/muzero.yml``), or where the Zoo has none the task's ``zoo_fallback`` entry
(MinAtar: the Zoo's Atari entry), then the task's overrides (``benchmarks.harness.suites``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecNormalize, VecTransposeImage
from stable_baselines3.common.vec_env.base_vec_env import VecEnvWrapper

from benchmarks.harness.suites import Task
from benchmarks.harness.zoo import (
    ZooConfig,
    convert_zoo_value,
    default_discount,
    merge_settings,
    normalize_kwargs,
    zoo_config,
)

EVAL_SEED_OFFSET = 10_000
ALGOS = ("muzero", "ppo", "dqn", "a2c", "maskable_ppo")
# engine opponents of the benchmarks, at their weakest and fastest settings
ENGINE_SETTINGS = {
    "gnugo": {"level": 1},
    "stockfish": {"skill_level": 0, "depth": 1},
    "gnushogi": {"depth": 1},
}


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The class behind an algorithm name of the suites."""
    if algo == "muzero":
        from muzero_agents import MuZero

        return MuZero
    if algo == "maskable_ppo":
        try:
            from sb3_contrib import MaskablePPO
        except ImportError as error:
            raise ImportError("maskable_ppo needs sb3-contrib: pip install 'muzero-agents[bench]'") from error
        return MaskablePPO
    import stable_baselines3

    classes = {"ppo": stable_baselines3.PPO, "dqn": stable_baselines3.DQN, "a2c": stable_baselines3.A2C}
    if algo not in classes:
        raise ValueError(f"Unknown algorithm {algo!r}; known: {', '.join(ALGOS)}")
    return classes[algo]


def zoo_key(task: Task) -> str:
    """The env id the hyperparameter tables use (board games: their ``BoardGame/...`` ids)."""
    if task.kind != "board":
        return task.env_id
    from wrappers import GYMNASIUM_IDS

    # Go's pass_when_settled (a learner rule and a move limit) keeps the game's hyperparameter entry
    game = {key: value for key, value in task.game_kwargs.items() if key != "pass_when_settled"}
    for env_id, kwargs in GYMNASIUM_IDS.items():
        if kwargs == {"name": task.env_id, **game}:
            return env_id
    raise KeyError(f"board game {task.env_id!r} has no Gymnasium id in wrappers.GYMNASIUM_IDS")


def algo_config(algo: str, task: Task) -> ZooConfig:
    """The Zoo's settings for ``algo`` on the task, with the task's overrides applied (grouped
    ``*_kwargs`` settings merge key by key: an override of one key keeps the group's others)."""
    overrides = {key: convert_zoo_value(key, value) for key, value in task.overrides.get(algo, {}).items()}
    config = _base_config(algo, task)
    if not overrides:
        return config
    normalize = config.normalize
    if "normalize" in overrides:
        normalize = normalize_kwargs({**default_discount(algo), **config.kwargs, **overrides})
        del overrides["normalize"]
    return replace(
        config,
        n_envs=int(overrides.pop("n_envs", config.n_envs)),
        policy=str(overrides.pop("policy", config.policy)),
        frame_stack=overrides.pop("frame_stack", config.frame_stack) or None,
        normalize=normalize,
        kwargs=merge_settings(config.kwargs, overrides),
        source=f"{config.source} + task overrides {sorted(task.overrides[algo])}",
    )


def _base_config(algo: str, task: Task) -> ZooConfig:
    """The table's entry for the task's env, else its ``zoo_fallback`` entry, else library defaults
    (for algorithms the task's overrides configure)."""
    keys = [task.zoo_fallback] if task.zoo_fallback else []
    try:
        keys.insert(0, zoo_key(task))
    except KeyError:  # a board game without a Gymnasium id: only the task's overrides configure it
        pass
    for key in keys:
        try:
            return zoo_config(algo, key)
        except KeyError:
            pass
    if algo not in task.overrides:
        raise KeyError(
            f"No hyperparameters for {algo} on {task.name}: the RL Zoo has none; add them to "
            f"the task's overrides in benchmarks/harness/suites.py (or benchmarks/muzero.yml for MuZero)."
        )
    return ZooConfig(
        n_envs=1, n_timesteps=task.budget, policy="MlpPolicy", kwargs={}, source="library defaults"
    )


def make_versus_env(game: str, opponent: str, seed: int | None = None, **game_kwargs: Any) -> Any:
    """A board game against a named opponent, the learner alternating sides per episode.

    Engines (``"gnugo"``) play at their weakest settings (GNU Go level 1)."""
    from wrappers import make_board_game

    if opponent == "negamax":
        from wrappers import ConnectFourNegamaxOpponent

        if game != "connect_four":
            raise ValueError("the negamax opponent plays connect four only")
        return make_board_game(
            game, opponent=ConnectFourNegamaxOpponent(seed=seed), agent_side="alternate", **game_kwargs
        )
    opponent_kwargs = ENGINE_SETTINGS.get(opponent)
    return make_board_game(
        game, opponent=opponent, agent_side="alternate", opponent_kwargs=opponent_kwargs, **game_kwargs
    )


def _register_atari() -> None:
    try:
        import ale_py
        import gymnasium
    except ImportError as error:
        raise ImportError("Atari tasks need ale-py and OpenCV: pip install 'muzero-agents[atari]'") from error
    gymnasium.register_envs(ale_py)


def _make_envs(
    algo: str,
    task: Task,
    config: ZooConfig,
    n_envs: int,
    seed: int,
    evaluation: bool,
    opponent: str | None = None,
) -> VecEnv:
    """Training envs (``evaluation=False``) or one eval env per episode, wrapped as the Zoo wraps them."""
    if task.kind == "atari":
        _register_atari()
        env = make_atari_env(task.env_id, n_envs=n_envs, seed=seed)
        return VecFrameStack(env, config.frame_stack or 4)
    if task.kind == "minatar":
        from wrappers.minatar import make_minatar

        factory = functools.partial(make_minatar, task.env_id, **task.game_kwargs)
        env = make_vec_env(factory, n_envs=n_envs, seed=seed)
        return VecFrameStack(env, config.frame_stack) if config.frame_stack else env
    if task.kind == "board":
        if evaluation:
            factory = functools.partial(make_versus_env, task.env_id, opponent, seed, **task.game_kwargs)
        elif algo == "muzero":  # self-play: MuZero plays both sides
            from wrappers import make_board_game

            factory = functools.partial(make_board_game, task.env_id, **task.game_kwargs)
        else:
            factory = functools.partial(make_versus_env, task.env_id, "random", **task.game_kwargs)
        return make_vec_env(factory, n_envs=n_envs, seed=seed)
    env = make_vec_env(task.env_id, n_envs=n_envs, seed=seed, env_kwargs=config.env_kwargs)
    if config.frame_stack:
        env = VecFrameStack(env, config.frame_stack)
    if config.normalize is not None:
        env = (
            VecNormalize(env, training=False, norm_reward=False)
            if evaluation
            else VecNormalize(env, **config.normalize)
        )
    return env


@dataclass
class BuiltRun:
    """A model ready to ``learn`` and the eval envs it is measured on (label -> VecEnv)."""

    model: BaseAlgorithm
    eval_envs: dict[str, VecEnv]
    use_masks: bool
    config: ZooConfig
    eval_seed: int  # every evaluation reseeds the eval envs with it: the same episodes each time

    def settings(self) -> dict[str, Any]:
        """What the run used, for its record file."""
        return run_settings(self.config)


def run_settings(config: ZooConfig) -> dict[str, Any]:
    """What a run with ``config`` uses, as its record file and checkpoints keep it (JSON values)."""
    settings = {
        "source": config.source,
        "n_envs": config.n_envs,
        "policy": config.policy,
        "normalize": config.normalize,
        "frame_stack": config.frame_stack,
        "kwargs": {k: repr(v) for k, v in sorted(config.kwargs.items())},
    }
    return json.loads(json.dumps(settings, default=str))  # as a record file reads it back


def build_run(algo: str, task: Task, seed: int, device: str = "auto") -> BuiltRun:
    """The model for ``algo`` on ``task`` with run seed ``seed``, and its eval envs."""
    config = algo_config(algo, task)
    env = _make_envs(algo, task, config, config.n_envs, seed, evaluation=False)
    model = algorithm_class(algo)(config.policy, env, seed=seed, device=device, verbose=0, **config.kwargs)
    eval_seed = EVAL_SEED_OFFSET + seed
    eval_envs = {
        evaluation.name: _make_envs(
            algo, task, config, task.eval_episodes, eval_seed, evaluation=True, opponent=evaluation.opponent
        )
        for evaluation in task.evaluations
    }
    if _is_wrapped(model.get_env(), VecTransposeImage):  # SB3 transposed the images: match it
        eval_envs = {name: VecTransposeImage(env) for name, env in eval_envs.items()}
    return BuiltRun(model, eval_envs, use_masks=task.kind == "board", config=config, eval_seed=eval_seed)


def _is_wrapped(env: VecEnv | None, wrapper: type) -> bool:
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, wrapper):
            return True
        env = env.venv
    return False
