"""Self-play actors and Reanalyze workers in other processes or machines, run by Ray
(``MuZero(num_actors=..., reanalyze_kwargs=dict(num_workers=...))``).

The roles, one per module: ``envs`` (the env sources actors rebuild their envs from),
``cluster`` (importing Ray, joining or starting a cluster, starting and stopping actors),
``worker`` (a self-play actor's process: its envs, a CPU copy of the network, the search),
``fleet`` (the learner's view of the actors: calls, answers, failures and restarts), ``shards``
(the replay, one shard per actor), ``weights`` (the learner's weights as the workers read them),
``reanalyze`` (Reanalyze workers, and the windows the learner samples ahead for them) and ``run``
(``learn``'s loop on the learner's side).

Importing this package does not import Ray; ``run`` imports it when a distributed ``learn``
starts, and says which extra to install when it is missing.
"""

from muzero_agents.distributed.envs import EnvSource, open_env, rebuildable_env, remember

__all__ = ["EnvSource", "open_env", "prepare", "rebuildable_env", "remember"]


def prepare(model):
    """The distributed run ``model.learn`` asks for (``num_actors`` or ``reanalyze_kwargs["num_workers"]``
    above 0), or None: learning stays in this process and Ray is not imported."""
    from muzero_agents.distributed.shards import ShardedReplay

    workers = model.reanalyze_kwargs["num_workers"]
    if (model.num_actors or workers) and model.get_vec_normalize_env() is not None:
        raise ValueError(
            "VecNormalize is not supported with num_actors or Reanalyze workers: each process would "
            "keep statistics of its own. Scale observations and rewards by fixed factors instead "
            "(gymnasium.wrappers.TransformObservation, TransformReward), or learn in this process."
        )
    if not model.num_actors and isinstance(model.replay_buffer, ShardedReplay):  # left by a distributed run
        import warnings

        warnings.warn(
            "num_actors is 0 now: the replay of the earlier distributed learn() (one shard per actor) "
            "cannot take this process's steps, so learning starts with a new replay buffer.",
            UserWarning,
            stacklevel=3,
        )
        model.replay_buffer = model._make_replay_buffer()
    if workers:  # reanalyze_kwargs may have changed since the constructor
        from muzero_agents import settings

        settings.check_cross_settings(model._settings(), model.n_envs)
    if not model.num_actors and not workers:
        return None
    from muzero_agents.distributed import run

    return run.DistributedRun(model) if model.num_actors else run.LocalRun(model)


def check_loadable_replay(replay, num_actors: int, path) -> list:
    """The replays inside ``replay`` that a model with ``num_actors`` actors would train on (each
    shard of a distributed run's replay, else the replay itself); a ValueError naming the fix
    when the replay does not fit that count of actors."""
    from muzero_agents.distributed.shards import ShardedReplay

    if not isinstance(replay, ShardedReplay):
        return [replay]
    count = len(replay.shards)
    if num_actors != count:
        raise ValueError(
            f"{path} holds the replay of a distributed run with {count} self-play actors (one shard "
            f"each), but this model has num_actors={num_actors}: set model.num_actors = {count} before "
            "load_replay_buffer (learn() then runs that many actors), or collect new data."
        )
    return replay.shards
