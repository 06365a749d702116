"""TrajectoryReplay: sampled targets against a brute-force recomputation from the raw episodes,
masks, eviction, prioritized sampling, weights, pickling, Reanalyze refresh and bad input."""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muzero_agents.replay import ReplayBatch, TrajectoryReplay
from tests.test_targets import brute_target

ACTIONS = 4


@dataclass
class Episode:
    """The test's own copy of one episode, as it was fed to the replay."""

    uid: int
    env: int
    rewards: list = field(default_factory=list)
    values: list = field(default_factory=list)
    policies: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    legal: list = field(default_factory=list)
    random: list = field(default_factory=list)  # the move was marked random (add's random_moves)
    kind: str = "running"  # running | terminated | truncated
    final_value: float | None = None
    final_obs_kept: bool = False
    times: list = field(default_factory=list)  # the add call (row time) of every step


class Feeder:
    """Feeds random interleaved episodes to a replay; observation = (episode uid, step)."""

    def __init__(
        self,
        replay: TrajectoryReplay,
        seed: int,
        p_done: float = 0.15,
        masks: bool = False,
        random_moves: bool = False,
    ) -> None:
        self.replay, self.rng, self.p_done, self.masks = (
            replay,
            np.random.default_rng(seed),
            p_done,
            masks,
        )
        self.random_moves = random_moves  # mark some moves random (every other add passes None)
        self.episodes: dict[int, Episode] = {}
        self.clock = 0  # add calls so far
        self.current = [self._new(env) for env in range(replay.n_envs)]

    def _new(self, env: int) -> Episode:
        episode = Episode(uid=len(self.episodes), env=env)
        self.episodes[episode.uid] = episode
        return episode

    def step(self) -> None:
        n, rng = self.replay.n_envs, self.rng
        obs = np.array([[ep.uid, len(ep.rewards)] for ep in self.current], dtype=np.float64)
        actions = rng.integers(0, ACTIONS, n)
        rewards = rng.normal(size=n).round(2)
        values = rng.normal(size=n).round(2)
        policies = rng.dirichlet(np.ones(ACTIONS), n).astype(np.float32)
        legal = rng.random((n, ACTIONS)) < 0.7
        dones = rng.random(n) < self.p_done
        terminated = rng.random(n) < 0.4
        randoms = None
        if self.random_moves and rng.random() < 0.5:
            randoms = rng.random(n) < 0.3
        final_obs, final_values = {}, {}
        for env, ep in enumerate(self.current):
            ep.rewards.append(rewards[env])
            ep.values.append(values[env])
            ep.policies.append(policies[env])
            ep.actions.append(actions[env])
            ep.legal.append(legal[env])
            ep.random.append(bool(randoms is not None and randoms[env]))
            ep.times.append(self.clock)
            if not dones[env]:
                continue
            ep.kind = "terminated" if terminated[env] else "truncated"
            if not terminated[env] and rng.random() < 0.7:  # some truncations lack a value
                ep.final_value = round(float(rng.normal()), 2)
                final_values[env] = ep.final_value
            if rng.random() < 0.8:  # SB3 gives the terminal observation always; test both
                final_obs[env] = np.array([ep.uid, len(ep.rewards)], dtype=np.float64)
                ep.final_obs_kept = ep.final_value is not None
        self.replay.add(
            obs,
            actions,
            rewards,
            values,
            policies,
            dones,
            terminated,
            final_observations=final_obs,
            final_values=final_values,
            legal_masks=legal if self.masks else None,
            random_moves=randoms,
        )
        self.clock += 1
        for env in np.flatnonzero(dones):
            self.current[env] = self._new(int(env))

    def stored(self) -> set:
        """(uid, t) the replay should hold, from the spec: a ring of ``rows`` add calls per env;
        a finished episode lives until the first step it had stored when it ended is
        overwritten, a running one keeps every step still in the ring."""
        oldest = self.clock - self.replay.rows  # the oldest add call still in the ring
        out = set()
        for ep in self.episodes.values():
            if not ep.times:
                continue
            if ep.kind == "running":
                out |= {(ep.uid, t) for t, s in enumerate(ep.times) if s >= oldest}
                continue
            first = max(0, len(ep.times) - self.replay.rows)  # head kept when it ended
            if ep.times[first] >= oldest:
                out |= {(ep.uid, t) for t in range(first, len(ep.times))}
        return out

    def run(self, steps: int) -> Feeder:
        for _ in range(steps):
            self.step()
        return self


def expected(ep: Episode, t: int, replay: TrajectoryReplay, value_of=None, policy_of=None):
    """Targets for position t of episode ep by brute force from the raw episode."""
    k_max, n, lam = replay.unroll_steps, replay.td_steps, replay.td_lambda
    discount = -replay.discount if replay.two_player else replay.discount
    horizon = len(ep.rewards)
    values = [value_of(ep.uid, j) if value_of else ep.values[j] for j in range(horizon)]
    policies = [policy_of(ep.uid, j) if policy_of else ep.policies[j] for j in range(horizon)]
    terminal = ep.kind == "terminated"
    if terminal:  # v_T is ignored: pass 0
        rewards, all_values = ep.rewards, values + [0.0]
    elif ep.kind == "truncated" and ep.final_value is not None:
        final = value_of(ep.uid, horizon) if value_of and ep.final_obs_kept else ep.final_value
        rewards, all_values = ep.rewards, values + [final]
    else:  # running, or truncated without a final value: truncated at the last observation
        rewards, all_values = ep.rewards[: horizon - 1], values
    last = len(rewards)  # index of the bootstrap value
    out = {key: [] for key in ("value", "vmask", "reward", "rmask", "policy", "pmask", "action")}
    for k in range(k_max + 1):
        u = t + k
        valid = terminal or u <= last
        z = brute_target(rewards, all_values, terminal, discount, n, lam, u) if valid else 0.0
        cut = None
        if replay.cut_returns_at_exploration or any(ep.random):
            cut = first_exploratory(ep, u + 1, last, only_random=not replay.cut_returns_at_exploration)
        if valid and cut is not None:  # the return stops there and bootstraps from its value
            z = brute_target(rewards[:cut], all_values[: cut + 1], False, discount, n, lam, u)
        if valid and u < horizon and first_exploratory(ep, u, u + 1, only_random=True) == u:
            z = all_values[u]  # its own move was random: no return through it
        out["value"].append(z)
        out["vmask"].append(float(valid))
        j = u - 1
        out["reward"].append(0.0 if k == 0 or j >= horizon else ep.rewards[j])
        out["rmask"].append(float(k > 0 and (terminal or j < horizon)))
        out["pmask"].append(float(u < horizon))
        out["policy"].append(policies[u] if u < horizon else np.full(ACTIONS, 1 / ACTIONS))
        if k < k_max:
            out["action"].append(ep.actions[u] if u < horizon else None)
    return out


def first_exploratory(ep: Episode, start: int, stop: int, only_random: bool = False) -> int | None:
    """The first step in [start, stop) whose stored move was not its stored policy's argmax
    (``only_random``: among the moves marked random)."""
    for j in range(start, stop):
        if only_random and not ep.random[j]:
            continue
        if ep.policies[j][ep.actions[j]] < ep.policies[j].max():
            return j
    return None


def check_batch(batch: ReplayBatch, feeder: Feeder, rows=None, value_of=None, policy_of=None):
    replay = feeder.replay
    rows = range(len(batch.indices)) if rows is None else rows
    for b in rows:
        uid, t = (int(x) for x in batch.observations[b])
        want = expected(feeder.episodes[uid], t, replay, value_of, policy_of)
        np.testing.assert_allclose(batch.target_values[b], want["value"], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(batch.value_mask[b], want["vmask"])
        np.testing.assert_allclose(batch.target_rewards[b], want["reward"], rtol=1e-6)
        np.testing.assert_array_equal(batch.reward_mask[b], want["rmask"])
        np.testing.assert_array_equal(batch.policy_mask[b], want["pmask"])
        np.testing.assert_allclose(batch.target_policies[b], np.stack(want["policy"]), rtol=1e-6)
        for k, action in enumerate(want["action"]):
            if action is None:
                assert 0 <= batch.actions[b, k] < ACTIONS
            else:
                assert batch.actions[b, k] == action


def make(capacity=10_000, n_envs=3, **kwargs) -> TrajectoryReplay:
    args = {
        "observation_shape": (2,),
        "observation_dtype": np.float64,
        "action_dim": ACTIONS,
        "unroll_steps": 4,
        "td_steps": 3,
        "discount": 0.9,
        "seed": 0,
    }
    args.update(kwargs)
    return TrajectoryReplay(capacity, n_envs, **args)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # n-step
        {"td_steps": 5, "td_lambda": 0.7},
        {"td_steps": 4, "td_lambda": 0.0},
        {"discount": 1.0, "two_player": True, "td_steps": 6},
        {"discount": 0.95, "two_player": True, "td_steps": 2, "td_lambda": 0.5, "unroll_steps": 0},
        {"cut_returns_at_exploration": True},
        {"cut_returns_at_exploration": True, "td_steps": 6, "td_lambda": 0.6},
        {"cut_returns_at_exploration": True, "discount": 1.0, "two_player": True, "td_steps": 30},
    ],
)
def test_targets_match_brute_force(kwargs):
    feeder = Feeder(make(**kwargs), seed=1).run(80)  # episodes of all kinds, some still running
    kinds = {ep.kind for ep in feeder.episodes.values()}
    assert kinds == {"running", "terminated", "truncated"}
    batch = feeder.replay.sample(600)
    check_batch(batch, feeder)
    k = feeder.replay.unroll_steps
    assert batch.target_values.shape == (600, k + 1) and batch.actions.shape == (600, k)
    assert batch.target_policies.shape == (600, k + 1, ACTIONS)
    assert batch.actions.dtype == np.int64 and batch.indices.dtype == np.int64
    assert batch.target_values.dtype == np.float32 and batch.weights.dtype == np.float32
    assert (batch.reward_mask[:, 0] == 0).all() and (batch.target_rewards[:, 0] == 0).all()
    assert batch.legal_masks is None
    if k > 0:  # positions past the end of truncated / running episodes show up masked
        assert (batch.value_mask == 0).any() and (batch.policy_mask == 0).any()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"td_steps": 6},
        {"td_steps": 30, "discount": 1.0, "two_player": True, "td_lambda": 0.8},
        {"cut_returns_at_exploration": True, "td_steps": 6},  # every off-greedy move cuts anyway
        {"capacity": 60, "td_steps": 6},  # the ring wraps: rows written without flags are cleared
    ],
)
def test_random_moves_cut_returns_match_brute_force(kwargs):
    feeder = Feeder(make(**kwargs), seed=4, random_moves=True).run(120)
    assert any(any(ep.random) for ep in feeder.episodes.values())
    check_batch(feeder.replay.sample(600), feeder)


def test_random_moves_change_the_targets_and_survive_pickling():
    """A random move the search would not have played stops the returns at and before it (and a
    copy pickled with its flags samples the same targets); marking none leaves every target alone."""
    targets = {}
    for marked in (False, True):
        replay = make(n_envs=1, unroll_steps=0, td_steps=10, discount=1.0, priority_alpha=0.0)
        policy = np.array([0.7, 0.1, 0.1, 0.1], dtype=np.float32)
        for t in range(4):  # step 2 plays action 1, which its policy ranks below action 0
            replay.add(
                np.array([[0.0, t]]),
                [1 if t == 2 else 0],
                [1.0 if t == 3 else 0.0],
                [10.0 * (t + 1)],
                policy[None],
                [t == 3],
                [t == 3],
                random_moves=np.array([marked and t == 2]),
            )
        clone = pickle.loads(pickle.dumps(replay))
        for buffer in (replay, clone):
            buffer.rng = np.random.default_rng(0)
        batch, cloned = replay.sample(64), clone.sample(64)
        np.testing.assert_array_equal(batch.target_values, cloned.target_values)
        targets[marked] = dict(zip(batch.observations[:, 1].astype(int), batch.target_values[:, 0]))
    assert targets[False] == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}  # the outcome everywhere
    # positions 0 and 1 bootstrap from the value at the random move (30), which keeps its own
    assert targets[True] == {0: 30.0, 1: 30.0, 2: 30.0, 3: 1.0}


def test_a_buffer_pickled_before_random_moves_existed_loads_and_samples():
    replay = make()
    Feeder(replay, seed=3).run(30)
    state = replay.__getstate__()
    del state["_random_move"]  # as pickled before the option existed
    clone = TrajectoryReplay.__new__(TrajectoryReplay)
    clone.__setstate__(state)
    assert clone._random_move is None and clone.sample(16).target_values.shape == (16, 5)


def test_in_progress_episode_is_sampled_and_bootstraps_from_last_root_value():
    replay = make(n_envs=1, td_steps=10, unroll_steps=2, discount=1.0, priority_alpha=0.0)
    rewards, values = [1.0, 2.0, 3.0], [10.0, 20.0, 30.0]
    for t in range(3):
        replay.add(
            np.array([[0, t]]),
            [0],
            [rewards[t]],
            [values[t]],
            np.full((1, ACTIONS), 0.25),
            [False],
            [False],
        )
    batch = replay.sample(200)
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
        replay = make(n_envs=1, td_steps=2, unroll_steps=3, discount=1.0)
        for t in range(2):
            replay.add(
                np.array([[0, t]]),
                [1],
                [1.0],
                [5.0],
                np.full((1, ACTIONS), 0.25),
                [t == 1],
                [terminal],
                final_values=None if terminal or t == 0 else {0: 7.0},
            )
        batch = replay.sample(50)
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


def test_eviction_keeps_capacity_and_whole_recent_episodes():
    # 8 rows x 3 envs; episodes often longer than the ring (the running one then loses its head)
    replay = make(capacity=24, n_envs=3, priority_alpha=0.0)
    feeder = Feeder(replay, seed=2, p_done=0.12)
    for _ in range(20):
        feeder.run(7)
        assert 0 < len(replay) <= 24
        batch = replay.sample(1000)  # uniform: sees every stored transition
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
    batch = replay.sample(draws)
    return np.bincount(batch.observations[:, 1].astype(int), minlength=5) / draws


def four_steps(alpha: float, beta: float = 1.0) -> tuple[TrajectoryReplay, np.ndarray]:
    """One env, four transitions with priorities 1..4; returns the replay and their handles."""
    replay = make(n_envs=1, priority_alpha=alpha, priority_beta=beta, seed=3)
    for t in range(4):
        replay.add(np.array([[0, t]]), [0], [0.0], [0.0], np.full((1, ACTIONS), 0.25), [False], [False])
    batch = replay.sample(400)
    handles = np.zeros(4, dtype=np.int64)
    handles[batch.observations[:, 1].astype(int)] = batch.indices
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
    batch = replay.sample(1000)  # contains the priority-1 transition, the largest weight
    p = batch.observations[:, 1] + 1.0
    # w = (N P)^-beta = (4 p / 10)^-beta, divided by the largest, (4/10)^-beta: w = p^-beta
    np.testing.assert_allclose(batch.weights, p**-beta, rtol=1e-6)
    replay.beta = 0.0  # annealing by assignment
    assert (replay.sample(10).weights == 1).all()


def test_stale_handles_are_ignored():
    replay = make(capacity=2, n_envs=1, priority_alpha=1.0)
    for t in range(2):
        replay.add(np.array([[0, t]]), [0], [0.0], [0.0], np.full((1, ACTIONS), 0.25), [t == 1], [True])
    old = replay.sample(20).indices
    for t in range(2):
        replay.add(np.array([[1, t]]), [0], [0.0], [0.0], np.full((1, ACTIONS), 0.25), [t == 1], [True])
    replay.update_priorities(old, np.full(old.shape, 100.0))
    batch = replay.sample(100)
    assert (batch.observations[:, 0] == 1).all()
    assert (batch.weights == 1).all()  # both new transitions kept equal priority


def test_pickle_round_trip():
    replay = make(capacity=600, n_envs=3, td_lambda=0.8)
    feeder = Feeder(replay, seed=4, masks=True).run(250)  # wrapped around
    clone = pickle.loads(pickle.dumps(replay))
    assert len(clone) == len(replay) and clone.num_episodes == replay.num_episodes
    for a, b in zip(replay.sample(64), clone.sample(64)):
        np.testing.assert_array_equal(a, b)
    feeder.replay = clone
    feeder.run(30)
    check_batch(clone.sample(200), feeder)


def test_replay_pickled_before_the_cut_option_samples_without_cuts():
    replay = make(td_steps=5)
    Feeder(replay, seed=4).run(40)
    del replay.cut_returns_at_exploration  # as in a buffer pickled before the option existed
    clone = pickle.loads(pickle.dumps(replay))
    assert clone.cut_returns_at_exploration is False
    assert clone.sample(16).target_values.shape == (16, replay.unroll_steps + 1)


def test_cut_returns_hand_example_and_ties_do_not_cut():
    """One terminated episode, rewards 1..4, values 10..40, discount 1: the move at step 2 is
    sampled away from its policy's argmax, so position 0's return stops there (1 + 2 + v_2 = 33;
    uncut 1 + 2 + 3 + 4 = 10). A move tying the largest probability is greedy: no cut at step 1."""
    replay = make(n_envs=1, unroll_steps=0, td_steps=6, discount=1.0, cut_returns_at_exploration=True)
    uniform = np.full(ACTIONS, 1 / ACTIONS, np.float32)
    peaked = np.array([0.7, 0.1, 0.1, 0.1], np.float32)
    for t, (action, policy) in enumerate([(0, peaked), (3, uniform), (2, peaked), (1, uniform)]):
        replay.add(
            np.array([[0.0, t]]),
            np.array([action]),
            np.array([t + 1.0]),
            np.array([10.0 * (t + 1)]),
            policy[None],
            np.array([t == 3]),
            np.array([t == 3]),
        )
    batch = replay.sample(200)
    targets = {int(t): float(v) for (_, t), v in zip(batch.observations, batch.target_values[:, 0])}
    assert targets == {0: 33.0, 1: 32.0, 2: 7.0, 3: 4.0}


def test_pickle_is_compact_before_the_ring_fills():
    replay = TrajectoryReplay(100_000, 4, (4, 84, 84), np.uint8, 18, 5, 10, 0.997)
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


@pytest.mark.parametrize(
    "kwargs, masks",
    [
        ({"td_steps": 6, "td_lambda": 0.6, "unroll_steps": 1}, False),
        ({"td_steps": 3}, True),
        ({"td_steps": 5, "discount": 1.0, "two_player": True}, False),
        ({"td_steps": 5, "discount": 1.0, "two_player": True, "cut_returns_at_exploration": True}, True),
    ],
)
def test_refresh_fn_replaces_values_and_policies_for_the_fraction(kwargs, masks):
    replay = make(**{"unroll_steps": 3, **kwargs})
    feeder = Feeder(replay, seed=5, masks=masks).run(60)
    calls = []

    def value_of(uid, t):
        return 100.0 + uid + 0.01 * t

    def policy_of(uid, t):
        return np.eye(ACTIONS, dtype=np.float32)[(uid + t) % ACTIONS]

    def refresh(obs, *legal):
        calls.append((obs, *legal))
        return (
            np.array([value_of(int(u), int(t)) for u, t in obs]),
            np.stack([policy_of(int(u), int(t)) for u, t in obs]),
        )

    batch = replay.sample(200, refresh_fn=refresh, refresh_fraction=0.25, refresh_with_masks=masks)
    assert len(calls) == 1 and calls[0][0].dtype == np.float64
    obs = calls[0][0]
    assert len(np.unique(obs, axis=0)) == len(obs)  # each observation once
    check_batch(batch, feeder, rows=range(50), value_of=value_of, policy_of=policy_of)
    check_batch(batch, feeder, rows=range(50, 200))
    # only the observations those 50 samples read were evaluated
    assert {int(u) for u, _ in obs} <= {int(u) for u, _ in batch.observations[:50]}
    if masks:
        for (uid, t), legal in zip(obs.astype(int), calls[0][1]):
            ep = feeder.episodes[uid]
            want = ep.legal[t] if t < len(ep.rewards) else np.ones(ACTIONS, bool)
            np.testing.assert_array_equal(legal, want)
    check_batch(replay.sample(100), feeder)  # the stored targets are unchanged


@pytest.mark.parametrize(
    "kwargs, masks",
    [
        ({"td_steps": 3}, False),
        ({"td_steps": 5, "td_lambda": 0.7}, True),
        ({"td_steps": 40, "discount": 1.0, "two_player": True}, False),
        ({"td_steps": 40, "discount": 1.0, "two_player": True, "cut_returns_at_exploration": True}, False),
    ],
)
def test_value_only_refresh_evaluates_only_the_values_read(kwargs, masks):
    """refresh_policies=False keeps the stored policies and evaluates only bootstrap positions.

    With whole-game targets (td_steps past every episode's end) only the ends of running and
    truncated episodes are read, so far fewer observations reach the network than the unroll holds.
    Policies the refresh returns anyway are ignored: the stored policy targets stay.
    """
    counts = {}

    def value_of(uid, t):
        return 100.0 + uid + 0.01 * t

    for policies in (True, False):
        replay = make(unroll_steps=3, **kwargs)
        feeder = Feeder(replay, seed=5, masks=masks).run(60)
        calls = []

        def refresh(obs, *legal, calls=calls, policies=policies):
            calls.append(obs)
            values = np.array([value_of(int(u), int(t)) for u, t in obs])
            return values, None if policies else np.full((len(obs), ACTIONS), 1.0 / ACTIONS)

        batch = replay.sample(
            200, refresh_fn=refresh, refresh_fraction=1.0, refresh_with_masks=masks, refresh_policies=policies
        )
        check_batch(batch, feeder, value_of=value_of)
        counts[policies] = len(calls[0]) if calls else 0
        if kwargs["td_steps"] == 40 and not policies:  # only returns' ends are read
            cut = replay.cut_returns_at_exploration
            for uid, t in (calls[0] if calls else np.zeros((0, 2))).astype(int):
                episode = feeder.episodes[uid]
                at_end = episode.kind != "terminated" and t >= len(episode.rewards) - 1
                assert at_end or (cut and first_exploratory(episode, t, t + 1) == t)
    assert counts[False] < counts[True]


@pytest.mark.parametrize("policies", [True, False])
@pytest.mark.parametrize("capacity", [10_000, 90])  # 90: the ring wraps
def test_refresh_with_random_moves_matches_brute_force(policies, capacity):
    """Reanalyze reads the values where random moves cut (their own positions included)."""
    replay = make(capacity=capacity, unroll_steps=3, td_steps=40, discount=1.0, two_player=True)
    feeder = Feeder(replay, seed=8, random_moves=True).run(150)

    def value_of(uid, t):
        return 100.0 + uid + 0.01 * t

    def refresh(obs, *legal):
        values = np.array([value_of(int(u), int(t)) for u, t in obs])
        return values, np.full((len(obs), ACTIONS), 1.0 / ACTIONS) if policies else None

    batch = replay.sample(300, refresh_fn=refresh, refresh_fraction=1.0, refresh_policies=policies)
    check_batch(
        batch,
        feeder,
        value_of=value_of,
        policy_of=(lambda u, t: np.full(ACTIONS, 0.25)) if policies else None,
    )


def test_refresh_argument_errors():
    replay = make()
    Feeder(replay, seed=5).run(10)
    with pytest.raises(ValueError, match="refresh_fn"):
        replay.sample(4, refresh_fraction=0.5)
    with pytest.raises(ValueError, match="policies"):
        replay.sample(4, refresh_fn=lambda o: (np.zeros(len(o)), np.zeros(len(o))), refresh_fraction=1.0)


def test_legal_masks_are_carried():
    replay = make(unroll_steps=3)
    feeder = Feeder(replay, seed=6, masks=True).run(40)
    batch = replay.sample(200)
    assert batch.legal_masks.shape == (200, 4, ACTIONS) and batch.legal_masks.dtype == bool
    for b in range(200):
        uid, t = (int(x) for x in batch.observations[b])
        ep = feeder.episodes[uid]
        for k in range(4):
            want = ep.legal[t + k] if t + k < len(ep.rewards) else np.ones(ACTIONS, bool)
            np.testing.assert_array_equal(batch.legal_masks[b, k], want)
    with pytest.raises(ValueError, match="legal_masks"):
        replay.add(
            np.zeros((3, 2)),
            [0, 0, 0],
            np.zeros(3),
            np.zeros(3),
            np.full((3, ACTIONS), 0.25),
            np.zeros(3, bool),
            np.zeros(3, bool),
        )


def test_uint8_observations_stay_uint8():
    replay = TrajectoryReplay(64, 2, (3, 5, 5), np.uint8, 3, 2, 2, 0.9)
    obs = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 5), dtype=np.uint8)
    rest = ([0, 1], [0, 0], [0, 0], np.full((2, 3), 1 / 3), [False, False], [False, False])
    replay.add(obs, *rest)
    assert replay._obs.dtype == np.uint8
    batch = replay.sample(16)
    assert batch.observations.dtype == np.uint8
    assert all((o == obs[0]).all() or (o == obs[1]).all() for o in batch.observations)
    replay.add(obs.astype(np.int64), *rest)  # integers that fit are accepted
    assert len(replay) == 4
    for bad in (obs.astype(np.float32), obs.astype(np.int64) + 1000):
        with pytest.raises(TypeError, match="dtype"):
            replay.add(bad, *rest)


def test_float16_policy_storage():
    replay = make(policy_dtype=np.float16)
    feeder = Feeder(replay, seed=7).run(30)
    assert replay._policies.dtype == np.float16
    batch = replay.sample(100)
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
        ({"td_lambda": 1.2}, "td_lambda"),
        ({"td_lambda": -0.5}, "td_lambda"),
        ({"discount": -0.9}, "two_player"),
        ({"unroll_steps": -1}, "unroll_steps"),
        ({"priority_alpha": -1.0}, "priority_alpha"),
        ({"priority_beta": -1.0}, "beta"),
        ({"action_dim": 0}, "action_dim"),
        ({"cut_returns_at_exploration": "yes"}, "cut_returns_at_exploration must be a bool"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    args = {"capacity": 100, "n_envs": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make(**args)


def test_bad_add_and_sample_arguments():
    replay = make(n_envs=2)
    good = {
        "observations": np.zeros((2, 2)),
        "actions": [0, 1],
        "rewards": [0.0, 0.0],
        "root_values": [0.0, 0.0],
        "search_policies": np.full((2, ACTIONS), 0.25),
        "dones": [False, True],
        "terminated": [False, False],
    }
    with pytest.raises(ValueError, match="empty"):
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
    with pytest.raises(ValueError, match="refresh_fraction"):
        replay.sample(4, refresh_fraction=2.0)
    with pytest.raises(ValueError, match="same length"):
        replay.update_priorities(np.zeros(2, np.int64), np.ones(3))
    with pytest.raises(ValueError, match="priorities"):
        replay.update_priorities(np.zeros(1, np.int64), np.array([-1.0]))
    with pytest.raises(ValueError, match="beta"):
        replay.beta = -0.1


@pytest.mark.slow
def test_sample_speed_100k():
    replay = TrajectoryReplay(100_000, 8, (4,), np.float32, 6, 5, 10, 0.997, seed=0)
    rng = np.random.default_rng(0)
    policies = np.full((8, 6), 1 / 6)
    for _ in range(100_000 // 8):
        done = rng.random(8) < 0.005
        replay.add(
            rng.random((8, 4)),
            rng.integers(0, 6, 8),
            rng.random(8),
            rng.random(8),
            policies,
            done,
            done,
        )
    times = []
    for _ in range(100):
        start = time.perf_counter()
        replay.sample(256)
        times.append(time.perf_counter() - start)
    assert np.median(times) < 0.004, f"median sample time {np.median(times) * 1e3:.2f} ms"


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
    replay = make(
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
    feeder = Feeder(replay, seed=seed, p_done=p_done).run(steps)
    want = feeder.stored()
    assert len(replay) == len(want) <= replay.capacity
    batch = replay.sample(60 * len(want))  # all at the initial max priority: uniform
    assert {(int(u), int(t)) for u, t in batch.observations} == want
    check_batch(batch, feeder, rows=range(min(300, len(batch.indices))))
    # with priorities: new data gets the max, evicted data is never drawn again
    replay.update_priorities(batch.indices, feeder.rng.random(len(batch.indices)) * 5)
    feeder.run(7)
    batch = replay.sample(200)
    assert {(int(u), int(t)) for u, t in batch.observations} <= feeder.stored()
    check_batch(batch, feeder, rows=range(50))


def test_newest_step_of_a_running_episode_is_excluded_from_priority_updates():
    """Its k=0 target is its own bootstrap value: |v - z| carries no information yet."""
    rb = TrajectoryReplay(100, 1, (1,), np.float32, 2, unroll_steps=1, td_steps=5, discount=1.0, seed=0)
    for t in range(3):
        rb.add(np.array([[t]], np.float32), [0], [1.0], [0.0], [[0.5, 0.5]], [False], [False])
    batch = rb.sample(64)
    newest = batch.observations[:, 0] == 2
    assert newest.any() and (~newest).any()
    np.testing.assert_array_equal(batch.priority_mask, ~newest)


def test_sample_releases_its_lock_while_refreshing_and_gives_the_unlocked_batch():
    """A background trainer passes its replay lock: self-play may add() during Reanalyze."""
    import threading

    def filled():
        buffer = TrajectoryReplay(
            capacity=64,
            n_envs=1,
            observation_shape=(2,),
            observation_dtype=np.float32,
            action_dim=3,
            unroll_steps=2,
            td_steps=3,
            discount=0.9,
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

    lock = threading.Lock()
    held_during_refresh = []

    def refresh(observations):
        held_during_refresh.append(lock.locked())
        return observations[:, 0].astype(np.float64) / 10.0, None

    locked = filled().sample(8, refresh_fn=refresh, refresh_fraction=1.0, lock=lock)
    plain = filled().sample(8, refresh_fn=refresh, refresh_fraction=1.0)
    assert held_during_refresh == [False, False] and not lock.locked()
    for a, b in zip(locked, plain):
        if a is not None:
            np.testing.assert_array_equal(a, b)
