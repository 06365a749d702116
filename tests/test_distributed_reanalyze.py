"""MuZero(reanalyze_kwargs=dict(num_workers=...)): Reanalyze's evaluations in Ray actors, for windows the
learner samples ahead.

A worker's evaluation is tested on its own, and the learner's side over workers that a fake Ray
answers at once (no Ray process). The last test learns with a worker on a local Ray cluster of
its own, kills the worker, and checks that shutting the cluster down leaves no Ray process."""

from __future__ import annotations

import contextlib
import importlib.util
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from muzero_agents import MuZero
from muzero_agents.learner import ReplayStep
from muzero_agents.reanalyze import Reanalyzer, network_evaluate

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (pip install 'muzero-agents[distributed]')",
)
MONITORING = (
    "distributed/reanalyze_weight_lag",
    "distributed/reanalyze_workers_alive",
    "distributed/reanalyze_failures",
    "distributed/reanalyze_fallbacks",
)


def last_row(folder: Path) -> dict[str, str]:
    header, *rows = (folder / "progress.csv").read_text().splitlines()
    return dict(zip(header.split(","), rows[-1].split(",")))


def planner_settings(model, search: bool) -> tuple:
    planner = (model.search, dict(model.search_kwargs), model.discount, model.two_player)
    return search, model.num_simulations, planner


@pytest.mark.parametrize("search", [False, True])
def test_a_worker_evaluates_as_the_learner_does(fast_kwargs, search):
    """The worker's evaluation with the learner's weights is ``network_evaluate``'s (no Ray), and
    not that of the network the worker was built with."""
    from muzero_agents.distributed.reanalyze import ReanalyzeSpec, ReanalyzeWorker
    from muzero_agents.distributed.run import policy_recipe

    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    spec = ReanalyzeSpec(policy_recipe(model), seed=0, index=0)
    settings = planner_settings(model, search)
    observations = np.random.default_rng(1).normal(size=(9, 4)).astype(np.float32)
    built_with = ReanalyzeWorker(spec).evaluate_now(observations, None, settings).values
    torch.manual_seed(0)
    with torch.no_grad():  # trained-like weights: a new network's value and policy heads are zero
        for parameter in model.policy.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    worker = ReanalyzeWorker(spec)
    worker.set_weights(model.policy.state_dict(), 7)
    got = worker.evaluate_now(observations, None, settings)
    rng = np.random.default_rng(0)
    values, policies = network_evaluate(model.policy, model.planner, model.num_simulations, search, rng)(
        observations, None
    )
    assert got.version == 7
    np.testing.assert_allclose(got.values, values, rtol=1e-6, atol=1e-6)
    assert np.abs(got.values - built_with).max() > 1e-3  # the learner's weights were loaded
    if search:
        np.testing.assert_allclose(got.policies, policies, rtol=1e-6, atol=1e-6)
    else:
        assert got.policies is None


class FakeRef:
    """A Ray object the fake Ray answers: ``result``, or ``error`` raised, once ``ready``."""

    def __init__(self, result=None, error: Exception | None = None, ready: bool = True) -> None:
        self.result, self.error, self.ready = result, error, ready


class FakeRay:
    """Ray's calls that ``RemoteReanalyze`` makes, answered at once from ``FakeRef``s."""

    def __init__(self) -> None:
        import ray

        self.exceptions = ray.exceptions

    def wait(self, refs, num_returns=1, timeout=None):
        return [r for r in refs if r.ready], [r for r in refs if not r.ready]

    def get(self, ref):
        if ref.error is not None:
            raise ref.error
        return ref.result

    def put(self, value):
        return value


class FakeWorker:
    """A worker handle whose calls return what the test queues in ``answers`` (else evaluations
    computed at once by a real ``ReanalyzeWorker``)."""

    def __init__(self, worker) -> None:
        self.worker, self.answers, self.pings, self.settings = worker, [], [], []
        self.evaluate = type("Method", (), {"remote": self._evaluate})()
        self.ping = type("Method", (), {"remote": self._ping})()

    def _evaluate(self, weights, version, observations, legal_masks, settings):
        self.settings.append(settings)
        if self.answers:
            return self.answers.pop(0)
        self.worker.set_weights(weights[0], version)
        return FakeRef(self.worker.evaluate_now(observations, legal_masks, settings))

    def _ping(self):
        return self.pings.pop(0) if self.pings else FakeRef(0)


def played_model(fast_kwargs) -> MuZero:
    """A model whose replay holds 60 steps of CartPole, and whose weights differ from those that
    played them (so that Reanalyze changes the stored values)."""
    fast_kwargs["learning_starts"] = fast_kwargs["buffer_size"]  # no gradient step
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(60)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.policy.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    return model


def fake_remote(model: MuZero):
    """``RemoteReanalyze`` over one fake worker (``FakeWorker``), with a fake Ray."""
    from muzero_agents.distributed import reanalyze
    from muzero_agents.distributed.run import policy_recipe
    from muzero_agents.distributed.weights import PublishedWeights

    weights = PublishedWeights()
    weights.ray = FakeRay()
    handle = FakeWorker(reanalyze.ReanalyzeWorker(reanalyze.ReanalyzeSpec(policy_recipe(model), 0, 0)))
    remote = reanalyze.RemoteReanalyze(model, [handle], weights)
    remote.ray = weights.ray
    return remote, handle


def step_source(model: MuZero, remote, search: bool) -> ReplayStep:
    """What ``MuZero._gradient_step`` hands the gradient step, with ``remote`` as the windows' source."""
    rng = np.random.default_rng(0)
    evaluate = network_evaluate(model.policy, model.planner, model.num_simulations, search, rng)
    targets = dict(discount=model.discount, td_lambda=model.td_lambda, two_player=False)
    return ReplayStep(
        model.replay_buffer, Reanalyzer(1.0, search, model.td_lambda), evaluate, targets, remote
    )


@needs_ray
def test_workers_refresh_sampled_windows_as_the_learner_would(fast_kwargs):
    """The window a gradient step gets is the in-process Reanalyze's refresh of the window sampled
    for it, with the same weights (value-only, and with search); the next is sampled ahead."""
    model = played_model(fast_kwargs)
    remote, _ = fake_remote(model)
    replay, sampled = model.replay_buffer, []
    sample = replay.sample
    replay.sample = lambda *args, **kwargs: sampled.append(sample(*args, **kwargs)) or sampled[-1]
    for search in (False, True):
        source = step_source(model, remote, search)
        first = len(sampled)
        got = remote(source, 16, 1.0, False, contextlib.nullcontext())
        assert len(sampled) == first + 2  # this step's window and the next one, sampled ahead
        want = source.reanalyzer.refresh(sampled[first], replay, source.evaluate)
        assert not np.allclose(want.values, sampled[first].values)  # Reanalyze changed them
        np.testing.assert_allclose(got.values, want.values, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.policies, want.policies, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.handles, want.handles)
    assert remote.fallbacks == 0 and list(remote._lags) == [0, 0]


@needs_ray
def test_a_late_or_dead_worker_costs_speed_only(fast_kwargs, monkeypatch):
    """A worker that is late, then dies for good: its windows are evaluated in the learner, it
    gets work again once its late answer comes, and once it is gone Reanalyze runs here."""
    from muzero_agents.distributed import cluster, reanalyze

    model = played_model(fast_kwargs)
    remote, handle = fake_remote(model)
    source = step_source(model, remote, search=False)

    def step():
        return remote(source, 8, 1.0, False, contextlib.nullcontext())

    late = FakeRef(reanalyze.Evaluation(np.zeros(8), None, version=0, seconds=30.0), ready=False)
    handle.answers.append(late)
    with pytest.warns(RuntimeWarning, match="Reanalyze worker 0 did not answer"):
        step()
    assert (remote.alive, remote.fallbacks) == (0, 1)
    step()  # the next window was sent to it before: evaluated here too
    assert remote.fallbacks == 2
    step()  # no worker running: sampled and refreshed here as without workers (no fallback)
    assert remote.fallbacks == 2 and not remote._ahead
    late.ready = True  # the late answer serves as the probe: the worker gets work again
    step()
    assert remote.alive == 1 and remote.fallbacks == 2 and len(remote._lags) == 1
    assert remote.workers[0].slowest_s == 30.0  # the late evaluation's time sets the next wait

    died = remote.ray.exceptions.ActorDiedError()
    handle.answers += [FakeRef(error=died), FakeRef(error=died)]
    step()  # the window it evaluated last step
    with pytest.warns(RuntimeWarning, match="Reanalyze worker 0 failed"):
        step()
    assert remote.alive == 0 and remote.failures == 1
    monkeypatch.setattr(cluster, "actor_state", lambda handle: "DEAD")  # Ray's restarts are spent
    handle.pings.append(FakeRef(error=died))
    step()  # sends the probe
    with pytest.warns(RuntimeWarning) as warned:
        step()
    messages = " ".join(str(warning.message) for warning in warned)
    assert "Reanalyze worker 0 is gone for good" in messages and "every Reanalyze worker is gone" in messages
    assert remote.workers[0].state == reanalyze.DEAD
    fallbacks = remote.fallbacks
    step()
    assert remote.fallbacks == fallbacks and not remote._ahead


def test_a_slow_worker_is_waited_for_longer_after_its_first_late_answer():
    from muzero_agents.distributed import reanalyze

    def took(seconds):
        return reanalyze.Evaluation(np.zeros(1), None, version=0, seconds=seconds)

    worker = reanalyze._Worker(0, handle=None)
    assert worker.timeout() == reanalyze.RESULT_TIMEOUT_S
    worker.answered(took(5.0))  # quick evaluations keep the shortest wait
    assert worker.timeout() == reanalyze.RESULT_TIMEOUT_S
    worker.answered(took(100.0))
    worker.answered(took(1.0))
    assert worker.timeout() == reanalyze.TIMEOUT_MARGIN * 100.0


def test_windows_sampled_ahead_follow_a_change_of_the_search_settings(fast_kwargs):
    model = played_model(fast_kwargs)
    remote, handle = fake_remote(model)
    source = step_source(model, remote, search=True)

    def step():
        return remote(source, 8, 1.0, False, contextlib.nullcontext())

    step()
    assert {settings[1] for settings in handle.settings} == {model.num_simulations}
    sent = len(handle.settings)
    model.num_simulations = model.num_simulations + 3  # e.g. by a callback during learn
    step()
    # every window queued under the old settings was dropped and sampled anew, under the new ones
    assert len(handle.settings) - sent == len(remote._ahead) + 1
    assert {settings[1] for settings in handle.settings[sent:]} == {model.num_simulations}

    value_only = step_source(model, remote, search=False)
    remote(value_only, 8, 1.0, False, contextlib.nullcontext())
    sent = len(handle.settings)
    model.num_simulations += 3  # a value-only Reanalyze does not search: its queue is kept
    remote(value_only, 8, 1.0, False, contextlib.nullcontext())
    assert len(handle.settings) - sent == 1


# ---------------------------------------------------------------------------- with Ray


class KillReanalyzeWorker(BaseCallback):
    """At step ``at``, kills the Reanalyze worker through Ray (which restarts it). Once the
    learner has seen the failure, waits until the restarted worker answers a probe (learning
    would go on meanwhile, but it would keep the one free core from the worker's restart)."""

    def __init__(self, at: int, save_path: Path) -> None:
        super().__init__()
        self.at, self.save_path, self.remote, self.restarts_seen_at = at, save_path, None, None

    def _on_step(self) -> bool:
        if self.n_calls == self.at:
            import ray

            self.model.save(self.save_path)  # a checkpoint while the workers run
            self.remote = self.model._remote_reanalyze
            name = next(n for n in ray.util.list_named_actors() if n.startswith("muzero-reanalyze-"))
            ray.kill(ray.get_actor(name), no_restart=False)
        if self.remote is not None and self.remote.failures and self.restarts_seen_at is None:
            self.restarts_seen_at = self.n_calls
            waited = time.monotonic()
            while self.remote.alive == 0 and time.monotonic() - waited < 120:
                self.remote._check_probes()
                time.sleep(0.1)
            from muzero_agents.distributed import cluster

            self.state = cluster.actor_state(self.remote.workers[0].handle)  # as the fleet reads it
        return True


def ray_children() -> list:
    """This process's Ray processes (a local cluster's are its children)."""
    import psutil

    def command(process) -> str:
        try:
            return " ".join(process.cmdline())
        except Exception:
            return ""

    return [p for p in psutil.Process().children(recursive=True) if "ray" in command(p)]


@needs_ray
def test_a_killed_worker_does_not_stop_learning_and_shutdown_leaves_no_ray_process(
    tmp_path, fast_kwargs, monkeypatch
):
    """Self-play in this process, Reanalyze on one worker, which is killed: the window it had in
    flight is refreshed by the learner, and the worker gets windows again once Ray restarted it.
    learn() started a local cluster; ray.shutdown() ends every process of it."""
    import psutil
    import ray

    # Ray runs its workers at niceness 15: on a machine busy with other work, the restarted
    # worker's start-up (imports, network) could then take minutes. The cluster this test starts
    # runs them at the test's own priority.
    monkeypatch.setenv("RAY_worker_niceness", "0")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ray.shutdown()  # a cluster other tests left: this test starts its own
    psutil.wait_procs(ray_children(), timeout=30)
    model = MuZero("MlpPolicy", "CartPole-v1", reanalyze_kwargs={"num_workers": 1}, seed=0, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    kill = KillReanalyzeWorker(at=60, save_path=tmp_path / "checkpoint.zip")
    with pytest.warns(RuntimeWarning, match="Reanalyze worker 0 failed"):
        model.learn(240, callback=kill, log_interval=1)
    ours = ray_children()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ray.shutdown()
    _, alive = psutil.wait_procs(ours, timeout=30)
    assert ours and not alive, [p.pid for p in alive]

    assert model.num_timesteps == 240
    assert model._remote_reanalyze is None  # the gradient steps refresh their windows themselves again
    remote = kill.remote
    assert kill.restarts_seen_at is not None, "the learner never saw the worker fail"
    assert remote.failures >= 1 and remote.fallbacks >= 1  # in flight, and probes in the restart
    assert remote.alive == 1, "the restarted worker never answered"
    assert kill.state == "ALIVE"
    row = last_row(tmp_path)
    for key in (*MONITORING, "train/value_loss"):
        assert key in row, key
    assert float(row["distributed/reanalyze_failures"]) >= 1
    model.train(1, batch_size=8)  # after learn(), in this process
    assert MuZero.load(tmp_path / "checkpoint.zip").reanalyze_kwargs["num_workers"] == 1
