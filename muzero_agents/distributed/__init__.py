"""Self-play actors in other processes or machines, run by Ray (``MuZero(num_actors=...)``).

The roles, one per module: ``envs`` (the env sources actors rebuild their envs from),
``cluster`` (importing Ray, joining or starting a cluster, starting and stopping actors),
``worker`` (an actor's process: its envs, a CPU copy of the network, the search), ``fleet`` (the
learner's view of the actors: calls, answers, failures and restarts), ``shards`` (the replay,
one shard per actor) and ``run`` (``learn``'s loop on the learner's side).

Importing this package does not import Ray; ``run`` imports it when a distributed ``learn``
starts, and says which extra to install when it is missing.
"""

from muzero_agents.distributed.envs import EnvSource, open_env, rebuildable_env, remember

__all__ = ["EnvSource", "open_env", "prepare", "rebuildable_env", "remember"]


def prepare(model):
    """The distributed run ``model.learn`` asks for (``num_actors`` above 0), or None: learning
    stays in this process and Ray is not imported."""
    from muzero_agents.distributed.shards import ShardedReplay

    if not model.num_actors:
        if isinstance(model.replay_buffer, ShardedReplay):  # left by a distributed run
            import warnings

            warnings.warn(
                "num_actors is 0 now: the replay of the earlier distributed learn() (one shard per actor) "
                "cannot take this process's steps, so learning starts with a new replay buffer.",
                UserWarning,
                stacklevel=3,
            )
            model.replay_buffer = model._make_replay_buffer()
        return None
    from muzero_agents.distributed.run import DistributedRun

    return DistributedRun(model)
