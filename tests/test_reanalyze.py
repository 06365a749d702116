"""Reanalyzer: the refreshed targets against a brute-force recomputation with the evaluated
values (and policies), which observations are evaluated, legal masks, the replay lock, steps
overwritten between sampling and refreshing, and bad input."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from muzero_agents.reanalyze import Reanalyzer
from muzero_agents.replay import TrajectoryReplay
from muzero_agents.targets import make_batch
from tests.replay_feeder import ACTIONS, Feeder, Setup, check_batch


def value_of(uid, t):
    return 100.0 + uid + 0.01 * t


def policy_of(uid, t):
    return np.eye(ACTIONS, dtype=np.float32)[(uid + t) % ACTIONS]


def reanalyzer_for(setup: Setup, fraction: float, search: bool) -> Reanalyzer:
    return Reanalyzer(fraction, search, setup.settings["td_lambda"])


def refreshed(setup: Setup, window, reanalyzer: Reanalyzer, evaluate, **kwargs):
    return make_batch(reanalyzer.refresh(window, setup.replay, evaluate, **kwargs), **setup.settings)


@pytest.mark.parametrize(
    "kwargs, masks",
    [
        ({"td_steps": 6, "td_lambda": 0.6, "unroll_steps": 1}, False),
        ({"td_steps": 3}, True),
        ({"td_steps": 5, "discount": 1.0, "two_player": True}, False),
    ],
)
def test_search_refresh_replaces_values_and_policies_for_the_fraction(kwargs, masks):
    setup = Setup(**{"unroll_steps": 3, **kwargs})
    feeder = Feeder(setup, seed=5, masks=masks).run(60)
    calls = []

    def evaluate(obs, legal):
        calls.append((obs, legal))
        return (
            np.array([value_of(int(u), int(t)) for u, t in obs]),
            np.stack([policy_of(int(u), int(t)) for u, t in obs]),
        )

    reanalyzer = reanalyzer_for(setup, 0.25, search=True)
    window = setup.replay.sample(200)
    batch = refreshed(setup, window, reanalyzer, evaluate)
    assert len(calls) == 1 and calls[0][0].dtype == np.float64
    obs, legal = calls[0]
    assert len(np.unique(obs, axis=0)) == len(obs)  # each observation once
    check_batch(batch, feeder, rows=range(50), value_of=value_of, policy_of=policy_of)
    check_batch(batch, feeder, rows=range(50, 200))
    # only the observations those 50 samples read were evaluated
    assert {int(u) for u, _ in obs} <= {int(u) for u, _ in batch.observations[:50]}
    assert (legal is None) == (not masks)
    if masks:
        for (uid, t), mask in zip(obs.astype(int), legal):
            ep = feeder.episodes[uid]
            want = ep.legal[t] if t < len(ep.rewards) else np.ones(ACTIONS, bool)
            np.testing.assert_array_equal(mask, want)
    check_batch(make_batch(window, **setup.settings), feeder)  # the window given is unchanged
    check_batch(setup.batch(100), feeder)  # and so are the stored targets


@pytest.mark.parametrize(
    "kwargs, masks",
    [
        ({"td_steps": 3}, False),
        ({"td_steps": 5, "td_lambda": 0.7}, True),
        ({"td_steps": 40, "discount": 1.0, "two_player": True}, False),
    ],
)
def test_value_only_refresh_evaluates_only_the_values_read(kwargs, masks):
    """search=False keeps the stored policies and evaluates only bootstrap positions.

    With whole-game targets (td_steps past every episode's end) only the ends of running and
    truncated episodes are read, so far fewer observations reach the network than the unroll holds.
    Policies the evaluation returns anyway are ignored: the stored policy targets stay.
    """
    counts = {}
    for search in (True, False):
        setup = Setup(unroll_steps=3, **kwargs)
        feeder = Feeder(setup, seed=5, masks=masks).run(60)
        calls = []

        def evaluate(obs, legal, calls=calls, search=search):
            calls.append(obs)
            values = np.array([value_of(int(u), int(t)) for u, t in obs])
            return values, None if search else np.full((len(obs), ACTIONS), 1.0 / ACTIONS)

        reanalyzer = reanalyzer_for(setup, 1.0, search=search)
        batch = refreshed(setup, setup.replay.sample(200), reanalyzer, evaluate)
        check_batch(batch, feeder, value_of=value_of)
        counts[search] = len(calls[0]) if calls else 0
        if kwargs["td_steps"] == 40 and not search:  # only returns' ends are read
            for uid, t in (calls[0] if calls else np.zeros((0, 2))).astype(int):
                episode = feeder.episodes[uid]
                assert episode.kind != "terminated" and t >= len(episode.rewards) - 1
    assert counts[False] < counts[True]


@pytest.mark.parametrize("search", [True, False])
@pytest.mark.parametrize("capacity", [10_000, 90])  # 90: the ring wraps
def test_refresh_with_random_moves_matches_brute_force(search, capacity):
    """Reanalyze reads the values where random moves cut (their own positions included)."""
    setup = Setup(capacity=capacity, unroll_steps=3, td_steps=40, discount=1.0, two_player=True)
    feeder = Feeder(setup, seed=8, random_moves=True).run(150)

    def evaluate(obs, legal):
        values = np.array([value_of(int(u), int(t)) for u, t in obs])
        return values, np.full((len(obs), ACTIONS), 1.0 / ACTIONS) if search else None

    batch = refreshed(setup, setup.replay.sample(300), reanalyzer_for(setup, 1.0, search), evaluate)
    check_batch(
        batch,
        feeder,
        value_of=value_of,
        policy_of=(lambda u, t: np.full(ACTIONS, 0.25)) if search else None,
    )


def test_no_fraction_or_nothing_to_read_calls_nothing():
    setup = Setup(td_steps=3)
    Feeder(setup, seed=5).run(20)
    window = setup.replay.sample(10)

    def evaluate(obs, legal):
        raise AssertionError("evaluate was called")

    assert reanalyzer_for(setup, 0.0, True).refresh(window, setup.replay, evaluate) is window
    assert reanalyzer_for(setup, 0.04, True).refresh(window, setup.replay, evaluate) is window  # rounds to 0


def filled() -> TrajectoryReplay:
    buffer = TrajectoryReplay(
        capacity=64,
        n_envs=1,
        observation_shape=(2,),
        observation_dtype=np.float32,
        action_dim=3,
        unroll_steps=2,
        td_steps=3,
        seed=5,
    )
    for t in range(20):
        buffer.add(
            np.full((1, 2), t, np.float32),
            np.array([t % 3]),
            np.array([1.0], np.float32),
            np.array([0.5], np.float32),
            np.full((1, 3), 1 / 3, np.float32),
            np.array([t % 7 == 6]),
            np.array([t % 7 == 6]),
        )
    return buffer


def test_the_lock_is_held_while_reading_and_released_while_evaluating():
    """A background trainer passes its replay lock: self-play may add() during Reanalyze."""

    class Lock:
        def __init__(self):
            self.lock, self.entered = threading.Lock(), 0

        def __enter__(self):
            self.entered += 1
            return self.lock.__enter__()

        def __exit__(self, *exc):
            return self.lock.__exit__(*exc)

    lock = Lock()
    held_during_evaluate = []

    def evaluate(observations, legal):
        held_during_evaluate.append(lock.lock.locked())
        return observations[:, 0].astype(np.float64) / 10.0, None

    settings = {"discount": 0.9, "td_lambda": 1.0, "two_player": False}
    reanalyzer = Reanalyzer(1.0, False)
    buffers = filled(), filled()
    locked = reanalyzer.refresh(buffers[0].sample(8), buffers[0], evaluate, replay_lock=lock)
    plain = reanalyzer.refresh(buffers[1].sample(8), buffers[1], evaluate)
    assert held_during_evaluate == [False, False] and lock.entered == 1 and not lock.lock.locked()
    for a, b in zip(make_batch(locked, **settings), make_batch(plain, **settings)):
        if a is not None:
            np.testing.assert_array_equal(a, b)


def test_steps_overwritten_between_sampling_and_refreshing_keep_their_stored_values():
    """An add between ``sample`` and ``refresh`` (another thread, the lock released) may
    overwrite stored steps the window reads: those are not evaluated, their sampled values stay."""
    setup = Setup(capacity=30, n_envs=3, td_steps=3, unroll_steps=2)
    feeder = Feeder(setup, seed=11, p_done=0.1).run(20)
    window = setup.replay.sample(200)
    feeder.run(3)  # overwrites the three oldest rows
    overwritten = ~setup.replay.holds(window.handles) & window.inside
    assert overwritten.any() and (~overwritten).any()
    evaluated = []

    def evaluate(obs, legal):
        evaluated.extend((int(u), int(t)) for u, t in obs)
        return np.array([value_of(int(u), int(t)) for u, t in obs]), None

    fresh = reanalyzer_for(setup, 1.0, False).refresh(window, setup.replay, evaluate)
    # the refreshed values are those of the sampled episodes, never of what replaced them
    for b in range(window.batch_size):
        uid, t = (int(x) for x in window.observations[b])
        for j in np.flatnonzero(window.inside[b] & overwritten[b]):
            assert fresh.values[b, j] == window.values[b, j]
        for j in np.flatnonzero(window.values[b] != fresh.values[b]):  # evaluated: still theirs
            assert fresh.values[b, j] == pytest.approx(value_of(uid, t + j))
    assert {uid for uid, _ in evaluated} <= {int(u) for u in window.observations[:, 0]}


def test_bad_arguments():
    for fraction in (-0.1, 1.5, True, "half"):
        with pytest.raises(ValueError, match="fraction must be a number in"):
            Reanalyzer(fraction, False)
    with pytest.raises(ValueError, match="search must be a bool"):
        Reanalyzer(0.5, "yes")
    with pytest.raises(ValueError, match="td_lambda"):
        Reanalyzer(0.5, False, td_lambda=2.0)
    setup = Setup()
    Feeder(setup, seed=5).run(10)
    window = setup.replay.sample(4)
    with pytest.raises(ValueError, match="policies"):
        reanalyzer_for(setup, 1.0, True).refresh(
            window, setup.replay, lambda o, m: (np.zeros(len(o)), np.zeros(len(o)))
        )
    with pytest.raises(ValueError, match="values"):
        reanalyzer_for(setup, 1.0, False).refresh(
            window, setup.replay, lambda o, m: (np.zeros(1 + len(o)), None)
        )
