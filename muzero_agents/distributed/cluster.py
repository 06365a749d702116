"""Ray: importing it, finding or starting a cluster, and starting and stopping the actors.

A cluster is found the way Ray finds one: ``ray.init()`` already called in this process, or
the ``RAY_ADDRESS`` environment variable (``RAY_ADDRESS=auto`` for one started with ``ray start``
on this machine). Otherwise a local cluster starts, sized to this machine's cores (and at least
one core per actor), without a dashboard; it stays up for later ``learn`` calls (started again,
larger, for one that needs more cores) and Ray shuts it down when this process exits.
"""

from __future__ import annotations

import os
import uuid
import warnings
from typing import Any

# restarts of one actor before it is given up for good (each crash, or failure of its env, is one)
MAX_RESTARTS = 10
INSTALL_HINT = "pip install 'muzero-agents[distributed]'"


def import_ray():
    """Ray, or an ImportError that names the extra to install."""
    try:
        import ray
    except ImportError as error:
        raise ImportError(
            f"MuZero(num_actors=...) and MuZero(reanalyze_kwargs=dict(num_workers=...)) run their actors "
            f"and workers with Ray, which is not installed: {INSTALL_HINT} (or set both num_actors and "
            'reanalyze_kwargs["num_workers"] to 0 to run everything in this process).'
        ) from error
    return ray


_started: dict[str, Any] = {}  # the local cluster ``connect`` started: its node and CPU count


def connect(workers: int) -> bool:
    """Join the cluster Ray finds, else start a local one with room for ``workers`` one-core actors.
    A local cluster started here for fewer workers is started again. Returns True when this call
    started the cluster."""
    ray = import_ray()
    if ray.is_initialized():
        ours = _started.get("node") == ray.get_runtime_context().get_node_id()
        if not ours:
            return _warn_if_too_small(ray, workers)
        if _started["cpus"] >= workers:
            return False
        ray.shutdown()  # our own cluster, too small for these workers (its earlier ones are stopped)
        _ARGUMENTS.clear()
    elif os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)
        return _warn_if_too_small(ray, workers)
    cpus = max(os.cpu_count() or 1, workers)
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    _started.update(node=ray.get_runtime_context().get_node_id(), cpus=cpus)
    return True


def _warn_if_too_small(ray, workers: int) -> bool:
    """Warn when a cluster this process did not start has fewer CPUs than ``workers`` one-core
    actors need (the others wait for CPUs, as an autoscaler would add). Returns False (not started here)."""
    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus < workers:
        warnings.warn(
            f"the Ray cluster has {cpus:g} CPUs, but learn() starts {workers} one-core actors and "
            f"workers: those without a CPU wait for one, and learn() stops if they have not started "
            f"within a few minutes. Give Ray more CPUs (ray.init(num_cpus={workers})) or lower "
            'num_actors / reanalyze_kwargs["num_workers"].',
            RuntimeWarning,
            stacklevel=4,
        )
    return False


# Ray inlines a constructor argument up to this size (its max_direct_call_object_size) into the
# actor's creation task, which keeps it for every restart; a larger one it puts in its object store
# and frees once the actor has first started, so that a restart fails (ray-project/ray#53727).
RAY_INLINE_LIMIT_BYTES = int(os.environ.get("RAY_max_direct_call_object_size", 100 * 1024))
# an actor's id -> its constructor's argument in the object store, held while the actor may restart
_ARGUMENTS: dict[Any, Any] = {}


def start_workers(worker_class: type, specs: list[Any], role: str = "self-play") -> list[Any]:
    """One Ray actor of ``worker_class`` per spec, each on one core, restarted by Ray when it dies.

    The actors are named ``muzero-<role>-<run>-<index>`` (``ray.util.list_named_actors``; the
    roles are ``self-play`` and ``reanalyze``) and belong to this process: they end with it.
    A large spec goes by reference (``restartable_argument``), held until ``stop_workers``.
    """
    ray = import_ray()
    remote = ray.remote(worker_class)
    run = uuid.uuid4().hex[:8]
    handles = []
    for spec in specs:
        argument = restartable_argument(ray, spec)
        handle = remote.options(
            num_cpus=1,
            max_restarts=MAX_RESTARTS,
            max_task_retries=0,  # work lost with its actor is not done again: the learner asks anew
            name=f"muzero-{role}-{run}-{spec.index}",
        ).remote(argument)
        if argument is not spec:
            _ARGUMENTS[_actor_id(handle)] = argument
        handles.append(handle)
    return handles


def restartable_argument(ray, spec: Any) -> Any:
    """What to pass an actor for ``spec`` so that every restart can read it: the spec itself when
    Ray inlines it into the creation task (pickled, under half of ``RAY_INLINE_LIMIT_BYTES``, as
    Ray's serialization differs a little), else its reference from ``ray.put``, which the caller
    holds while the actor lives. (Passing small specs by value spares the error line Ray logs for
    any restartable actor with an argument in its object store.)"""
    try:
        size = len(ray.cloudpickle.dumps(spec))
    except Exception:  # Ray's own serialization error, at .remote(), names what cannot be pickled
        return spec
    return spec if size < RAY_INLINE_LIMIT_BYTES // 2 else ray.put(spec)


def _actor_id(handle: Any) -> Any:
    """The actor's Ray id (held rather than its handle, which would keep the actor alive); None for
    an object that is no actor's handle."""
    return getattr(handle, "_actor_id", None)


def actor_state(handle: Any) -> str | None:
    """Ray's record of an actor's state (``ALIVE``, ``RESTARTING``, ``DEAD``, ...), or None when it
    cannot be read. Read from the cluster's control store, which needs no dashboard."""
    try:
        from ray._private.state import actors  # Ray's public state API needs the dashboard

        return str(actors(handle._actor_id.hex())["State"])
    except Exception:  # another Ray version, or the cluster went away
        return None


def restarts_spent(handle: Any, error: Exception, deaths: int) -> bool:
    """Whether an actor whose call raised ``ActorDiedError`` is gone for good. Ray raises it for
    calls in flight when the process dies, also when Ray restarts it: so the actor is gone only
    when Ray's record says ``DEAD``. Without a record: when its constructor raised, or when it
    died (``deaths``, as the caller counted them) more often than Ray restarts it."""
    state = actor_state(handle)
    if state is not None:
        return state == "DEAD"
    return bool(getattr(error, "actor_init_failed", False)) or deaths > MAX_RESTARTS


def stop_workers(handles: list[Any]) -> None:
    """End the actors for good (no restart) and let their arguments go; ones already gone are skipped."""
    ray = import_ray()
    for handle in handles:
        _ARGUMENTS.pop(_actor_id(handle), None)
    if not ray.is_initialized():  # the cluster is gone, and its actors with it (and ray.kill would start one)
        return
    for handle in handles:
        try:
            ray.kill(handle, no_restart=True)
        except Exception:  # already dead, or the cluster went away: nothing left to stop
            continue
