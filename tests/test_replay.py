"""TrajectoryReplay: what it stores and evicts, prioritized sampling and importance weights, the
sampled windows (copies, handles, read-only accessors), pickling and its format version,
compatibility checks and bad input. Targets built from the windows: tests/test_targets.py."""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muzero_agents.replay import RUNNING, TERMINATED, TRUNCATED, ReplayWindow, TrajectoryReplay
from tests.replay_feeder import ACTIONS, Feeder, Setup, check_batch

DATA = pathlib.Path(__file__).parent / "data"


def test_window_fields_have_their_documented_shapes_and_dtypes():
    setup = Setup(unroll_steps=3, td_steps=5)
    Feeder(setup, seed=1, masks=True, random_moves=True).run(60)
    window = setup.replay.sample(50, next_observations=True)
    b, k, w = 50, 3, 3 + 5 + 1
    assert isinstance(window, ReplayWindow)
    assert (window.batch_size, window.unroll_steps, window.td_steps) == (b, k, 5)
    shapes = {
        "observations": ((b, 2), np.float64),
        "actions": ((b, k), np.int64),
        "rewards": ((b, w), np.float32),
        "values": ((b, w), np.float64),
        "policies": ((b, k + 1, ACTIONS), np.float32),
        "episode_end": ((b,), np.int8),
        "steps_left": ((b,), np.int64),
        "handles": ((b, w), np.int64),
        "weights": ((b,), np.float32),
        "legal_masks": ((b, k + 1, ACTIONS), bool),
        "random_cuts": ((b, w), bool),
        "next_observations": ((b, k, 2), np.float64),
    }
    for name, (shape, dtype) in shapes.items():
        value = getattr(window, name)
        assert value.shape == shape and value.dtype == dtype, name
    np.testing.assert_array_equal(window.indices, window.handles[:, 0])
    assert set(np.unique(window.episode_end)) <= {RUNNING, TERMINATED, TRUNCATED, 3}
    with pytest.raises(AttributeError):
        window.values = None  # frozen


def test_window_is_a_copy_that_later_adds_cannot_change():
    setup = Setup(capacity=30, n_envs=3)
    feeder = Feeder(setup, seed=2).run(12)
    window = setup.replay.sample(40, next_observations=True)
    before = {name: np.copy(value) for name, value in vars(window).items() if value is not None}
    feeder.run(30)  # the ring wraps several times
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(window, name), value)
    assert not setup.replay.holds(window.handles).any()


def test_accessors_read_the_stored_steps_by_handle():
    setup = Setup(capacity=60, n_envs=3)
    feeder = Feeder(setup, seed=3, masks=True).run(15)
    replay = setup.replay
    window = replay.sample(100)
    inside = window.inside
    handles = window.handles[inside]
    assert replay.holds(handles).all()
    observations, masks = replay.observations_at(handles), replay.legal_masks_at(handles)
    uid, t = window.observations[:, 0], window.observations[:, 1]
    steps = np.broadcast_to(np.arange(inside.shape[1]), inside.shape)
    np.testing.assert_array_equal(observations[:, 0], np.broadcast_to(uid[:, None], inside.shape)[inside])
    np.testing.assert_array_equal(observations[:, 1], (t[:, None] + steps)[inside])
    for (u, s), mask in zip(observations.astype(int), masks):
        np.testing.assert_array_equal(mask, feeder.episodes[u].legal[s])
    finals = 0
    for b in np.flatnonzero(window.episode_end == TRUNCATED):
        left = int(window.steps_left[b])
        if left > inside.shape[1]:
            continue
        final = replay.final_observation(window.handles[b, left - 1])
        episode = feeder.episodes[int(uid[b])]
        assert (final is not None) == episode.final_obs_kept
        if final is not None:
            finals += 1
            np.testing.assert_array_equal(final, [episode.uid, len(episode.rewards)])
    assert finals > 0
    assert replay.final_observation(window.handles[0, 0] + 10**9) is None
    assert Setup().replay.legal_masks_at(np.zeros(2, np.int64)) is None


def test_eviction_keeps_capacity_and_whole_recent_episodes():
    # 8 rows x 3 envs; episodes often longer than the ring (the running one then loses its head)
    setup = Setup(capacity=24, n_envs=3, priority_alpha=0.0)
    replay = setup.replay
    feeder = Feeder(setup, seed=2, p_done=0.12)
    for _ in range(20):
        feeder.run(7)
        assert 0 < len(replay) <= 24
        batch = setup.batch(1000)  # uniform: sees every stored transition
        check_batch(batch, feeder, rows=range(100))
        stored = {(int(u), int(t)) for u, t in batch.observations}
        assert len(stored) == len(replay)
        uids = {u for u, _ in stored}
        assert replay.num_episodes == len(uids)
        for uid in uids:
            ep = feeder.episodes[uid]
            steps = sorted(t for u, t in stored if u == uid)
            assert steps == list(range(steps[0], len(ep.rewards)))  # contiguous up to the end
            if ep.kind != "running" and steps[0] > 0:  # finished episodes are kept whole...
                assert len(ep.rewards) > replay.rows  # ...unless longer than the ring
        for env in range(replay.n_envs):  # per env, the stored episodes are the newest ones
            mine = [ep.uid for ep in feeder.episodes.values() if ep.env == env and ep.rewards]
            kept = [uid for uid in mine if uid in uids]
            assert kept == mine[len(mine) - len(kept) :]


def freqs(replay: TrajectoryReplay, draws: int) -> np.ndarray:
    window = replay.sample(draws)
    return np.bincount(window.observations[:, 1].astype(int), minlength=5) / draws


def four_steps(alpha: float, beta: float = 1.0) -> tuple[TrajectoryReplay, np.ndarray]:
    """One env, four transitions with priorities 1..4; returns the replay and their handles."""
    replay = Setup(n_envs=1, priority_alpha=alpha, priority_beta=beta, seed=3).replay
    for t in range(4):
        replay.add(np.array([[0, t]]), [0], [0.0], [0.0], np.full((1, ACTIONS), 0.25), [False], [False])
    window = replay.sample(400)
    handles = np.zeros(4, dtype=np.int64)
    handles[window.observations[:, 1].astype(int)] = window.indices
    replay.update_priorities(handles, np.array([1.0, 2.0, 3.0, 4.0]))
    return replay, handles


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0])
def test_priorities_shape_sampling_frequencies(alpha):
    replay, _ = four_steps(alpha)
    want = np.arange(1, 5) ** alpha
    np.testing.assert_allclose(freqs(replay, 40_000)[:4], want / want.sum(), atol=0.012)
    # a new transition enters with the largest priority seen so far (4)
    replay.add(np.array([[0, 4]]), [0], [0.0], [0.0], np.full((1, ACTIONS), 0.25), [True], [True])
    want = np.append(want, 4.0**alpha)
    np.testing.assert_allclose(freqs(replay, 40_000), want / want.sum(), atol=0.012)


@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
def test_importance_weights_hand_example(beta):
    replay, _ = four_steps(alpha=1.0, beta=beta)
    window = replay.sample(1000)  # contains the priority-1 transition, the largest weight
    p = window.observations[:, 1] + 1.0
    # w = (N P)^-beta = (4 p / 10)^-beta, divided by the largest, (4/10)^-beta: w = p^-beta
    np.testing.assert_allclose(window.weights, p**-beta, rtol=1e-6)
    replay.beta = 0.0  # annealing by assignment
    assert (replay.sample(10).weights == 1).all()


def test_stale_handles_are_ignored():
    replay = Setup(capacity=2, n_envs=1, priority_alpha=1.0).replay
    for t in range(2):
        replay.add(np.array([[0, t]]), [0], [0.0], [0.0], np.full((1, ACTIONS), 0.25), [t == 1], [True])
    old = replay.sample(20).indices
    for t in range(2):
        replay.add(np.array([[1, t]]), [0], [0.0], [0.0], np.full((1, ACTIONS), 0.25), [t == 1], [True])
    replay.update_priorities(old, np.full(old.shape, 100.0))
    window = replay.sample(100)
    assert (window.observations[:, 0] == 1).all()
    assert (window.weights == 1).all()  # both new transitions kept equal priority
    assert not replay.holds(old).any()


def assert_same_windows(a: ReplayWindow, b: ReplayWindow) -> None:
    for name, value in vars(a).items():
        if value is None:
            assert getattr(b, name) is None, name
        else:
            np.testing.assert_array_equal(value, getattr(b, name))


def test_pickle_round_trip():
    setup = Setup(capacity=600, n_envs=3, td_lambda=0.8)
    feeder = Feeder(setup, seed=4, masks=True).run(250)  # wrapped around
    replay = setup.replay
    clone = pickle.loads(pickle.dumps(replay))
    assert len(clone) == len(replay) and clone.num_episodes == replay.num_episodes
    assert_same_windows(replay.sample(64, next_observations=True), clone.sample(64, next_observations=True))
    feeder.replay = setup.replay = clone
    feeder.run(30)
    check_batch(setup.batch(200), feeder)


def test_pickle_is_compact_before_the_ring_fills():
    replay = TrajectoryReplay(100_000, 4, (4, 84, 84), np.uint8, 18, 5, 10)
    for _ in range(3):
        replay.add(
            np.zeros((4, 4, 84, 84), np.uint8),
            np.zeros(4, int),
            np.zeros(4),
            np.zeros(4),
            np.full((4, 18), 1 / 18),
            np.zeros(4, bool),
            np.zeros(4, bool),
        )
    data = pickle.dumps(replay)
    assert len(data) < 2_000_000  # the full arrays would be ~2.8 GB
    clone = pickle.loads(data)
    assert clone.sample(8).observations.dtype == np.uint8
    assert clone._obs.shape == replay._obs.shape


def test_a_buffer_pickled_by_version_0_1_0_is_refused_with_the_fix():
    data = (DATA / "replay-buffer-v0.1.0.pkl").read_bytes()
    with pytest.raises(ValueError, match=r"saved by muzero-agents 0\.1\.0.*collect new data.*0\.1\.0"):
        pickle.loads(data)


def test_a_buffer_of_another_format_version_is_refused():
    setup = Setup()
    Feeder(setup, seed=0).run(5)
    state = setup.replay.__getstate__()
    state["_format_version"] = 99
    clone = TrajectoryReplay.__new__(TrajectoryReplay)
    with pytest.raises(ValueError, match="format version 99"):
        clone.__setstate__(state)


MODEL = dict(
    n_envs=3,
    observation_shape=(2,),
    observation_dtype=np.float64,
    action_dim=ACTIONS,
    unroll_steps=4,
    td_steps=3,
)


def test_check_compatible_accepts_the_same_settings():
    Setup().replay.check_compatible(**MODEL)
    Setup().replay.check_compatible(**{**MODEL, "observation_shape": [2], "observation_dtype": "float64"})


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("n_envs", 4, "n_envs=3 but this model has n_envs=4; load it into a model whose env has 3 envs"),
        ("observation_shape", (3,), r"observation_shape=\(2,\) but this model has observation_shape=\(3,\)"),
        ("observation_dtype", np.uint8, "observation_dtype=dtype.'float64'. .*collect new data"),
        ("action_dim", 5, "action_dim=4 but this model has action_dim=5; load it into a model of the"),
        (
            "unroll_steps",
            5,
            "unroll_steps=4 but this model has unroll_steps=5; build the model with unroll_steps=4",
        ),
        ("td_steps", 10, "td_steps=3 but this model has td_steps=10; build the model with td_steps=3"),
    ],
)
def test_check_compatible_names_the_setting_both_values_and_the_fix(name, value, message):
    with pytest.raises(ValueError, match=f"the replay buffer in buffer.pkl was recorded with {message}"):
        Setup().replay.check_compatible(**{**MODEL, name: value}, path="buffer.pkl")


def test_legal_masks_are_stored_and_given_always_or_never():
    setup = Setup(unroll_steps=3)
    feeder = Feeder(setup, seed=6, masks=True).run(40)
    window = setup.replay.sample(200)
    assert window.legal_masks.shape == (200, 4, ACTIONS) and setup.replay.has_legal_masks
    for b in range(200):
        uid, t = (int(x) for x in window.observations[b])
        ep = feeder.episodes[uid]
        for k in range(min(4, len(ep.rewards) - t)):
            np.testing.assert_array_equal(window.legal_masks[b, k], ep.legal[t + k])
    with pytest.raises(ValueError, match="legal_masks"):
        setup.replay.add(
            np.zeros((3, 2)),
            [0, 0, 0],
            np.zeros(3),
            np.zeros(3),
            np.full((3, ACTIONS), 0.25),
            np.zeros(3, bool),
            np.zeros(3, bool),
        )


def test_uint8_observations_stay_uint8():
    replay = TrajectoryReplay(64, 2, (3, 5, 5), np.uint8, 3, 2, 2)
    obs = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 5), dtype=np.uint8)
    rest = ([0, 1], [0, 0], [0, 0], np.full((2, 3), 1 / 3), [False, False], [False, False])
    replay.add(obs, *rest)
    assert replay._obs.dtype == np.uint8
    window = replay.sample(16)
    assert window.observations.dtype == np.uint8
    assert all((o == obs[0]).all() or (o == obs[1]).all() for o in window.observations)
    replay.add(obs.astype(np.int64), *rest)  # integers that fit are accepted
    assert len(replay) == 4
    for bad in (obs.astype(np.float32), obs.astype(np.int64) + 1000):
        with pytest.raises(TypeError, match="dtype"):
            replay.add(bad, *rest)


def test_float16_policy_storage():
    setup = Setup(policy_dtype=np.float16)
    feeder = Feeder(setup, seed=7).run(30)
    assert setup.replay._policies.dtype == np.float16
    batch = setup.batch(100)
    assert batch.target_policies.dtype == np.float32
    for b in range(100):
        uid, t = (int(x) for x in batch.observations[b])
        if t < len(feeder.episodes[uid].policies):
            want = feeder.episodes[uid].policies[t]
            np.testing.assert_allclose(batch.target_policies[b, 0], want, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": 2, "n_envs": 3}, "capacity"),
        ({"td_steps": 0}, "td_steps"),
        ({"td_steps": 2.5}, "td_steps"),
        ({"unroll_steps": -1}, "unroll_steps"),
        ({"priority_alpha": -1.0}, "priority_alpha"),
        ({"priority_beta": -1.0}, "beta"),
        ({"action_dim": 0}, "action_dim"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Setup(**{"capacity": 100, "n_envs": 2, **kwargs})


def test_bad_add_and_sample_arguments():
    replay = Setup(n_envs=2).replay
    good = {
        "observations": np.zeros((2, 2)),
        "actions": [0, 1],
        "rewards": [0.0, 0.0],
        "root_values": [0.0, 0.0],
        "search_policies": np.full((2, ACTIONS), 0.25),
        "dones": [False, True],
        "terminated": [False, False],
    }
    with pytest.raises(ValueError, match="holds no transitions yet"):
        replay.sample(4)
    for name, bad in [
        ("observations", np.zeros((2, 3))),
        ("actions", [0]),
        ("rewards", np.zeros(3)),
        ("search_policies", np.zeros((2, 3))),
        ("dones", [True]),
        ("actions", [0, ACTIONS]),
        ("rewards", [np.nan, 0]),
    ]:
        with pytest.raises(ValueError, match=name):
            replay.add(**{**good, name: bad})
    with pytest.raises(ValueError, match="final_values"):
        replay.add(**good, final_values={0: 1.0})  # env 0 is not done
    with pytest.raises(ValueError, match="final_values"):
        replay.add(**good, final_values={1: [1.0, 2.0]})
    with pytest.raises(ValueError, match="final_observations"):
        replay.add(**good, final_values={1: 1.0}, final_observations={1: np.zeros(3)})
    assert len(replay) == 0  # nothing half-written
    replay.add(**good)
    with pytest.raises(ValueError, match="batch_size"):
        replay.sample(0)
    with pytest.raises(ValueError, match="same length"):
        replay.update_priorities(np.zeros(2, np.int64), np.ones(3))
    with pytest.raises(ValueError, match="priorities"):
        replay.update_priorities(np.zeros(1, np.int64), np.array([-1.0]))
    with pytest.raises(ValueError, match="beta"):
        replay.beta = -0.1


@settings(max_examples=25, deadline=None)
@given(
    n_envs=st.integers(1, 4),
    rows=st.integers(1, 12),
    unroll=st.integers(0, 5),
    n=st.integers(1, 8),
    lam=st.sampled_from([1.0, 0.0, 0.6]),
    alpha=st.sampled_from([0.0, 1.0]),
    two_player=st.booleans(),
    p_done=st.sampled_from([0.05, 0.3, 0.7]),
    steps=st.integers(1, 60),
    seed=st.integers(0, 2**16),
)
def test_random_configurations_against_the_spec(
    n_envs, rows, unroll, n, lam, alpha, two_player, p_done, steps, seed
):
    setup = Setup(
        capacity=rows * n_envs,
        n_envs=n_envs,
        unroll_steps=unroll,
        td_steps=n,
        td_lambda=lam,
        two_player=two_player,
        discount=0.9,
        priority_alpha=alpha,
        seed=seed,
    )
    replay = setup.replay
    feeder = Feeder(setup, seed=seed, p_done=p_done).run(steps)
    want = feeder.stored()
    assert len(replay) == len(want) <= replay.capacity
    batch = setup.batch(60 * len(want))  # all at the initial max priority: uniform
    assert {(int(u), int(t)) for u, t in batch.observations} == want
    check_batch(batch, feeder, rows=range(min(300, len(batch.indices))))
    # with priorities: new data gets the max, evicted data is never drawn again
    replay.update_priorities(batch.indices, feeder.rng.random(len(batch.indices)) * 5)
    feeder.run(7)
    batch = setup.batch(200)
    assert {(int(u), int(t)) for u, t in batch.observations} <= feeder.stored()
    check_batch(batch, feeder, rows=range(50))


def test_legal_masks_of_unwritten_rows_take_no_memory_until_written():
    """Masks are stored inverted in zeros (pages the system commits only when written): a buffer
    for shogi's 13,689 actions costs nothing up front, and unwritten rows read as all legal."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    replay = TrajectoryReplay(100_000, 1, (2,), np.float32, 13_689, unroll_steps=1, td_steps=1)
    masks = np.zeros((1, 13_689), dtype=bool)
    masks[0, 5] = True
    replay.add(np.zeros((1, 2), np.float32), np.array([5]), np.zeros(1), np.zeros(1),
               np.full((1, 13_689), 1 / 13_689), np.array([False]), np.array([False]), legal_masks=masks)  # fmt: skip
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # 1.4 GB if the masks' array were touched whole
    window = replay.sample(4)
    assert window.legal_masks[:, 0].sum(axis=1).tolist() == [1, 1, 1, 1]  # the stored step
    assert window.legal_masks[:, 1].all()  # past the end: all legal


def test_a_large_alpha_leaves_every_stored_position_sampleable():
    replay = TrajectoryReplay(16, 1, (2,), np.float32, 2, 1, 1, priority_alpha=50.0, seed=0)
    for t in range(6):
        replay.add(np.array([[0, t]]), [0], [0.0], [0.0], np.full((1, 2), 0.5), [False], [False])
    window = replay.sample(4)
    replay.update_priorities(window.indices, np.zeros(4))  # the floor 1e-8 ** 50 underflows to 0
    masses = replay._tree.get(np.arange(replay.capacity))
    assert (masses > 0).sum() == 6
