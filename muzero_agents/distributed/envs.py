"""Envs that self-play actors can rebuild in their own processes.

A live env (its sockets, emulators, open files) cannot travel to another process, so an actor
builds its own copy from the env's *source*: the env id given to ``MuZero``, or a function that
returns the env. ``MuZero`` records the source of the env it builds (``open_env``) beside that
env, in a table keyed by the env itself, so nothing of it is saved and an env swapped in later
with ``set_env`` has no source until one is given (``rebuildable_env``).
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stable_baselines3.common.vec_env import VecEnv

EnvFactory = Callable[[], Any]  # returns a gymnasium Env or an SB3 VecEnv

_SOURCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # VecEnv -> EnvSource


@dataclass(frozen=True)
class EnvSource:
    """How to build an env again: a gymnasium id (``env_id``) or a function (``factory``).

    An id's registration (``env_spec``, its ``EnvSpec``) is read in the process that made the
    source: an actor's fresh process may not have imported the module that registers the id
    (``wrappers`` for ``BoardGame/...``, ``ale_py`` for ``ALE/...``), but ``gym.make`` imports the
    spec's entry point itself.
    """

    env_id: str | None = None
    factory: EnvFactory | None = None
    env_spec: Any = field(default=None, compare=False)  # gymnasium's EnvSpec of env_id, if registered here

    def build(self) -> Any:
        """A fresh env: ``gym.make`` of the id's spec (or of the id, unregistered where the source
        was made) or ``factory()`` (wrap it as ``MuZero`` does)."""
        if self.env_id is not None:
            import gymnasium as gym

            return gym.make(self.env_spec if self.env_spec is not None else self.env_id)
        return self.factory()

    def describe(self) -> str:
        return (
            repr(self.env_id) if self.env_id is not None else getattr(self.factory, "__name__", "a function")
        )


def registered_spec(env_id: str) -> Any:
    """The ``EnvSpec`` that ``gym.make(env_id)`` builds from, as this process's registry holds it
    (the module of a ``"module:id"`` id imported first, as ``gym.make`` does; an id without a
    version read as its highest registered version, as ``gym.make`` reads it), or None when the id
    is not registered here (``gym.make`` then says why when the env is built)."""
    import gymnasium as gym
    from gymnasium.envs import registration

    module, _, name = env_id.rpartition(":")
    try:
        if module:
            importlib.import_module(module)
        namespace, env_name, version = registration.parse_env_id(name)
        if version is None:
            version = registration.find_highest_version(namespace, env_name)
        return gym.spec(registration.get_env_id(namespace, env_name, version))
    except Exception:  # unregistered or misspelled: gym.make's own error says which
        return None


def open_env(env: Any) -> tuple[Any, EnvSource | None]:
    """What ``MuZero`` hands to SB3 for ``env``, and how actors can rebuild it.

    An id is handed on as it is; a function is called once for the env of this process (SB3
    takes no functions); anything else (a live env) has no source.
    """
    if isinstance(env, str):
        return env, EnvSource(env_id=env, env_spec=registered_spec(env))
    if callable(env) and not _is_env(env):
        return env(), EnvSource(factory=env)
    return env, None


def remember(vec_env: VecEnv | None, source: EnvSource | None) -> None:
    """Record that actors can rebuild ``vec_env`` from ``source``."""
    if vec_env is not None and source is not None:
        _SOURCES[vec_env] = source


def rebuildable_env(factory: EnvFactory) -> VecEnv:
    """Build an env with ``factory`` and remember the factory, so that ``num_actors`` can rebuild it.

    For models whose env is given after construction by ``set_env``, with as many envs as the
    model had (SB3's ``set_env`` refuses another count)::

        model.set_env(rebuildable_env(lambda: make_vec_env("CartPole-v1", n_envs=4)))

    ``MuZero.load(path, env=...)`` takes the id or the function itself, as the constructor does.
    """
    from stable_baselines3.common.base_class import BaseAlgorithm

    vec_env = BaseAlgorithm._wrap_env(factory())
    remember(vec_env, EnvSource(factory=factory))
    return vec_env


def source_of(vec_env: VecEnv | None) -> EnvSource:
    """The source recorded for the model's env, or a ValueError saying what to pass instead."""
    source = _SOURCES.get(vec_env) if vec_env is not None else None
    if source is not None:
        return source
    what = "no env" if vec_env is None else f"a live {type(vec_env).__name__}"
    raise ValueError(
        f"MuZero(num_actors=...) rebuilds the env in each actor's process, but the model has {what}, "
        "which cannot be copied there. Pass the env id (MuZero('MlpPolicy', 'CartPole-v1', ...)) or a "
        "function that returns the env (env=lambda: make_vec_env('CartPole-v1', n_envs=4)); for a "
        "loaded model, the same to MuZero.load(path, env=...) (or "
        "model.set_env(muzero_agents.distributed.rebuildable_env(that_function)) with as many envs as "
        "the model had)."
    )


def _is_env(obj: Any) -> bool:
    """Envs can be callable (a few wrappers are); functions and classes that build one are not envs."""
    import gymnasium as gym

    if isinstance(obj, type):
        return False
    return isinstance(obj, (gym.Env, VecEnv)) or (hasattr(obj, "step") and hasattr(obj, "reset"))
