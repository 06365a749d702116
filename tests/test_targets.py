"""Value targets (n-step, TD(lambda)) against a brute-force loop and hand examples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muzero_agents.targets import lambda_weights, value_targets


def brute_n_step(rewards, values, terminated, discount, n, u):
    """The m-step return at position u, written as the definition reads (None if undefined)."""
    horizon = len(rewards)
    if u >= horizon and terminated:
        return 0.0
    if u > horizon:
        return None
    total = 0.0
    for i in range(n):
        if u + i >= horizon:  # the trajectory ends before n steps
            return total + (0.0 if terminated else discount**i * values[horizon])
        total += discount**i * rewards[u + i]
    end = u + n
    return total + (0.0 if terminated and end >= horizon else discount**n * values[end])


def brute_target(rewards, values, terminated, discount, n, lam, u):
    """Truncated TD(lambda): (1-lam) sum_{m<n} lam^(m-1) G(m) + lam^(n-1) G(n)."""
    if brute_n_step(rewards, values, terminated, discount, 1, u) is None:
        return None
    total = 0.0
    for m in range(1, n):
        total += (1 - lam) * lam ** (m - 1) * brute_n_step(rewards, values, terminated, discount, m, u)
    return total + lam ** (n - 1) * brute_n_step(rewards, values, terminated, discount, n, u)


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
