"""Targets: value targets (n-step, TD(lambda)) against a brute-force loop and hand examples, and
whole batches built from sampled replay windows against a brute-force recomputation from the raw
episodes (masks, board-game outcomes, random-opening cuts, priority mask)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muzero_agents.replay import TrajectoryReplay
from muzero_agents.targets import lambda_weights, make_batch, value_targets
from tests.replay_feeder import ACTIONS, Feeder, Setup, brute_n_step, brute_target, check_batch


@settings(max_examples=300, deadline=None)
@given(
    horizon=st.integers(0, 20),
    terminated=st.booleans(),
    two_player=st.booleans(),
    gamma=st.sampled_from([1.0, 0.997, 0.9, 0.5, 0.0]),
    n=st.integers(1, 12),
    lam=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_brute_force(horizon, terminated, two_player, gamma, n, lam, seed):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=horizon)
    values = rng.normal(size=horizon + 1)
    discount = -gamma if two_player else gamma
    last = horizon + 4 if terminated else horizon
    positions = np.arange(last + 1)
    got = value_targets(rewards, values, terminated, discount, n, lam, positions)
    want = [brute_target(rewards, values, terminated, discount, n, lam, u) for u in positions]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_lambda_one_is_exactly_n_step_and_zero_is_one_step():
    rng = np.random.default_rng(1)
    rewards, values = rng.normal(size=30), rng.normal(size=31)
    for terminated in (False, True):
        n_step = [brute_n_step(rewards, values, terminated, 0.95, 7, u) for u in range(31)]
        one_step = [brute_n_step(rewards, values, terminated, 0.95, 1, u) for u in range(31)]
        got_one = value_targets(rewards, values, terminated, 0.95, 7, 1.0)
        got_zero = value_targets(rewards, values, terminated, 0.95, 7, 0.0)
        np.testing.assert_allclose(got_one, n_step, rtol=1e-12)
        np.testing.assert_allclose(got_zero, one_step, rtol=1e-12)


def test_hand_example_single_player():
    rewards = np.array([1.0, 2.0, 3.0])
    values = np.array([10.0, 20.0, 30.0, 40.0])
    # truncated, n=2, d=0.5: z_0 = 1 + 0.5*2 + 0.25*30, z_2 = 3 + 0.5*40 (ends early), z_3 = 40
    got = value_targets(rewards, values, False, 0.5, 2)
    np.testing.assert_allclose(got, [9.5, 2 + 1.5 + 10.0, 23.0, 40.0])
    # terminated: no bootstrap at the end, absorbing 0 after
    got = value_targets(rewards, values, True, 0.5, 2, positions=np.array([0, 1, 2, 3, 7]))
    np.testing.assert_allclose(got, [9.5, 3.5, 3.0, 0.0, 0.0])


def test_hand_example_two_player_outcome():
    # a 5-ply game won by the player who made the last move (reward +1 to the mover)
    rewards = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    values = np.zeros(6)
    got = value_targets(rewards, values, True, -1.0, 10)
    # positions 4, 2, 0 are the winner's turns, 3 and 1 the loser's, 5 is after the end
    np.testing.assert_allclose(got, [1, -1, 1, -1, 1, 0])


def test_lambda_weights_sum_to_one():
    for n in (1, 2, 5, 12):
        for lam in (0.0, 0.3, 0.95, 1.0):
            weights = lambda_weights(n, lam)
            assert weights.shape == (n,)
            assert weights.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(lambda_weights(4, 1.0), [0, 0, 0, 1])
    np.testing.assert_array_equal(lambda_weights(4, 0.0), [1, 0, 0, 0])


def test_positions_shape_kept():
    rewards, values = np.ones(4), np.ones(5)
    got = value_targets(rewards, values, True, 1.0, 3, positions=np.array([[0, 1], [2, 3]]))
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got, [[4, 3], [2, 1]])  # z_0 bootstraps v_3 = 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"td_steps": 0}, "td_steps"),
        ({"td_steps": 2.5}, "td_steps"),
        ({"td_lambda": 1.5}, "td_lambda"),
        ({"td_lambda": -0.1}, "td_lambda"),
        ({"discount": 1.5}, "discount"),
        ({"values": np.zeros(3)}, "values"),
        ({"positions": np.array([-1])}, "positions"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {
        "rewards": np.zeros(3),
        "values": np.zeros(4),
        "terminated": False,
        "discount": 0.9,
        "td_steps": 2,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        value_targets(**args)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # n-step
        {"td_steps": 5, "td_lambda": 0.7},
        {"td_steps": 4, "td_lambda": 0.0},
        {"discount": 1.0, "two_player": True, "td_steps": 6},
        {"discount": 0.95, "two_player": True, "td_steps": 2, "td_lambda": 0.5, "unroll_steps": 0},
    ],
)
def test_batches_match_brute_force(kwargs):
    feeder = Feeder(Setup(**kwargs), seed=1).run(80)  # episodes of all kinds, some still running
    kinds = {ep.kind for ep in feeder.episodes.values()}
    assert kinds == {"running", "terminated", "truncated"}
    batch = feeder.setup.batch(600)
    check_batch(batch, feeder)
    k = feeder.replay.unroll_steps
    assert batch.target_values.shape == (600, k + 1) and batch.actions.shape == (600, k)
    assert batch.target_policies.shape == (600, k + 1, ACTIONS)
    assert batch.actions.dtype == np.int64 and batch.indices.dtype == np.int64
    assert batch.target_values.dtype == np.float32 and batch.weights.dtype == np.float32
    assert (batch.reward_mask[:, 0] == 0).all() and (batch.target_rewards[:, 0] == 0).all()
    assert batch.legal_masks is None and batch.next_observations is None
    if k > 0:  # positions past the end of truncated / running episodes show up masked
        assert (batch.value_mask == 0).any() and (batch.policy_mask == 0).any()


def test_the_target_settings_are_applied_when_the_batch_is_built():
    """One window, two settings: the same stored data, the targets of each setting."""
    setup = Setup(td_steps=5)
    feeder = Feeder(setup, seed=2).run(60)
    window = setup.replay.sample(300)
    for chosen in ({"discount": 0.9, "td_lambda": 1.0}, {"discount": 0.5, "td_lambda": 0.3}):
        setup.settings.update(chosen)
        check_batch(make_batch(window, two_player=False, **chosen), feeder)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"td_steps": 6},
        {"td_steps": 30, "discount": 1.0, "two_player": True, "td_lambda": 0.8},
        {"capacity": 60, "td_steps": 6},  # the ring wraps: rows written without flags are cleared
    ],
)
def test_random_moves_cut_returns_match_brute_force(kwargs):
    feeder = Feeder(Setup(**kwargs), seed=4, random_moves=True).run(120)
    assert any(any(ep.random) for ep in feeder.episodes.values())
    check_batch(feeder.setup.batch(600), feeder)


def test_random_moves_change_the_targets_and_survive_pickling():
    """A random move the search would not have played stops the returns at and before it (and a
    copy pickled with its flags samples the same targets); marking none leaves every target alone."""
    targets = {}
    for marked in (False, True):
        setup = Setup(n_envs=1, unroll_steps=0, td_steps=10, discount=1.0, priority_alpha=0.0)
        policy = np.array([0.7, 0.1, 0.1, 0.1], dtype=np.float32)
        for t in range(4):  # step 2 plays action 1, which its policy ranks below action 0
            setup.replay.add(
                np.array([[0.0, t]]),
                [1 if t == 2 else 0],
                [1.0 if t == 3 else 0.0],
                [10.0 * (t + 1)],
                policy[None],
                [t == 3],
                [t == 3],
                random_moves=np.array([marked and t == 2]),
            )
        clone = pickle.loads(pickle.dumps(setup.replay))
        for buffer in (setup.replay, clone):
            buffer.rng = np.random.default_rng(0)
        batch = setup.batch(64)
        cloned = make_batch(clone.sample(64), **setup.settings)
        np.testing.assert_array_equal(batch.target_values, cloned.target_values)
        targets[marked] = dict(zip(batch.observations[:, 1].astype(int), batch.target_values[:, 0]))
    assert targets[False] == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}  # the outcome everywhere
    # positions 0 and 1 bootstrap from the value at the random move (30), which keeps its own
    assert targets[True] == {0: 30.0, 1: 30.0, 2: 30.0, 3: 1.0}


def test_in_progress_episode_is_sampled_and_bootstraps_from_last_root_value():
    setup = Setup(n_envs=1, td_steps=10, unroll_steps=2, discount=1.0, priority_alpha=0.0)
    rewards, values = [1.0, 2.0, 3.0], [10.0, 20.0, 30.0]
    for t in range(3):
        setup.replay.add(
            np.array([[0, t]]),
            [0],
            [rewards[t]],
            [values[t]],
            np.full((1, ACTIONS), 0.25),
            [False],
            [False],
        )
    batch = setup.batch(200)
    first = np.flatnonzero(batch.observations[:, 1] == 0)[0]
    # z_0 = 1 + 2 + v_2, z_1 = 2 + v_2, z_2 = v_2; r_2 is a valid reward target but v_3 unknown
    np.testing.assert_allclose(batch.target_values[first], [33, 32, 30])
    np.testing.assert_array_equal(batch.value_mask[first], [1, 1, 1])
    last = np.flatnonzero(batch.observations[:, 1] == 2)[0]
    np.testing.assert_array_equal(batch.value_mask[last], [1, 0, 0])
    np.testing.assert_array_equal(batch.reward_mask[last], [0, 1, 0])
    np.testing.assert_array_equal(batch.policy_mask[last], [1, 0, 0])
    assert batch.target_rewards[last, 1] == 3.0


def test_terminated_is_absorbing_and_truncated_masks_past_end():
    for terminal in (True, False):
        setup = Setup(n_envs=1, td_steps=2, unroll_steps=3, discount=1.0)
        for t in range(2):
            setup.replay.add(
                np.array([[0, t]]),
                [1],
                [1.0],
                [5.0],
                np.full((1, ACTIONS), 0.25),
                [t == 1],
                [terminal],
                final_values=None if terminal or t == 0 else {0: 7.0},
            )
        batch = setup.batch(50)
        row = np.flatnonzero(batch.observations[:, 1] == 1)[0]
        np.testing.assert_array_equal(batch.policy_mask[row], [1, 0, 0, 0])
        if terminal:
            np.testing.assert_allclose(batch.target_values[row], [1, 0, 0, 0])
            np.testing.assert_array_equal(batch.value_mask[row], [1, 1, 1, 1])
            np.testing.assert_array_equal(batch.reward_mask[row], [0, 1, 1, 1])
        else:
            np.testing.assert_allclose(batch.target_values[row], [8, 7, 0, 0])
            np.testing.assert_array_equal(batch.value_mask[row], [1, 1, 0, 0])
            np.testing.assert_array_equal(batch.reward_mask[row], [0, 1, 0, 0])
        np.testing.assert_allclose(batch.target_policies[row, 1:], 0.25)


def test_legal_masks_are_true_past_the_episode_end():
    setup = Setup(unroll_steps=3)
    feeder = Feeder(setup, seed=6, masks=True).run(40)
    batch = setup.batch(200)
    assert batch.legal_masks.shape == (200, 4, ACTIONS) and batch.legal_masks.dtype == bool
    for b in range(200):
        uid, t = (int(x) for x in batch.observations[b])
        ep = feeder.episodes[uid]
        for k in range(4):
            want = ep.legal[t + k] if t + k < len(ep.rewards) else np.ones(ACTIONS, bool)
            np.testing.assert_array_equal(batch.legal_masks[b, k], want)


def test_next_observations_are_masked_past_the_end():
    setup = Setup(unroll_steps=3)
    feeder = Feeder(setup, seed=9).run(40)
    batch = setup.batch(200, next_observations=True)
    assert batch.next_observations.shape == (200, 3, 2)
    for b in range(200):
        uid, t = (int(x) for x in batch.observations[b])
        horizon = len(feeder.episodes[uid].rewards)
        inside = [t + k < horizon for k in range(1, 4)]
        np.testing.assert_array_equal(batch.next_observation_mask[b], inside)
        for k in np.flatnonzero(inside):
            np.testing.assert_array_equal(batch.next_observations[b, k], [uid, t + k + 1])


@pytest.mark.parametrize("ending", ["running", "truncated without a final value", "random move"])
def test_positions_whose_value_target_is_their_own_value_keep_their_priority(ending):
    """Their k=0 target is their own stored value, so |v - z| carries no information (and is 0
    after a value-only Reanalyze): the newest step of a running episode, the last step of a
    truncation without a final value, a position whose own move was random."""
    rb = TrajectoryReplay(100, 1, (1,), np.float32, 2, unroll_steps=1, td_steps=5, seed=0)
    for t in range(3):
        random = ending == "random move" and t == 1
        rb.add(
            np.array([[t]], np.float32), [1 if random else 0], [1.0], [0.0], [[0.9, 0.1]],
            [t == 2 and ending != "running"], [ending == "random move" and t == 2],
            random_moves=np.array([random]),
        )  # fmt: skip
    batch = make_batch(rb.sample(64), discount=1.0, td_lambda=1.0, two_player=False)
    own_value = batch.observations[:, 0] == (1 if ending == "random move" else 2)
    assert own_value.any() and (~own_value).any()
    np.testing.assert_array_equal(batch.priority_mask, ~own_value)


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"td_lambda": 1.2}, "td_lambda"),
        ({"td_lambda": -0.5}, "td_lambda"),
        ({"discount": -0.9}, "two_player"),
        ({"discount": 1.5}, "discount"),
    ],
)
def test_bad_make_batch_arguments(settings, match):
    setup = Setup()
    Feeder(setup, seed=0).run(5)
    window = setup.replay.sample(4)
    with pytest.raises(ValueError, match=match):
        make_batch(window, **{"discount": 0.9, "td_lambda": 1.0, "two_player": False, **settings})
