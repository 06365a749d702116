"""Gumbel MuZero search: agreement with the plain reference, halving, masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muzero_agents.search import gumbel_muzero_search
from muzero_agents.search.gumbel import gumbel_schedule, halving_targets
from tests.reference_search import FakeNet, reference_gumbel_search
from tests.reference_search import halving_targets as reference_targets

torch.set_num_threads(1)


# ------------------------------------------------------------------ a fixed case


@pytest.mark.parametrize("two_player", [False, True])
def test_fixed_network_matches_the_reference(two_player):
    """FakeNet(5 actions, seed 7), 2 roots, 12 simulations, m = 4, Gumbel from seed 0: the
    search agrees with ``reference_gumbel_search``, computed here root by root.

    The visit pattern is sequential halving's: 4 considered actions get one visit each, then the
    better 2 share the remaining 8 (1 + 4).
    """
    net = FakeNet(5, seed=7)
    logits, value, emb = net.root(2)
    result = gumbel_muzero_search(
        logits,
        value,
        emb,
        net.recurrent,
        12,
        discount=0.9,
        two_player=two_player,
        max_num_considered_actions=4,
        rng=np.random.default_rng(0),
    )
    gumbel = np.random.default_rng(0).gumbel(size=(2, 5))  # the noise the search draws from seed 0
    for b in range(2):
        visits, root_value, policy, action = reference_gumbel_search(
            logits[b], float(value[b]), emb[b], net.single, 12, gumbel[b],
            discount=0.9, two_player=two_player, max_considered=4,
        )  # fmt: skip
        assert sorted(visits) == [0, 1, 1, 5, 5]  # the case is the one described above
        assert result.visit_counts[b].tolist() == visits
        np.testing.assert_allclose(result.root_value[b], root_value, atol=1e-6)
        np.testing.assert_allclose(result.policy[b], policy, atol=2e-6)
        assert result.action[b] == action


def test_root_selection_rescales_q_over_every_legal_action_not_only_the_considered_ones():
    """4 legal actions, 2 considered, 3 simulations, no Gumbel noise: after the first phase both
    considered actions are visited, but the 2 others are not, so v_mix (root value 1, far above
    the visited Q of 0 and 0.1) belongs in the range that scales sigma(q). Over the considered
    actions alone the range is [0, 0.1] and the last visit goes to action 1; over all legal
    actions action 0 keeps its lead, as in the reference search and the improved policy."""
    next_state = np.array([[1, 2, 3, 3]] + [[3, 3, 3, 3]] * 3)
    rewards = np.array([[0.0, 0.1, 0.0, 0.0]] + [[0.0] * 4] * 3)
    values = np.array([1.0, 0.0, 0.0, 0.0])
    logits = np.zeros((4, 4), dtype=np.float32)
    logits[0] = [3.0, 0.5, -5.0, -5.0]

    def recurrent(embedding, action):
        state = np.asarray(embedding)[:, 0].astype(int)
        after = next_state[state, action]
        return (
            rewards[state, action].astype(np.float32),
            values[after].astype(np.float32),
            logits[after],
            after[:, None].astype(np.float32),
        )

    def single(embedding, action):
        reward, value, step_logits, after = recurrent(np.array([[embedding]]), np.array([action]))
        return reward[0], value[0], step_logits[0], after[0, 0]

    expected = reference_gumbel_search(
        logits[0], 1.0, 0.0, single, 3, [0.0] * 4, discount=1.0, max_considered=2
    )
    result = gumbel_muzero_search(
        logits[:1], np.array([1.0], dtype=np.float32), np.zeros((1, 1), dtype=np.float32), recurrent, 3,
        discount=1.0, max_num_considered_actions=2, gumbel_scale=0.0,
    )  # fmt: skip
    assert result.visit_counts[0].tolist() == [2, 1, 0, 0] == list(expected[0])
    assert result.action[0] == 0


# ------------------------------------------------------------------ engine == reference


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.integers(1, 5),
    num_actions=st.integers(1, 8),
    sims=st.integers(1, 50),
    considered=st.integers(1, 10),
    seed=st.integers(0, 2**16),
    levels=st.sampled_from([0, 0, 2, 4]),
    two_player=st.booleans(),
    masked=st.booleans(),
)
def test_engine_matches_reference(batch, num_actions, sims, considered, seed, levels, two_player, masked):
    net = FakeNet(num_actions, seed=seed, levels=levels)
    logits, value, emb = net.root(batch)
    rng = np.random.default_rng(seed)
    legal = None
    if masked:
        legal = rng.random((batch, num_actions)) < 0.6
        legal[np.arange(batch), rng.integers(0, num_actions, batch)] = True
    result = gumbel_muzero_search(
        logits,
        value,
        emb,
        net.recurrent,
        sims,
        legal_mask=legal,
        discount=0.9,
        two_player=two_player,
        max_num_considered_actions=considered,
        rng=np.random.default_rng(seed),
    )
    gumbel = np.random.default_rng(seed).gumbel(size=(batch, num_actions))
    for b in range(batch):
        visits, root_value, policy, action = reference_gumbel_search(
            logits[b],
            float(value[b]),
            emb[b],
            net.single,
            sims,
            gumbel[b],
            legal=None if legal is None else legal[b],
            discount=0.9,
            two_player=two_player,
            max_considered=considered,
        )
        assert result.visit_counts[b].tolist() == visits
        assert result.root_value[b] == pytest.approx(root_value, abs=1e-5)
        np.testing.assert_allclose(result.policy[b], policy, atol=1e-5)
        assert result.action[b] == action


# ------------------------------------------------------------------ sequential halving


def test_halving_targets_by_hand():
    """k = 4, n = 16: 2 phases; 4 actions x 2 rounds (16 // 8), then 2 actions x 4 rounds."""
    assert halving_targets(4, 16) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert halving_targets(1, 4) == [0, 1, 2, 3]
    assert halving_targets(3, 2) == [0, 0]


@given(k=st.integers(1, 40), n=st.integers(1, 300))
@settings(max_examples=60, deadline=None)
def test_halving_targets_agree_and_are_feasible(k, n):
    """Library and reference agree, and each target is a count some action has by then."""
    targets = halving_targets(k, n)
    assert targets == reference_targets(k, n)
    assert len(targets) == n
    counts = [0] * k  # simulate: each simulation visits an action with the target count
    for t in targets:
        assert t in counts
        counts[counts.index(t)] += 1
    table = gumbel_schedule(max(k, 1), n)
    assert table[k].tolist() == targets


def test_deterministic_halving_visit_pattern():
    """gumbel_scale 0, 6 actions, m = 4, 16 simulations: the top 4 logits get 2 visits each,
    then the best 2 of them 4 more each: visits {6, 6, 2, 2} on the top-4 logits, 0 elsewhere."""
    net = FakeNet(6, seed=4)
    logits, value, emb = net.root(3)
    result = gumbel_muzero_search(
        logits, value, emb, net.recurrent, 16, gumbel_scale=0.0, max_num_considered_actions=4
    )
    for b in range(3):
        top4 = set(np.argsort(-logits[b], kind="stable")[:4].tolist())
        assert set(np.flatnonzero(result.visit_counts[b]).tolist()) == top4
        assert sorted(result.visit_counts[b].tolist()) == [0, 0, 2, 2, 6, 6]
        assert result.visit_counts[b, result.action[b]] == 6


# -------------------------------------------------------------------- properties, errors


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), sims=st.integers(1, 40))
def test_masked_actions_and_policy(seed, sims):
    batch, num_actions = 4, 7
    rng = np.random.default_rng(seed)
    legal = rng.random((batch, num_actions)) < 0.5
    legal[:, rng.integers(0, num_actions)] = True
    net = FakeNet(num_actions, seed=seed)
    logits, value, emb = net.root(batch)
    logits[~legal] = 30.0
    result = gumbel_muzero_search(logits, value, emb, net.recurrent, sims, legal_mask=legal, rng=rng)
    assert (result.visit_counts[~legal] == 0).all()
    assert (result.policy[~legal] == 0).all()
    np.testing.assert_allclose(result.policy.sum(axis=1), 1.0, rtol=1e-5)
    assert legal[np.arange(batch), result.action].all()
    assert (result.visit_counts.sum(axis=1) == sims).all()
    assert result.action.dtype == np.int64 and result.policy.dtype == np.float32


def test_no_noise_is_deterministic_and_improves_on_the_prior():
    """gumbel_scale 0 ignores the rng; with a visited clearly better action the completed-Q
    policy moves mass towards it compared with the prior."""

    def one_good_action(embedding, action):
        n = len(action)
        return (
            np.where(action == 2, 1.0, 0.0).astype(np.float32),
            np.zeros(n, np.float32),
            np.zeros((n, 4), np.float32),
            embedding,
        )

    args = (np.zeros((1, 4), np.float32), np.zeros(1, np.float32), np.zeros((1, 2)), one_good_action, 8)
    a = gumbel_muzero_search(*args, gumbel_scale=0.0, rng=np.random.default_rng(1))
    b = gumbel_muzero_search(*args, gumbel_scale=0.0, rng=np.random.default_rng(2))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a.policy[0, 2] > 0.5  # the prior gives it 0.25
    assert a.action[0] == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_simulations": 0}, "num_simulations must be >= 1"),
        ({"max_num_considered_actions": 0}, "max_num_considered_actions"),
        ({"gumbel_scale": -1.0}, "gumbel_scale"),
        ({"legal_mask": np.zeros((2, 3), bool)}, "no legal action"),
    ],
)
def test_bad_inputs(kwargs, message):
    net = FakeNet(3)
    logits, value, emb = net.root(2)
    call = {
        "prior_logits": logits,
        "root_value": value,
        "root_embedding": emb,
        "recurrent_fn": net.recurrent,
        "num_simulations": 5,
    }
    call.update(kwargs)
    with pytest.raises(ValueError, match=message):
        gumbel_muzero_search(**call)
