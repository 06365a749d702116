"""MuZero(num_actors=...): self-play actors run by Ray, the learner and SB3's contract here.

The tests share one local Ray cluster, started by the first distributed learn() as a user's
would be and shut down at the end of the module (test_distributed_reanalyze.py checks that a
shutdown leaves no Ray process). Without Ray installed they skip; the refusals that need no Ray
run either way.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

from muzero_agents import MuZero
from muzero_agents.distributed.shards import ShardedReplay
from muzero_agents.replay import TRUNCATED_NO_VALUE
from tests.test_env_checks import final_observation_outside_env

ROOT = Path(__file__).resolve().parent.parent
HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAS_RAY, reason="Ray is not installed (pip install 'muzero-agents[distributed]')"
)
MONITORING = (
    "distributed/actors_alive",
    "distributed/actor_restarts",
    "distributed/env_steps_per_s",
    "distributed/weight_lag",
)


def two_cartpoles():
    return make_vec_env("CartPole-v1", n_envs=2)


def csv_rows(folder: Path) -> list[dict[str, str]]:
    lines = (folder / "progress.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


class Counting(BaseCallback):
    """Counts the callback calls and the env steps the locals report."""

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.steps, self.started, self.ended = 0, 0, 0, 0

    def _on_training_start(self) -> None:
        self.started += 1

    def _on_step(self) -> bool:
        self.calls += 1
        self.steps += len(self.locals["dones"])
        assert self.locals["new_obs"].shape == (len(self.locals["dones"]), 4)
        return True

    def _on_training_end(self) -> None:
        self.ended += 1


class KillActor(BaseCallback):
    """At step ``at``, kills self-play actor ``index`` through Ray (which restarts it), or with
    SIGKILL to its process when ``crash`` (as a crash would; Ray restarts it too), then stops
    learning once the restarted actor's pieces reach the replay: more steps in its shard than the
    kill found there plus the pieces it may have had in flight."""

    def __init__(self, at: int, index: int = 0, crash: bool = False) -> None:
        super().__init__()
        self.at, self.index, self.crash, self.stored_at_kill = at, index, crash, None

    def _on_step(self) -> bool:
        shard = self.model.replay_buffer.shards[self.index]
        if self.n_calls == self.at:
            import ray

            names = [name for name in ray.util.list_named_actors() if name.startswith("muzero-self-play-")]
            handle = ray.get_actor(next(name for name in names if name.endswith(f"-{self.index}")))
            if self.crash:
                from ray._private.state import actors

                os.kill(actors(handle._actor_id.hex())["Pid"], signal.SIGKILL)
            else:
                ray.kill(handle, no_restart=False)
            self.stored_at_kill = len(shard)
        in_flight = 2 * 16 * shard.n_envs  # IN_FLIGHT pieces of STEPS_PER_PIECE steps
        return self.stored_at_kill is None or len(shard) <= self.stored_at_kill + in_flight


class Interrupt(BaseCallback):
    """Raises KeyboardInterrupt (Ctrl-C) at step ``at``, noting the actors' processes first."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.pids = at, []

    def _on_step(self) -> bool:
        if self.n_calls == self.at:
            import psutil

            self.pids = [
                p.pid for p in psutil.Process().children(recursive=True) if "SelfPlayWorker" in _cmd(p)
            ]
            raise KeyboardInterrupt
        return True


def _cmd(process) -> str:
    try:
        return " ".join(process.cmdline())
    except Exception:
        return ""


def failing_cartpole_factory(marker: Path, fail_at: int):
    """A CartPole whose first env to reach step ``fail_at`` raises in step() (once: ``marker``
    records it). Defined inside a function so that Ray ships the class by value."""
    import gymnasium as gym

    class FailingOnce(gym.Wrapper):
        def __init__(self) -> None:
            super().__init__(gym.make("CartPole-v1"))
            self.count = 0

        def step(self, action):
            self.count += 1
            if self.count == fail_at and not marker.exists():
                marker.write_text("failed")
                raise RuntimeError("the simulator crashed")
            return self.env.step(action)

    return FailingOnce


def big_cartpoles_factory():
    """Two CartPoles from a function that holds 2.4 MB: an actor's constructor argument over
    Ray's 100 KB inline limit (Ray puts such an argument in its object store)."""
    ballast = np.zeros(300_000)

    def big_cartpoles():
        assert ballast.size == 300_000
        return make_vec_env("CartPole-v1", n_envs=2)

    return big_cartpoles


def cartpole_in_this_process_only():
    """A CartPole function that raises in any other process (an actor's): as an env whose
    simulator is missing on the actors' nodes. Made inside a function so that Ray ships it by value."""
    import gymnasium as gym

    here = os.getpid()

    def cartpole():
        if os.getpid() != here:
            raise FileNotFoundError("no simulator licence on this node")
        return gym.make("CartPole-v1")

    return cartpole


class PlayingActor:
    """A self-play actor's handle that notes each ``play`` call: the steps asked, its Ray reference."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, object]] = []
        self.play = SimpleNamespace(remote=self._play)

    def _play(self, weights, version, progress_remaining, steps) -> object:
        ref = object()
        self.calls.append((steps, ref))
        return ref

    @property
    def steps_asked(self) -> list[int]:
        return [steps for steps, _ in self.calls]


class AnsweringRay:
    """Ray as ``Fleet.poll`` uses it: the calls in ``answers`` (a reference -> its piece, or the
    error its call raised) have answered, the others still run."""

    def __init__(self, answers: dict) -> None:
        import ray

        self.answers, self.exceptions = answers, ray.exceptions

    def wait(self, refs, num_returns, timeout):
        return [ref for ref in refs if ref in self.answers], [ref for ref in refs if ref not in self.answers]

    def get(self, ref):
        answer = self.answers[ref]
        if isinstance(answer, Exception):
            raise answer
        return answer


# ---------------------------------------------------------------------------- no Ray needed


def test_a_live_env_is_refused_with_what_to_pass(fast_kwargs):
    model = MuZero("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2), num_actors=1, **fast_kwargs)
    with pytest.raises(ValueError, match=r"env id .*function that returns the env") as refused:
        model.learn(64)
    # for a loaded model: load(env=...) takes the id or function; set_env a rebuildable env
    assert "the same to MuZero.load(path, env=...)" in str(refused.value)
    assert "model.set_env(muzero_agents.distributed.rebuildable_env(" in str(refused.value)


def test_an_env_ids_registration_is_read_as_gym_make_reads_the_id():
    from muzero_agents.distributed.envs import registered_spec

    import wrappers  # noqa: F401  registers BoardGame/...

    assert registered_spec("BoardGame/TicTacToe-v0").id == "BoardGame/TicTacToe-v0"
    assert registered_spec("BoardGame/TicTacToe").id == "BoardGame/TicTacToe-v0"  # the highest version
    assert registered_spec("gymnasium.envs.classic_control:CartPole-v1").id == "CartPole-v1"
    assert registered_spec("Missing/Nothing-v0") is None  # gym.make's own error says why, in the actor


def test_a_missing_ray_names_the_extra(fast_kwargs, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    model = MuZero("MlpPolicy", "CartPole-v1", num_actors=1, **fast_kwargs)
    with pytest.raises(ImportError, match=r"pip install 'muzero-agents\[distributed\]'"):
        model.learn(64)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="num_actors"):
        MuZero("MlpPolicy", "CartPole-v1", num_actors=-1)
    with pytest.raises(TypeError, match="num_actors"):
        MuZero("MlpPolicy", "CartPole-v1", num_actors=1.5)
    with pytest.raises(ValueError, match="num_workers"):
        MuZero("MlpPolicy", "CartPole-v1", reanalyze_kwargs={"num_workers": -1})
    with pytest.raises(
        TypeError, match=re.escape('moved to reanalyze_kwargs["num_workers"] in muzero-agents 0.3.0')
    ):
        MuZero("MlpPolicy", "CartPole-v1", num_reanalyze_workers=1)
    workers, fraction = (
        re.escape('reanalyze_kwargs["num_workers"]=2'),
        re.escape('reanalyze_kwargs["fraction"]'),
    )
    with pytest.raises(ValueError, match=rf"{workers} needs Reanalyze.*{fraction} is 0"):
        MuZero("MlpPolicy", "CartPole-v1", reanalyze_kwargs={"num_workers": 2, "fraction": 0.0})


def test_a_fraction_set_to_0_later_is_refused_when_learn_starts(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", reanalyze_kwargs={"num_workers": 1}, **fast_kwargs)
    model.reanalyze_kwargs["fraction"] = 0.0
    with pytest.raises(ValueError, match=re.escape('reanalyze_kwargs["fraction"] is 0')):
        model.learn(64)


def test_a_failed_actor_creation_is_summed_up_by_the_exception_behind_it():
    """Ray hands an actor's failed creation back as text only: the summary names the exception
    the constructor raised, or the one that kept Ray from fetching the constructor's argument."""
    from muzero_agents.distributed.fleet import error_summary

    class FailedCreation(Exception):
        actor_init_failed = True

    died = "The actor died because of an error raised in its creation task, ray::W.__init__() (pid=1)"
    raised = (
        f"{died}\nKeyError: 'inner'\n\nThe above exception was the direct cause of the following exception:\n\n"
        '  File "/x/worker.py", line 8, in __init__\n    self.envs = build()\n    ^^^^^^^^^^^^^\n'
        "gymnasium.error.NamespaceNotFound: Namespace BoardGame not found.\nHave you installed it?"
    )
    assert error_summary(FailedCreation(raised)) == (
        "FailedCreation: its creation failed: gymnasium.error.NamespaceNotFound: "
        "Namespace BoardGame not found. Have you installed it?"
    )
    unfetched = (
        f"{died}\n  At least one of the input arguments for this task could not be computed:\n"
        "ray.exceptions.ReferenceCountingAssertionError: Failed to retrieve object 00ff."
    )
    assert error_summary(FailedCreation(unfetched)).endswith(
        "failed: ray.exceptions.ReferenceCountingAssertionError: Failed to retrieve object 00ff."
    )
    assert error_summary(FailedCreation(died)) == f"FailedCreation: {died}"  # no more to say


def worker_spec(fast_kwargs, seed, index):
    """Actor ``index``'s spec, as a distributed run over CartPole seeded with ``seed`` builds it."""
    from muzero_agents.distributed.run import DistributedRun

    model = MuZero("MlpPolicy", "CartPole-v1", num_actors=3, seed=seed, **fast_kwargs)
    return DistributedRun(model)._specs()[index]


@needs_ray
def test_actor_seeds_come_from_the_seed_the_index_and_the_restarts_only(fast_kwargs):
    from muzero_agents.distributed.worker import SelfPlayWorker

    def first_draws(worker):
        return np.concatenate([worker.observations.ravel(), worker.actor.rng.random(3)])

    spec = worker_spec(fast_kwargs, seed=5, index=1)
    first, again = SelfPlayWorker(spec), SelfPlayWorker(spec)
    np.testing.assert_array_equal(first_draws(first), first_draws(again))
    other_index = SelfPlayWorker(worker_spec(fast_kwargs, seed=5, index=2))
    assert not np.array_equal(first.observations, other_index.observations)
    # a restarted process is told its restart count, and seeds from it as every run does
    first.describe(restarts=1)
    again.rebuild_envs(restarts=1)
    assert not np.array_equal(first.observations, SelfPlayWorker(spec).observations)
    np.testing.assert_array_equal(first_draws(first), first_draws(again))
    unseeded = worker_spec(fast_kwargs, seed=None, index=1)
    assert not np.array_equal(SelfPlayWorker(unseeded).observations, SelfPlayWorker(unseeded).observations)


@needs_ray
def test_a_probe_that_dies_while_ray_restarts_the_actor_waits_for_it(monkeypatch):
    """Ray raises ActorDiedError for a call in flight at any death of the actor's process, also
    when it restarts the actor: the slot is given up only when Ray's record says it is dead."""
    import ray

    from muzero_agents.distributed import cluster
    from muzero_agents.distributed.fleet import DEAD, RESTARTING, Fleet

    fleet = Fleet([object()])
    slot = fleet.slots[0]
    slot.state = RESTARTING
    for state in ("RESTARTING", "ALIVE"):
        monkeypatch.setattr(cluster, "actor_state", lambda handle, state=state: state)
        fleet._failed(slot, slot.generation, ray.exceptions.ActorDiedError())
        assert slot.state == RESTARTING  # probed again
    monkeypatch.setattr(cluster, "actor_state", lambda handle: None)  # no record: its deaths are counted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        while slot.deaths < cluster.MAX_RESTARTS:
            fleet._failed(slot, slot.generation, ray.exceptions.ActorDiedError())
            assert slot.state == RESTARTING
    with pytest.warns(RuntimeWarning, match="self-play actor 0 is gone for good"):
        fleet._failed(slot, slot.generation, ray.exceptions.ActorDiedError())
    assert slot.state == DEAD
    slot.state = RESTARTING
    monkeypatch.setattr(cluster, "actor_state", lambda handle: "DEAD")
    with pytest.warns(RuntimeWarning, match="gone for good"):
        fleet._failed(slot, slot.generation, ray.exceptions.ActorDiedError())
    assert slot.state == DEAD


@needs_ray
def test_a_piece_carries_the_search_statistics_of_each_step(fast_kwargs, monkeypatch):
    import ray

    from muzero_agents.distributed.worker import SelfPlayWorker

    monkeypatch.setattr(ray, "get_runtime_context", lambda: SimpleNamespace(get_node_id=lambda: "node"))
    worker = SelfPlayWorker(worker_spec(fast_kwargs, seed=0, index=0))
    piece = worker.play([None], worker.version, 1.0, 3)  # the weights it has: nothing to fetch
    assert len(piece.statistics) == 3
    for step in piece.statistics:
        assert set(step) == {"root_value", "visit_entropy", "prior_entropy", "policy_kl"}
        assert step["policy_kl"] >= 0.0 and 0.0 <= step["prior_entropy"] <= np.log(2) + 1e-6


@needs_ray
def test_the_last_pieces_asked_hold_only_the_steps_still_needed(fast_kwargs):
    """Pieces are 16 vectorized steps, the last ones fewer, so that learn() ends less than one
    vectorized step past total_timesteps, as SB3's loop does; a lost short piece is asked again."""
    import ray

    from muzero_agents.distributed.fleet import Fleet
    from muzero_agents.distributed.run import DistributedRun

    model = MuZero("MlpPolicy", two_cartpoles, num_actors=2, **fast_kwargs)
    run, actors = DistributedRun(model), [PlayingActor(), PlayingActor()]
    run.fleet = Fleet(actors)
    for slot in run.fleet.slots:
        slot.n_envs = 2
    model._loop = SimpleNamespace(steps_owed=0)
    model.num_timesteps = 10
    run._ask(85)  # 75 env steps to go: two whole pieces (16 steps of 2 envs), then 6 steps for 11
    assert [actor.steps_asked for actor in actors] == [[16, 16], [6]]
    (_, whole), (_, short) = actors[0].calls[0], actors[1].calls[0]
    run.fleet.ray = AnsweringRay({whole: SimpleNamespace(node_id="node")})
    assert len(run.fleet.poll(0)[0]) == 1
    model.num_timesteps += 32  # the learner took it
    run._ask(85)
    assert [actor.steps_asked for actor in actors] == [[16, 16], [6]]  # the pieces in flight hold the rest
    run.fleet.ray = AnsweringRay({short: ray.exceptions.ActorDiedError()})
    with pytest.warns(RuntimeWarning, match="self-play actor 1 failed"):
        run.fleet.poll(0)
    run._ask(85)  # its 11 env steps are still needed: the running actor plays them
    assert [actor.steps_asked for actor in actors] == [[16, 16, 6], [6]]


@needs_ray
def test_an_actors_pieces_from_before_its_failure_are_stored_before_its_episodes_end(
    fast_kwargs, monkeypatch
):
    from muzero_agents.distributed.fleet import Failure
    from muzero_agents.distributed.run import DistributedRun

    model = MuZero("MlpPolicy", "CartPole-v1", num_actors=1, **fast_kwargs)
    run = DistributedRun(model)
    slot = SimpleNamespace(index=0)
    answers = [([(slot, "piece")], [Failure(slot, "RuntimeError: env crashed")])]
    run.fleet = SimpleNamespace(
        probe_due=lambda: None, raise_if_all_dead=lambda: None, poll=lambda timeout: answers.pop(0)
    )
    model._loop = SimpleNamespace(replay_lock=threading.Lock())
    order = []

    def take(pieces, total, callback, log_interval, dumped_at):
        order.append(("store", [piece for _, piece in pieces]))
        model.num_timesteps = total
        return True, dumped_at

    for name in ("_publish_weights", "_record_monitoring"):
        monkeypatch.setattr(run, name, lambda *args: None)
    monkeypatch.setattr(run, "_ask", lambda total: None)
    monkeypatch.setattr(run, "_take_pieces", take)
    monkeypatch.setattr(
        model.replay_buffer, "truncate_running_episodes", lambda shard: order.append(("end", shard))
    )
    run._loop_until(10, callback=None, log_interval=0)
    assert order == [("store", ["piece"]), ("end", 0)]


@needs_ray
def test_a_poll_with_nothing_asked_waits_instead_of_spinning():
    from muzero_agents.distributed.fleet import IDLE_WAIT_S, Fleet

    fleet = Fleet([object()])  # running, nothing in flight: the trainer is behind
    started = time.perf_counter()
    assert fleet.poll(1.0) == ([], [])
    assert IDLE_WAIT_S <= time.perf_counter() - started < 0.5


@needs_ray
def test_a_local_cluster_too_small_for_a_later_learn_is_started_again(monkeypatch):
    from muzero_agents.distributed import cluster

    calls = []
    state = {"on": False, "node": 0}

    def init(**kwargs):
        state.update(on=True, node=state["node"] + 1)
        calls.append(("init", kwargs["num_cpus"]))

    def shutdown():
        state["on"] = False
        calls.append(("shutdown",))

    fake = SimpleNamespace(
        is_initialized=lambda: state["on"],
        get_runtime_context=lambda: SimpleNamespace(get_node_id=lambda: state["node"]),
        init=init,
        shutdown=shutdown,
    )
    monkeypatch.setattr(cluster, "import_ray", lambda: fake)
    monkeypatch.setattr(cluster, "_started", {})
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster.connect(1) and not cluster.connect(2)  # room for two already
    assert cluster.connect(3) and calls == [("init", 2), ("shutdown",), ("init", 3)]
    state["node"] = 99  # a cluster the user started since: joined as it is
    fake.cluster_resources = lambda: {"CPU": 1.0}  # with one core
    with pytest.warns(RuntimeWarning, match=r"has 1 CPUs, but learn\(\) starts 8 one-core actors"):
        assert not cluster.connect(8)  # their actors would wait silently for minutes
    assert calls[-1] == ("init", 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cluster.connect(1)


def test_an_env_function_builds_the_env_here_too(fast_kwargs):
    model = MuZero("MlpPolicy", two_cartpoles, **fast_kwargs)
    assert model.n_envs == 2
    model.learn(64)
    assert model.num_timesteps == 64


def test_without_actors_ray_is_never_imported():
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, "tests")
        from conftest import FAST_MUZERO
        from muzero_agents import MuZero
        MuZero("MlpPolicy", "CartPole-v1", **FAST_MUZERO).learn(64)
        print("ray imported:", "ray" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "ray imported: False" in done.stdout


# ---------------------------------------------------------------------------- with Ray


@pytest.fixture(scope="module")
def ray_processes():
    """The Ray processes that the tests leave running (the cluster the first learn() starts)."""
    if not HAS_RAY:
        pytest.skip("Ray is not installed (pip install 'muzero-agents[distributed]')")
    # Ray runs its workers at niceness 15; on a busy machine, restarted actors would start slowly.
    niceness = os.environ.get("RAY_worker_niceness")
    os.environ["RAY_worker_niceness"] = "0"
    yield
    import ray

    ray.shutdown()
    if niceness is None:
        os.environ.pop("RAY_worker_niceness", None)
    else:
        os.environ["RAY_worker_niceness"] = niceness


@needs_ray
def test_two_actors_learn_with_sb3s_contract(tmp_path, fast_kwargs, ray_processes):
    workers = {"num_workers": 1}
    model = MuZero("MlpPolicy", two_cartpoles, num_actors=2, reanalyze_kwargs=workers, seed=0, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    counting = Counting()
    model.learn(400, callback=counting, log_interval=2, progress_bar=True)
    assert 400 <= model.num_timesteps < 402  # every actor's env steps, two per vectorized step
    assert counting.steps == model.num_timesteps and counting.calls == model.num_timesteps // 2
    assert (counting.started, counting.ended) == (1, 1)
    assert isinstance(model.replay_buffer, ShardedReplay) and len(model.replay_buffer) == model.num_timesteps
    assert all(len(shard) > 0 for shard in model.replay_buffer.shards)  # both actors played
    assert model._n_updates > 0
    rows = csv_rows(tmp_path)
    for key in (*MONITORING, "train/value_loss", "rollout/ep_rew_mean", "search/root_value"):
        assert key in rows[-1], key
    assert float(rows[-1]["distributed/actors_alive"]) == 2
    assert float(rows[-1]["distributed/actor_restarts"]) == 0
    assert float(rows[-1]["distributed/env_steps_per_s"]) > 0
    # the Reanalyze worker read the weights the actors read, and evaluated every window
    assert float(rows[-1]["distributed/reanalyze_workers_alive"]) == 1
    assert float(rows[-1]["distributed/reanalyze_fallbacks"]) == 0
    lags = [
        float(row["distributed/reanalyze_weight_lag"])
        for row in rows
        if row["distributed/reanalyze_weight_lag"]
    ]
    assert lags and max(lags) <= 8  # published every 4 steps

    model.save(tmp_path / "model.zip")
    loaded = MuZero.load(tmp_path / "model.zip")
    assert loaded.num_actors == 2 and loaded.num_timesteps == model.num_timesteps
    observations = np.zeros((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0],
        model.predict(observations, deterministic=True)[0],
    )
    model.train(2, batch_size=8)  # the sharded replay feeds train() as one replay does
    model.save_replay_buffer(tmp_path / "replay.pkl")
    loaded.load_replay_buffer(tmp_path / "replay.pkl")  # a model with as many actors takes it
    assert isinstance(loaded.replay_buffer, ShardedReplay)
    assert len(loaded.replay_buffer) == len(model.replay_buffer)


@needs_ray
def test_learn_ends_within_one_vectorized_step_of_total_timesteps(fast_kwargs, ray_processes):
    model = MuZero("MlpPolicy", two_cartpoles, num_actors=1, **fast_kwargs)
    counting = Counting()
    model.learn(75, callback=counting)  # pieces of 32 env steps (16 of 2 envs): 96 if all were whole
    assert 75 <= model.num_timesteps < 75 + model.n_envs  # as SB3's loop
    assert counting.steps == model.num_timesteps and counting.calls == model.num_timesteps // 2
    assert len(model.replay_buffer) == model.num_timesteps


@needs_ray
def test_a_killed_actor_is_restarted_and_learning_completes(tmp_path, fast_kwargs, ray_processes):
    fast_kwargs["buffer_size"] = 50_000  # nothing evicted: every step received stays
    model = MuZero("MlpPolicy", two_cartpoles, num_actors=2, seed=1, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    kill = KillActor(at=40, index=0)
    with pytest.warns(RuntimeWarning, match="self-play actor 0 failed"):
        model.learn(20_000, callback=kill, log_interval=1)
    _assert_restarted_once(model, tmp_path, actors=2)
    # its running episodes were ended (no value to bootstrap from), the other actor's were not
    killed, other = (shard.sample(2000) for shard in model.replay_buffer.shards)
    assert (killed.episode_end == TRUNCATED_NO_VALUE).any()
    assert not (other.episode_end == TRUNCATED_NO_VALUE).any()
    # every step received was stored; what the kill lost was never counted
    assert len(model.replay_buffer) == model.num_timesteps


@needs_ray
def test_a_killed_actor_with_a_large_spec_is_restarted(tmp_path, fast_kwargs, ray_processes):
    """Ray frees an argument it put in its object store once the actor first started
    (ray-project/ray#53727); the restart must still find the actor's spec."""
    model = MuZero("MlpPolicy", big_cartpoles_factory(), num_actors=1, seed=1, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    kill = KillActor(at=40, index=0, crash=True)
    with pytest.warns(RuntimeWarning, match="self-play actor 0 failed"):
        model.learn(20_000, callback=kill, log_interval=1)
    _assert_restarted_once(model, tmp_path, actors=1)


def _assert_restarted_once(model, log_folder, actors: int) -> None:
    """One actor restarted and played again: all ``actors`` alive at the end, learn(20_000) cut short."""
    assert model.num_timesteps < 20_000, "the restarted actor never played"
    model.dump_logs()  # the values recorded at the last step (the callback stopped learn before a dump)
    rows = csv_rows(log_folder)
    assert float(rows[-1]["distributed/actor_restarts"]) == 1
    assert float(rows[-1]["distributed/actors_alive"]) == actors  # it came back


@needs_ray
def test_an_env_id_registered_by_an_import_is_built_in_a_fresh_actor(fast_kwargs, ray_processes):
    """The actor's process never imported ``wrappers``, which registers ``BoardGame/...``."""
    import wrappers  # noqa: F401  (registers the board games here, as a user's script does)

    fast_kwargs.update(discount=1.0, td_steps=9)
    model = MuZero("MlpPolicy", "BoardGame/TicTacToe-v0", num_actors=1, seed=0, **fast_kwargs)
    model.learn(64)
    assert model.num_timesteps >= 64 and len(model.replay_buffer) == model.num_timesteps


@needs_ray
def test_an_actor_that_cannot_start_is_reported_with_the_exception_it_raised(fast_kwargs, ray_processes):
    model = MuZero("MlpPolicy", cartpole_in_this_process_only(), num_actors=1, **fast_kwargs)
    with pytest.raises(RuntimeError, match="a self-play actor could not start") as failed:
        model.learn(64)
    assert "FileNotFoundError: no simulator licence on this node" in str(failed.value)


@needs_ray
def test_an_observation_outside_the_space_in_an_actor_stops_learn(fast_kwargs, ray_processes):
    model = MuZero("MlpPolicy", final_observation_outside_env(), num_actors=1, **fast_kwargs)
    with pytest.raises(ValueError, match=r"final observation .*env 0 is 7, outside the observation space"):
        model.learn(200)  # as without actors: restarting the env cannot mend its data
    assert model.num_timesteps < 200


@needs_ray
def test_an_env_that_raises_in_an_actor_restarts_it(tmp_path, fast_kwargs, ray_processes):
    env_class = failing_cartpole_factory(tmp_path / "failed", fail_at=40)
    model = MuZero("MlpPolicy", env_class, num_actors=1, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    with pytest.warns(RuntimeWarning, match="RuntimeError: the simulator crashed"):
        model.learn(200, log_interval=1)
    assert (tmp_path / "failed").exists()  # it did fail, in the actor's process
    assert model.num_timesteps >= 200
    assert float(csv_rows(tmp_path)[-1]["distributed/actor_restarts"]) == 1


@needs_ray
def test_ctrl_c_in_the_learner_stops_the_actors(fast_kwargs, ray_processes):
    import psutil

    model = MuZero("MlpPolicy", "CartPole-v1", num_actors=1, **fast_kwargs)
    interrupt = Interrupt(at=20)
    with pytest.raises(KeyboardInterrupt):
        model.learn(10_000, callback=interrupt)
    assert interrupt.pids, "no actor process found"
    _, alive = psutil.wait_procs(
        [psutil.Process(pid) for pid in interrupt.pids if psutil.pid_exists(pid)], 20
    )
    assert not alive
    import ray

    assert not [name for name in ray.util.list_named_actors() if name.startswith("muzero-self-play-")]
