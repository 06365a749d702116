"""The batched MuZero search: hand-checked tree, agreement with the reference, masks, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muzero_agents.search import SearchResult, gumbel_muzero_search, muzero_search
from tests.reference_search import FakeNet, reference_search

torch.set_num_threads(1)


def _batched_reference(net: FakeNet, batch: int, sims: int, legal, **kw):
    logits, value, emb = net.root(batch)
    visits, values, qs = [], [], []
    for b in range(batch):
        v, rv, q = reference_search(
            logits[b],
            float(value[b]),
            emb[b],
            net.single,
            sims,
            legal=None if legal is None else legal[b],
            **kw,
        )
        visits.append(v)
        values.append(rv)
        qs.append(q)
    return np.array(visits), np.array(values), np.array(qs)


def _engine(net: FakeNet, batch: int, sims: int, legal, **kw) -> SearchResult:
    logits, value, emb = net.root(batch)
    return muzero_search(
        logits,
        value,
        emb,
        net.recurrent,
        sims,
        legal_mask=legal,
        dirichlet_fraction=0.0,
        temperature=0.0,
        **kw,
    )


# ------------------------------------------------------------------------ hand-checked tree


def _reward_one_for_action_zero(embedding, action):
    """One player, A = 2: action 0 pays reward 1, action 1 pays 0; all values and logits 0."""
    n = len(action)
    return (
        np.where(action == 0, 1.0, 0.0).astype(np.float32),
        np.zeros(n, np.float32),
        np.zeros((n, 2), np.float32),
        embedding,
    )


@pytest.mark.parametrize("sims, visits, value, q0", [(4, [4, 0], 1.4, 1.75), (5, [4, 1], 7 / 6, 1.75)])
def test_hand_checked_tree(sims, visits, value, q0):
    """Worked out by hand, discount 1, priors 0.5/0.5, c(N) = 1.25 + log((N + 19653) / 19652).

    Score = normalized Q (0 if unvisited) + c(N) * sqrt(N) / (1 + n) * 0.5. Min-max [lo, hi].
    sim 1: root N=1, both children unvisited, equal scores -> action 0 (lowest). Leaf n1
           (r=1, v=0): min-max sees 1; g = 1, root vs 1, N 2, min-max sees 0.5 -> [0.5, 1].
    sim 2: root: a0 Q 1 -> 1 + .442 = 1.442 > a1 .884; n1 has two fresh children -> a0,
           leaf n2 (r=1). Backup g 0 -> 1 -> 2: n1 vs 1 n 2 (Q 1.5), root vs 3 N 3. [0.5, 1.5].
    sim 3: root a0 Q 1.5 -> 1 + .361 > a1 1.083; n1: a0 (n2) Q 1 -> .5 + .442 = .942 > .884;
           n2 fresh -> a0, leaf n3 (r=1). g 0 -> 1 -> 2 -> 3: n2 vs 1 n 2, n1 vs 3 n 3
           (Q 2), root vs 6 N 4. [0.5, 2].
    sim 4: root a0 Q 1 + 3/3 = 2 -> 1 + .313 = 1.313 > a1 1.250; n1 (N 3): a0 (n2) Q
           1 + 1/2 = 1.5 -> .667 + .361 = 1.028 < a1 1.083 -> a1, leaf n4 (r=0, v=0).
           g 0 -> 1: n1 vs 3 n 4, root vs 7 N 5. Root: visits [4, 0], value 7/5,
           Q(a0) = 1 + 3/4 = 1.75. Min-max [0, 2].
    sim 5: root a0 Q 1.75 -> .875 + c(5)*sqrt5/5*.5 = 1.155 < a1 c(5)*sqrt5*.5 = 1.398 -> a1,
           leaf (r=0, v=0). Root: visits [4, 1], value 7/6, Q = [1.75, 0].
    """
    result = muzero_search(
        np.zeros((1, 2), np.float32),
        np.zeros(1, np.float32),
        np.zeros((1, 3), np.float32),
        _reward_one_for_action_zero,
        sims,
        discount=1.0,
        dirichlet_fraction=0.0,
        temperature=0.0,
    )
    assert result.visit_counts.tolist() == [visits]
    assert result.root_value[0] == pytest.approx(value, abs=1e-6)
    assert result.q_values[0, 0] == pytest.approx(q0, abs=1e-6)
    assert result.action.tolist() == [0]


def test_reference_agrees_on_hand_checked_tree():
    """The reference reproduces the hand computation too (it is the yardstick below)."""

    def single(embedding, action):
        return (1.0 if action == 0 else 0.0), 0.0, [0.0, 0.0], embedding

    visits, value, q = reference_search([0.0, 0.0], 0.0, None, single, 5, discount=1.0)
    assert visits == [4, 1]
    assert value == pytest.approx(7 / 6)
    assert q == pytest.approx([1.75, 0.0])


# ------------------------------------------------------------------ engine == reference


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.integers(1, 8),
    num_actions=st.integers(1, 6),
    sims=st.integers(1, 60),
    seed=st.integers(0, 2**16),
    levels=st.sampled_from([0, 0, 2, 4]),
    two_player=st.booleans(),
    discount=st.sampled_from([1.0, 0.997, 0.8]),
    masked=st.booleans(),
)
def test_engine_matches_reference(batch, num_actions, sims, seed, levels, two_player, discount, masked):
    net = FakeNet(num_actions, seed=seed, levels=levels)
    legal = None
    if masked:
        legal = np.random.default_rng(seed).random((batch, num_actions)) < 0.6
        legal[np.arange(batch), np.random.default_rng(seed + 1).integers(0, num_actions, batch)] = True
    kw = {"discount": discount, "two_player": two_player}
    ref_visits, ref_values, ref_q = _batched_reference(net, batch, sims, legal, **kw)
    result = _engine(net, batch, sims, legal, **kw)
    np.testing.assert_array_equal(result.visit_counts, ref_visits)
    np.testing.assert_allclose(result.root_value, ref_values, atol=1e-5)
    np.testing.assert_allclose(result.q_values, ref_q, atol=1e-5)


@pytest.mark.parametrize("batch, sims, num_actions", [(64, 200, 4), (3, 120, 9), (1, 200, 2)])
def test_engine_matches_reference_large(batch, sims, num_actions):
    """The corners of the issue's range: B up to 64 and 200 simulations."""
    net = FakeNet(num_actions, seed=batch * 7 + sims, levels=0)
    for two_player in (False, True):
        kw = {"discount": 0.95, "two_player": two_player}
        ref_visits, ref_values, _ = _batched_reference(net, batch, sims, None, **kw)
        result = _engine(net, batch, sims, None, **kw)
        np.testing.assert_array_equal(result.visit_counts, ref_visits)
        np.testing.assert_allclose(result.root_value, ref_values, atol=1e-5)


def test_torch_embeddings_match_numpy():
    """Torch hidden states go through the same tree: same statistics as numpy ones."""
    net = FakeNet(5, seed=3)
    logits, value, emb = net.root(6)

    def torch_recurrent(embedding, action):
        reward, val, lg, nxt = net.recurrent(embedding.numpy().view(np.uint64), action)
        return reward, val, lg, torch.from_numpy(nxt.view(np.int64))

    with_np = muzero_search(logits, value, emb, net.recurrent, 30, dirichlet_fraction=0.0)
    with_torch = muzero_search(
        logits, value, torch.from_numpy(emb.view(np.int64)), torch_recurrent, 30, dirichlet_fraction=0.0
    )
    np.testing.assert_array_equal(with_np.visit_counts, with_torch.visit_counts)
    np.testing.assert_array_equal(with_np.root_value, with_torch.root_value)


def test_reused_buffers_give_identical_results():
    """A second search of the same shape (cached tree) gives the same answer as the first."""
    net = FakeNet(4, seed=11, levels=3)
    first = _engine(net, 5, 25, None, two_player=True)
    _engine(FakeNet(4, seed=12), 5, 25, None)  # dirty the cached arrays
    again = _engine(net, 5, 25, None, two_player=True)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------- masks, choice, shapes


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    temperature=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    fraction=st.sampled_from([0.0, 0.25, 1.0]),
)
def test_masked_actions_never_visited_or_chosen(seed, temperature, fraction):
    batch, num_actions = 6, 7
    rng = np.random.default_rng(seed)
    legal = rng.random((batch, num_actions)) < 0.4
    legal[:, rng.integers(0, num_actions)] = True
    net = FakeNet(num_actions, seed=seed)
    logits, value, emb = net.root(batch)
    logits[~legal] = 50.0  # tempting illegal actions
    result = muzero_search(
        logits,
        value,
        emb,
        net.recurrent,
        40,
        legal_mask=legal,
        dirichlet_fraction=fraction,
        temperature=temperature,
        rng=rng,
    )
    assert (result.visit_counts[~legal] == 0).all()
    assert (result.policy[~legal] == 0).all()
    assert legal[np.arange(batch), result.action].all()
    assert (result.visit_counts.sum(axis=1) == 40).all()


def test_temperature_zero_picks_most_visited_and_shapes():
    batch, num_actions, sims = 4, 6, 50
    net = FakeNet(num_actions, seed=5)
    logits, value, emb = net.root(batch)
    result = muzero_search(
        logits, value, emb, net.recurrent, sims, temperature=0.0, rng=np.random.default_rng(0)
    )
    assert result.action.tolist() == result.visit_counts.argmax(axis=1).tolist()
    assert result.action.dtype == np.int64 and result.action.shape == (batch,)
    assert result.visit_counts.dtype == np.int32 and result.visit_counts.shape == (batch, num_actions)
    assert result.policy.dtype == np.float32 and result.policy.shape == (batch, num_actions)
    assert result.root_value.dtype == np.float32 and result.root_value.shape == (batch,)
    assert result.q_values.dtype == np.float32 and result.q_values.shape == (batch, num_actions)
    np.testing.assert_allclose(result.policy.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(result.policy, result.visit_counts / sims, rtol=1e-6)
    assert (result.q_values[result.visit_counts == 0] == 0).all()


def test_temperature_samples_follow_visits():
    """With temperature 1 each action is drawn about as often as its visit share."""
    counts = np.array([[1, 0, 3, 6]], dtype=np.int32)
    from muzero_agents.search._result import choose_by_visits

    rng = np.random.default_rng(0)
    draws = np.concatenate([choose_by_visits(counts, 1.0, rng) for _ in range(4000)])
    freq = np.bincount(draws, minlength=4) / draws.size
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.3, 0.6], atol=0.03)
    assert freq[1] == 0.0
    assert (choose_by_visits(np.array([[2, 5, 5]]), 0.0, rng) == 1).all()  # ties -> lowest


def test_noise_is_seeded_and_changes_the_search():
    net = FakeNet(8, seed=2)
    logits, value, emb = net.root(3)
    runs = [
        muzero_search(
            logits,
            value,
            emb,
            net.recurrent,
            30,
            temperature=0.0,
            dirichlet_fraction=1.0,
            rng=np.random.default_rng(s),
        )
        for s in (1, 1, 2)
    ]
    np.testing.assert_array_equal(runs[0].visit_counts, runs[1].visit_counts)
    assert not np.array_equal(runs[0].visit_counts, runs[2].visit_counts)


# ----------------------------------------------------------------------------- errors


def _inputs(batch=2, num_actions=3):
    net = FakeNet(num_actions)
    logits, value, emb = net.root(batch)
    return logits, value, emb, net.recurrent


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_simulations": 0}, "num_simulations must be >= 1"),
        ({"prior_logits": np.zeros(3, np.float32)}, "prior_logits must have shape"),
        ({"root_value": np.zeros(3, np.float32)}, "root_value must have shape"),
        ({"root_embedding": np.zeros((3, 1))}, "root_embedding must be"),
        ({"legal_mask": np.ones((2, 4), bool)}, "legal_mask must have the shape"),
        ({"legal_mask": np.array([[1, 1, 0], [0, 0, 0]], bool)}, r"rows \[1\] have no legal"),
        ({"discount": 1.5}, "discount must be in"),
        ({"temperature": -1.0}, "temperature must be"),
        ({"dirichlet_fraction": 2.0}, "dirichlet_fraction"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, message):
    logits, value, emb, rec = _inputs()
    kw = {
        "prior_logits": logits,
        "root_value": value,
        "root_embedding": emb,
        "recurrent_fn": rec,
        "num_simulations": 4,
    }
    kw.update(change)
    with pytest.raises((ValueError, TypeError), match=message):
        muzero_search(**kw)


def test_bad_recurrent_output_raises():
    logits, value, emb, rec = _inputs()

    def wrong_logits(e, a):
        r, v, lg, n = rec(e, a)
        return r, v, lg[:, :2], n

    with pytest.raises(ValueError, match="prior_logits of shape"):
        muzero_search(logits, value, emb, wrong_logits, 3)
    with pytest.raises(TypeError, match="4-tuple"):
        muzero_search(logits, value, emb, lambda e, a: (1, 2), 3)


class _StoredAs:
    """FakeNet's recurrent function with its hidden states as numpy, CPU torch, or 24-bit
    hashes as float64 (``float64``), also returned as float32 (the store's Python-side cast),
    optionally returning the same output buffers every call."""

    def __init__(self, net: FakeNet, embedding: str, reuse_buffers: bool = False) -> None:
        self.net, self.embedding, self.reuse = net, embedding, reuse_buffers
        self.buffers: tuple | None = None  # the reused output buffers

    def root(self, batch: int) -> tuple:
        logits, value, emb = self.net.root(batch)
        if self.embedding == "torch":
            emb = torch.from_numpy(emb.astype(np.int64))
        elif self.embedding == "torch-float64":  # float32 states come back into a float64 store
            emb = torch.from_numpy((emb >> np.uint64(40)).astype(np.float64))
        elif self.embedding.startswith("float64"):
            emb = (emb >> np.uint64(40)).astype(np.float64)  # 24-bit hashes: exact in both dtypes
        return logits, value, emb

    def __call__(self, embedding, action):
        if self.embedding.startswith("torch"):
            embedding = embedding.numpy()
        hashes = np.asarray(embedding).astype(np.uint64)
        if "float64" in self.embedding:
            hashes = hashes << np.uint64(40)
        reward, value, logits, nxt = self.net.recurrent(hashes, action)
        if self.embedding == "torch":
            nxt = torch.from_numpy(nxt.astype(np.int64))
        elif self.embedding == "torch-float64":
            nxt = torch.from_numpy((nxt >> np.uint64(40)).astype(np.float32))
        elif self.embedding == "float64-copy":
            nxt = (nxt >> np.uint64(40)).astype(np.float32)
        elif self.embedding == "float64":
            nxt = (nxt >> np.uint64(40)).astype(np.float64)
        outputs = (reward, value, logits)
        if self.reuse:  # one set of output buffers, overwritten by every call
            if self.buffers is None:
                self.buffers = tuple(np.empty_like(x) for x in outputs)
            for buffer, x in zip(self.buffers, outputs):
                buffer[:] = x
            outputs = self.buffers
        return (*outputs, nxt)


@pytest.mark.parametrize(
    "embedding, reuse, like",
    [
        ("numpy", True, "numpy"),
        ("torch", False, "numpy"),
        ("torch-float64", False, "float64"),
        ("float64-copy", False, "float64"),
    ],
)
def test_hidden_state_storage_does_not_change_the_result(embedding, reuse, like):
    """Hidden states as CPU torch, or cast back into the root's dtype by a Python-side copy, and
    a recurrent_fn that reuses its output buffers: the result of the same states as numpy.

    Root masks, one and two players, both searches.
    """
    net = FakeNet(5, seed=4, levels=3)
    legal = np.random.default_rng(0).random((7, 5)) < 0.7
    legal[:, 2] = True

    def run_all(fake: _StoredAs) -> list[SearchResult]:
        logits, value, emb = fake.root(7)
        results = []
        for two_player in (False, True):
            for search in (muzero_search, gumbel_muzero_search):
                rng = np.random.default_rng(3)
                results.append(search(logits, value, emb, fake, 20, legal, two_player=two_player, rng=rng))
        return results

    expected = run_all(_StoredAs(net, like))
    for a, b in zip(expected, run_all(_StoredAs(net, embedding, reuse))):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_searches_on_two_threads_of_one_shape_do_not_share_trees():
    """A background trainer's Reanalyze search runs beside self-play's: each thread gets its own
    cached tree and hidden-state store, so both give their serial results."""
    import sys
    import threading

    nets = [FakeNet(5, seed=21), FakeNet(5, seed=22)]
    serial = [_engine(net, 8, 60, None, two_player=True) for net in nets]
    mismatches: list[int] = []

    def search_repeatedly(index: int) -> None:
        for _ in range(15):
            try:
                result = _engine(nets[index], 8, 60, None, two_player=True)
            except Exception:  # shared arrays can corrupt the tree enough to raise
                mismatches.append(index)
                continue
            if not np.array_equal(result.visit_counts, serial[index].visit_counts):
                mismatches.append(index)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, inside the searches
    try:
        threads = [threading.Thread(target=search_repeatedly, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads) and mismatches == []
