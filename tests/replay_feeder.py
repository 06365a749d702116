"""Test support for the replay, targets and Reanalyze tests: random interleaved episodes fed to a
TrajectoryReplay while the test keeps its own copy, and the targets those episodes should give,
computed by brute force from that copy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from muzero_agents.replay import TrajectoryReplay
from muzero_agents.targets import ReplayBatch, make_batch

ACTIONS = 4
TARGET_SETTINGS = ("discount", "td_lambda", "two_player")


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


class Setup:
    """A replay and the target settings its batches are built with."""

    def __init__(self, capacity=10_000, n_envs=3, **kwargs) -> None:
        args = {
            "observation_shape": (2,),
            "observation_dtype": np.float64,
            "action_dim": ACTIONS,
            "unroll_steps": 4,
            "td_steps": 3,
            "seed": 0,
        }
        self.settings = {"discount": 0.9, "td_lambda": 1.0, "two_player": False}
        for name, value in kwargs.items():
            (self.settings if name in TARGET_SETTINGS else args)[name] = value
        self.replay = TrajectoryReplay(capacity, n_envs, **args)

    def batch(self, batch_size: int, **sample_kwargs) -> ReplayBatch:
        """Sample a window and build its targets."""
        return make_batch(self.replay.sample(batch_size, **sample_kwargs), **self.settings)


class Feeder:
    """Feeds random interleaved episodes to a replay; observation = (episode uid, step)."""

    def __init__(self, setup: Setup, seed: int, p_done=0.15, masks=False, random_moves=False) -> None:
        self.setup, self.replay = setup, setup.replay
        self.rng, self.p_done, self.masks = np.random.default_rng(seed), p_done, masks
        self.random_moves = random_moves  # mark some moves random (every other add passes None)
        self.episodes: dict[int, Episode] = {}
        self.clock = 0  # add calls so far
        self.current = [self._new(env) for env in range(self.replay.n_envs)]

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


def first_random(ep: Episode, start: int, stop: int) -> int | None:
    """The first step in [start, stop) whose move was marked random and was not its stored
    policy's argmax (a move the search would not have played)."""
    for j in range(start, stop):
        if ep.random[j] and ep.policies[j][ep.actions[j]] < ep.policies[j].max():
            return j
    return None


def _trajectory(ep: Episode, value_of) -> tuple:
    """(rewards, values with the bootstrap last, terminal) of the value trajectory."""
    horizon = len(ep.rewards)
    values = [value_of(ep.uid, j) if value_of else ep.values[j] for j in range(horizon)]
    if ep.kind == "terminated":  # v_T is ignored: pass 0
        return ep.rewards, values + [0.0], True
    if ep.kind == "truncated" and ep.final_value is not None:
        final = value_of(ep.uid, horizon) if value_of and ep.final_obs_kept else ep.final_value
        return ep.rewards, values + [final], False
    # running, or truncated without a final value: truncated at the last observation
    return ep.rewards[: horizon - 1], values, False


def expected(ep: Episode, t: int, setup: Setup, value_of=None, policy_of=None) -> dict:
    """Targets for position t of episode ep by brute force from the raw episode."""
    k_max, n = setup.replay.unroll_steps, setup.replay.td_steps
    lam = setup.settings["td_lambda"]
    discount = setup.settings["discount"] * (-1 if setup.settings["two_player"] else 1)
    horizon = len(ep.rewards)
    policies = [policy_of(ep.uid, j) if policy_of else ep.policies[j] for j in range(horizon)]
    rewards, all_values, terminal = _trajectory(ep, value_of)
    last = len(rewards)  # index of the bootstrap value
    out = {key: [] for key in ("value", "vmask", "reward", "rmask", "policy", "pmask", "action")}
    for k in range(k_max + 1):
        u = t + k
        valid = terminal or u <= last
        z = brute_target(rewards, all_values, terminal, discount, n, lam, u) if valid else 0.0
        cut = first_random(ep, u + 1, last) if any(ep.random) else None
        if valid and cut is not None:  # the return stops there and bootstraps from its value
            z = brute_target(rewards[:cut], all_values[: cut + 1], False, discount, n, lam, u)
        if valid and u < horizon and first_random(ep, u, u + 1) == u:
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


def check_batch(batch: ReplayBatch, feeder: Feeder, rows=None, value_of=None, policy_of=None) -> None:
    """Every target of the given batch rows equals the brute-force one."""
    rows = range(len(batch.indices)) if rows is None else rows
    for b in rows:
        uid, t = (int(x) for x in batch.observations[b])
        want = expected(feeder.episodes[uid], t, feeder.setup, value_of, policy_of)
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
