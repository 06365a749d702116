"""The distributed run's replay: one shard per actor, sampled exactly as one replay (no Ray needed)."""

import numpy as np
import pytest

from muzero_agents.distributed.shards import ShardedReplay
from muzero_agents.replay import RUNNING, TRUNCATED_NO_VALUE, TrajectoryReplay

ACTIONS = 3
LAYOUT = dict(
    observation_shape=(2,), observation_dtype=np.float32, action_dim=ACTIONS, unroll_steps=2, td_steps=2
)


def add_steps(replay: ShardedReplay, shard: int, steps: int, start: float, done_every: int = 0) -> None:
    """``steps`` vectorized steps into ``shard``; observation [start + t, env]."""
    n_envs = replay.shards[shard].n_envs
    for t in range(steps):
        done = np.full(n_envs, bool(done_every) and (t + 1) % done_every == 0)
        replay.add(
            shard,
            observations=np.stack([[start + t, env] for env in range(n_envs)]).astype(np.float32),
            actions=np.zeros(n_envs, dtype=np.int64),
            rewards=np.ones(n_envs, dtype=np.float32),
            root_values=np.zeros(n_envs, dtype=np.float32),
            search_policies=np.full((n_envs, ACTIONS), 1.0 / ACTIONS, dtype=np.float32),
            dones=done,
            terminated=done,
        )


def two_shards(seed=0, alpha=1.0, beta=1.0) -> ShardedReplay:
    return ShardedReplay.build(
        [1, 2], seed=seed, capacity=400, priority_alpha=alpha, priority_beta=beta, **LAYOUT
    )


def test_shards_split_the_capacity_and_count_every_step():
    replay = two_shards()
    assert [shard.capacity for shard in replay.shards] == [200, 200]
    add_steps(replay, 0, 10, start=0.0)
    add_steps(replay, 1, 5, start=100.0)
    assert len(replay) == 10 + 5 * 2 and replay.n_envs == 3
    assert replay.num_episodes == 3  # one running episode per env


def test_handles_name_their_shard_and_step():
    replay = two_shards()
    add_steps(replay, 0, 20, start=0.0)
    add_steps(replay, 1, 20, start=100.0)
    window = replay.sample(64)
    observations = replay.observations_at(window.indices)
    np.testing.assert_array_equal(observations, window.observations)
    assert replay.holds(window.handles[:, :1]).all()
    assert set(np.unique(window.observations[:, 0] >= 100.0)) == {False, True}  # both shards drawn
    assert replay.legal_masks_at(window.indices) is None
    assert not replay.holds(np.array([-1]))[0]


def test_legal_masks_are_read_across_shards_even_for_no_position():
    """Board games store legal masks; Reanalyze may ask for none (no bootstrap inside the games)."""
    replay = two_shards()
    for shard, start in ((0, 0.0), (1, 100.0)):
        n_envs = replay.shards[shard].n_envs
        masks = np.ones((n_envs, ACTIONS), dtype=bool)
        masks[:, shard] = False  # shard 0 forbids action 0, shard 1 action 1
        replay.add(
            shard,
            observations=np.full((n_envs, 2), start, dtype=np.float32),
            actions=np.full(n_envs, 2),
            rewards=np.zeros(n_envs, dtype=np.float32),
            root_values=np.zeros(n_envs, dtype=np.float32),
            search_policies=np.full((n_envs, ACTIONS), 1.0 / ACTIONS, dtype=np.float32),
            dones=np.zeros(n_envs, dtype=bool),
            terminated=np.zeros(n_envs, dtype=bool),
            legal_masks=masks,
        )
    window = replay.sample(16)
    masks = replay.legal_masks_at(window.indices)
    from_shard_1 = window.observations[:, 0] >= 100.0
    assert masks.shape == (16, ACTIONS) and set(from_shard_1) == {False, True}
    np.testing.assert_array_equal(masks[:, 0], from_shard_1)
    np.testing.assert_array_equal(masks[:, 1], ~from_shard_1)
    assert replay.legal_masks_at(np.zeros(0, dtype=np.int64)).shape == (0, ACTIONS)


def test_sampling_follows_priorities_over_all_shards_with_their_weights():
    """Shard 0 holds 10 steps, shard 1 20; one step of shard 1 gets priority 31 (the others 1):
    it is drawn with probability 31 / 60, and its importance weight is the smallest."""
    replay = two_shards(beta=1.0)
    add_steps(replay, 0, 10, start=0.0)
    add_steps(replay, 1, 10, start=100.0)
    window = replay.sample(256)
    replay.update_priorities(window.indices, np.ones(256))
    special = int(window.indices[window.observations[:, 0] >= 100.0][0])
    replay.update_priorities(np.array([special]), np.array([31.0]))
    draws = replay.sample(20_000)
    share = float(np.mean(draws.indices == special))
    assert share == pytest.approx(31 / 60, abs=0.02)
    # (N P)^-beta / max: the ordinary steps have P = 1/60, the special one 31/60
    ordinary = draws.weights[draws.indices != special]
    np.testing.assert_allclose(ordinary, 1.0)
    np.testing.assert_allclose(draws.weights[draws.indices == special], 1 / 31, rtol=1e-5)


def test_priority_updates_reach_the_right_shard():
    replay = two_shards(alpha=1.0)
    add_steps(replay, 0, 5, start=0.0)
    add_steps(replay, 1, 5, start=100.0)
    window = replay.sample(32)
    from_second = window.observations[:, 0] >= 100.0
    replay.update_priorities(window.indices, np.where(from_second, 1e-6, 1.0))
    # every step of shard 0 still has priority 1 (its initial maximum): shard 1's drawn ones are now rare
    later = replay.sample(2000)
    assert np.mean(later.observations[:, 0] >= 100.0) < 0.6


def test_truncating_one_shard_leaves_the_others_running():
    replay = two_shards()
    add_steps(replay, 0, 6, start=0.0)
    add_steps(replay, 1, 6, start=100.0)
    replay.truncate_running_episodes(shard=0)
    window = replay.sample(200)
    first = window.observations[:, 0] < 100.0
    assert (window.episode_end[first] == TRUNCATED_NO_VALUE).all()
    assert (window.episode_end[~first] == RUNNING).all()
    assert replay.shards[0].num_finished_episodes == 1 and replay.shards[1].num_finished_episodes == 0


def test_an_empty_replay_refuses_to_sample():
    with pytest.raises(ValueError, match="holds no transitions"):
        two_shards().sample(4)


def test_a_window_from_one_shard_is_that_shards_window():
    """The same stored steps give the same targets from a shard as from a plain replay."""
    replay = ShardedReplay.build([2], seed=3, capacity=100, priority_alpha=0.0, priority_beta=1.0, **LAYOUT)
    add_steps(replay, 0, 12, start=0.0, done_every=5)
    plain = TrajectoryReplay(capacity=100, n_envs=2, seed=3, priority_alpha=0.0, **LAYOUT)
    for t in range(12):
        done = np.full(2, (t + 1) % 5 == 0)
        plain.add(
            np.stack([[t, env] for env in range(2)]).astype(np.float32), np.zeros(2, np.int64),
            np.ones(2, np.float32), np.zeros(2, np.float32), np.full((2, ACTIONS), 1 / ACTIONS, np.float32),
            done, done,
        )  # fmt: skip
    window = replay.sample(500)
    by_obs = {
        tuple(obs): (end, left)
        for obs, end, left in zip(window.observations, window.episode_end, window.steps_left)
    }
    reference = plain.sample(500)
    for obs, end, left in zip(reference.observations, reference.episode_end, reference.steps_left):
        if tuple(obs) in by_obs:
            assert by_obs[tuple(obs)] == (end, left)
    np.testing.assert_allclose(window.weights, 1.0)  # uniform priorities: equal weights


def cartpole_shards(model, steps: int) -> ShardedReplay:
    """A distributed run's replay for ``model`` (one shard per actor), with ``steps`` steps in each."""
    layout = model._replay_layout()
    n_envs = layout.pop("n_envs")
    replay = ShardedReplay.build([n_envs] * model.num_actors, seed=0, capacity=model.buffer_size, **layout)
    for shard in range(model.num_actors):
        for t in range(steps):
            replay.add(
                shard,
                observations=np.full((n_envs, 4), t, dtype=np.float32),
                actions=np.zeros(n_envs, dtype=np.int64),
                rewards=np.ones(n_envs, dtype=np.float32),
                root_values=np.zeros(n_envs, dtype=np.float32),
                search_policies=np.full((n_envs, 2), 0.5, dtype=np.float32),
                dones=np.zeros(n_envs, dtype=bool),
                terminated=np.zeros(n_envs, dtype=bool),
            )
    return replay


def test_a_saved_sharded_replay_loads_into_a_model_with_as_many_actors(tmp_path, fast_kwargs):
    from stable_baselines3.common.logger import configure

    from muzero_agents import MuZero

    saver = MuZero("MlpPolicy", "CartPole-v1", num_actors=2, **fast_kwargs)
    saver.replay_buffer = cartpole_shards(saver, steps=20)
    saver.save_replay_buffer(tmp_path / "replay.pkl")

    model = MuZero("MlpPolicy", "CartPole-v1", num_actors=2, **fast_kwargs)
    model.load_replay_buffer(tmp_path / "replay.pkl")
    assert isinstance(model.replay_buffer, ShardedReplay) and len(model.replay_buffer) == 40
    window = model.replay_buffer.sample(200)  # the running episodes were ended: their envs are gone
    assert (window.episode_end == TRUNCATED_NO_VALUE).all()
    model.set_logger(configure(str(tmp_path), []))
    model.train(1, batch_size=8)

    for actors in (0, 3):
        other = MuZero("MlpPolicy", "CartPole-v1", num_actors=actors, **fast_kwargs)
        with pytest.raises(ValueError, match=r"2 self-play actors.*set model\.num_actors = 2"):
            other.load_replay_buffer(tmp_path / "replay.pkl")
    longer = MuZero("MlpPolicy", "CartPole-v1", num_actors=2, **{**fast_kwargs, "unroll_steps": 4})
    with pytest.raises(ValueError, match="unroll_steps=3"):
        longer.load_replay_buffer(tmp_path / "replay.pkl")
