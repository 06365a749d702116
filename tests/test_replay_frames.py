"""TrajectoryReplay with ``frame_stack``: stacked observations stored one frame per step give
back exactly what a replay storing them whole gives (samples, accessors, final observations),
across wrap-around and eviction, short episodes, keyframes, several envs and pickling; the
argument's errors, the compatibility check, and format-2 pickles (whole observations) still load."""

from __future__ import annotations

import pathlib
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muzero_agents.replay import TrajectoryReplay

DATA = pathlib.Path(__file__).parent / "data"
ACTIONS = 3


class StackedEnvs:
    """``n_envs`` envs whose observations are stacked as SB3's VecFrameStack stacks them: the
    stack rolls by one frame along ``axis`` and the new frame goes last; at a reset the older
    frames are zeros. With probability ``p_jump`` a step instead shows a whole new random stack
    (a wrapper that does not shift), so the replay must keep it as a keyframe."""

    def __init__(self, n_envs, stack, axis, frame_shape, seed, p_done=0.1, p_jump=0.0, levels=256):
        self.n_envs, self.stack, self.axis = n_envs, stack, axis
        self.frame_shape, self.p_done, self.p_jump, self.levels = tuple(frame_shape), p_done, p_jump, levels
        self.width = self.frame_shape[axis]
        shape = list(self.frame_shape)
        shape[axis] *= stack
        self.observation_shape = tuple(shape)
        self.rng = np.random.default_rng(seed)
        self.obs = np.zeros((n_envs, *self.observation_shape), np.uint8)
        for env in range(n_envs):
            self._reset(env)

    def _newest(self) -> tuple:
        """Index of the newest frame in one observation."""
        index = [slice(None)] * len(self.observation_shape)
        index[self.axis] = slice(-self.width, None)
        return tuple(index)

    def _frame(self) -> np.ndarray:
        return self.rng.integers(0, self.levels, self.frame_shape, dtype=np.uint8)

    def _reset(self, env: int) -> None:
        self.obs[env] = 0
        self.obs[env][self._newest()] = self._frame()

    def _shifted(self, env: int) -> np.ndarray:
        out = np.roll(self.obs[env], -self.width, axis=self.axis)
        out[self._newest()] = self._frame()
        return out

    def step(self) -> dict:
        """The keyword arguments of one ``add``; then the envs move on."""
        n, rng = self.n_envs, self.rng
        dones = rng.random(n) < self.p_done
        terminated = dones & (rng.random(n) < 0.5)
        step = dict(
            observations=self.obs.copy(),
            actions=rng.integers(0, ACTIONS, n),
            rewards=rng.normal(size=n).round(2),
            root_values=rng.normal(size=n).round(2),
            search_policies=rng.dirichlet(np.ones(ACTIONS), n),
            dones=dones,
            terminated=terminated,
            final_observations={},
            final_values={},
        )
        for env in range(n):
            if dones[env]:
                step["final_observations"][env] = self._shifted(env)
                if not terminated[env]:
                    step["final_values"][env] = float(rng.normal())
                self._reset(env)
            elif rng.random() < self.p_jump:
                self.obs[env] = rng.integers(0, self.levels, self.observation_shape, dtype=np.uint8)
            else:
                self.obs[env] = self._shifted(env)
        return step


def replays(envs: StackedEnvs, capacity: int, seed: int = 0, **kwargs) -> tuple:
    """A plain replay and a frame_stack one with the same settings and seed."""
    args = dict(
        capacity=capacity,
        n_envs=envs.n_envs,
        observation_shape=envs.observation_shape,
        observation_dtype=np.uint8,
        action_dim=ACTIONS,
        unroll_steps=3,
        td_steps=2,
        seed=seed,
        **kwargs,
    )
    return TrajectoryReplay(**args), TrajectoryReplay(**args, frame_stack=(envs.stack, envs.axis))


def feed(envs: StackedEnvs, steps: int, *buffers: TrajectoryReplay) -> None:
    for _ in range(steps):
        step = envs.step()
        for buffer in buffers:
            buffer.add(**step)


def assert_same(plain: TrajectoryReplay, framed: TrajectoryReplay, batch: int = 64) -> None:
    """Every way observations leave the two replays gives the same arrays."""
    if len(plain):
        a = plain.sample(batch, next_observations=True)
        b = framed.sample(batch, next_observations=True)
        for name, value in vars(a).items():
            if value is None:
                assert getattr(b, name) is None, name
            else:
                np.testing.assert_array_equal(getattr(b, name), value, err_msg=name)
                assert getattr(b, name).dtype == value.dtype, name
        np.testing.assert_array_equal(framed.observations_at(a.handles), plain.observations_at(a.handles))
    # every slot of the ring, written or not, by a handle that lands there
    handles = np.arange(plain.capacity + plain.n_envs * max(plain._rows_written - plain.rows, 0))
    np.testing.assert_array_equal(framed.holds(handles), plain.holds(handles))
    np.testing.assert_array_equal(framed.observations_at(handles), plain.observations_at(handles))
    for handle in handles[plain.holds(handles)]:
        want, got = plain.final_observation(handle), framed.final_observation(handle)
        assert (want is None) == (got is None)
        if want is not None:
            np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ the data is the same
LAYOUTS = [
    pytest.param(4, 0, (1, 6, 5), id="channels-first"),
    pytest.param(3, 2, (5, 4, 2), id="channels-last-2-per-frame"),
    pytest.param(2, 1, (3, 2), id="middle-axis"),
]


@pytest.mark.parametrize("stack, axis, frame", LAYOUTS)
@pytest.mark.parametrize("n_envs", [1, 3])
def test_same_data_as_whole_observations_across_wrap_around(stack, axis, frame, n_envs):
    envs = StackedEnvs(n_envs, stack, axis, frame, seed=n_envs, p_done=0.12, p_jump=0.05)
    plain, framed = replays(envs, capacity=10 * n_envs)
    for _ in range(12):  # 10 rows: the ring wraps several times and evicts
        feed(envs, 4, plain, framed)
        assert_same(plain, framed)
    assert framed._obs.nbytes * stack == plain._obs.nbytes


def test_episodes_shorter_than_the_stack_and_a_ring_shorter_than_the_stack():
    for capacity in (2, 4, 6, 40):  # rows 1, 2, 3 with 2 envs: fewer rows than frames
        envs = StackedEnvs(2, 4, 0, (1, 3, 3), seed=capacity, p_done=0.45, levels=3)
        plain, framed = replays(envs, capacity)
        for _ in range(15):
            feed(envs, 3, plain, framed)
            assert_same(plain, framed, batch=16)


def test_a_mid_episode_observation_that_does_not_shift_is_kept_as_a_keyframe():
    envs = StackedEnvs(1, 4, 0, (1, 4, 4), seed=3, p_done=0.0)
    plain, framed = replays(envs, capacity=50)
    feed(envs, 6, plain, framed)
    keys = np.count_nonzero(framed._key_slot)
    assert keys == 1  # the episode's first step only
    envs.obs[0] = np.arange(64, dtype=np.uint8).reshape(4, 4, 4)  # not the last one shifted
    feed(envs, 6, plain, framed)
    assert np.count_nonzero(framed._key_slot) == 2
    assert_same(plain, framed)


def test_side_storage_is_freed_as_the_ring_overwrites_it():
    envs = StackedEnvs(2, 4, 0, (1, 3, 3), seed=4, p_done=0.3)
    plain, framed = replays(envs, capacity=20)
    feed(envs, 200, plain, framed)
    assert_same(plain, framed)
    held = np.count_nonzero(framed._key_slot)
    assert held <= framed.capacity
    assert len(framed._key_frames) - len(framed._key_free) == held  # no entry leaks
    assert len(framed._key_frames) <= 2 * framed.capacity


@settings(max_examples=30, deadline=None)
@given(
    n_envs=st.integers(1, 3),
    rows=st.integers(1, 9),
    stack=st.integers(2, 4),
    channels_last=st.booleans(),
    p_done=st.sampled_from([0.05, 0.3, 0.7]),
    p_jump=st.sampled_from([0.0, 0.2]),
    levels=st.sampled_from([2, 256]),  # 2: many frames that equal by chance
    steps=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_random_configurations_give_the_same_data(
    n_envs, rows, stack, channels_last, p_done, p_jump, levels, steps, seed
):
    frame, axis = ((2, 2, 1), 2) if channels_last else ((1, 2, 3), 0)
    envs = StackedEnvs(n_envs, stack, axis, frame, seed, p_done=p_done, p_jump=p_jump, levels=levels)
    plain, framed = replays(envs, capacity=rows * n_envs, seed=seed)
    feed(envs, steps, plain, framed)
    assert_same(plain, framed, batch=32)
    plain.truncate_running_episodes()
    framed.truncate_running_episodes()
    feed(envs, 5, plain, framed)
    assert_same(plain, framed, batch=32)


# ------------------------------------------------------------------ pickling
def test_pickle_round_trip_keeps_the_data_and_feeding_continues():
    envs = StackedEnvs(3, 4, 0, (1, 5, 5), seed=5, p_done=0.15, p_jump=0.05)
    plain, framed = replays(envs, capacity=45)
    feed(envs, 8, plain, framed)  # before the ring fills: only used rows are pickled
    clone = pickle.loads(pickle.dumps(framed))
    assert clone._obs.shape == framed._obs.shape and clone.frame_stack == (4, 0)
    assert_same(plain, clone)
    feed(envs, 30, plain, clone)  # wraps
    clone = pickle.loads(pickle.dumps(clone))
    assert_same(plain, clone)
    feed(envs, 10, plain, clone)
    assert_same(plain, clone)


def test_a_stacked_replay_passes_the_checked_load(tmp_path):
    from muzero_agents.files import load_pickle_checked, save_pickle_atomically

    envs = StackedEnvs(2, 3, 2, (4, 4, 1), seed=8, p_done=0.2, p_jump=0.1)
    plain, framed = replays(envs, capacity=16)
    feed(envs, 20, plain, framed)
    path = save_pickle_atomically(tmp_path / "replay", framed)
    loaded = load_pickle_checked(path, TrajectoryReplay, "a MuZero replay buffer")
    for name, value in vars(framed).items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(getattr(loaded, name), value), name
    assert loaded._key_free == framed._key_free
    assert_same(plain, loaded)


def test_a_stacked_pickle_holds_about_one_frame_per_step():
    envs = StackedEnvs(2, 4, 0, (1, 40, 40), seed=6, p_done=0.01)
    plain, framed = replays(envs, capacity=400)
    feed(envs, 150, plain, framed)
    whole, stacked = len(pickle.dumps(plain)), len(pickle.dumps(framed))
    finals = sum(obs.nbytes for obs in framed._final_obs.values())  # kept whole by both
    kept_aside = framed._key_frames.nbytes
    assert stacked < (whole - finals) / 4 + finals + kept_aside + 20_000
    assert stacked < 0.35 * whole


def _format_2_steps():
    """The adds that tests/data/replay-buffer-format-2.pkl holds (written by muzero-agents 0.2.0,
    which stored whole observations); must not change, or that file no longer matches."""
    rng = np.random.default_rng(2)
    for t in range(30):
        done = np.array([t % 7 == 6, t % 11 == 10])
        yield dict(
            observations=rng.integers(0, 256, (2, 3, 4, 4), dtype=np.uint8),
            actions=rng.integers(0, ACTIONS, 2),
            rewards=rng.normal(size=2),
            root_values=rng.normal(size=2),
            search_policies=np.full((2, ACTIONS), 1 / ACTIONS),
            dones=done,
            terminated=np.array([True, False]) & done,
            final_observations={1: np.full((3, 4, 4), t, np.uint8)} if done[1] else None,
            final_values={1: 0.5} if done[1] else None,
        )


def _format_2_replay() -> TrajectoryReplay:
    replay = TrajectoryReplay(40, 2, (3, 4, 4), np.uint8, ACTIONS, unroll_steps=2, td_steps=3, seed=7)
    for step in _format_2_steps():
        replay.add(**step)
    return replay


def test_a_format_2_pickle_of_whole_observations_still_loads():
    loaded = pickle.loads((DATA / "replay-buffer-format-2.pkl").read_bytes())
    assert loaded.frame_stack is None and loaded._key_slot is None
    fresh = _format_2_replay()
    assert len(loaded) == len(fresh) == 35 and loaded.num_episodes == fresh.num_episodes
    assert_same(fresh, loaded)
    again = pickle.loads(pickle.dumps(loaded))  # written back in the current format
    assert_same(fresh, again)
    for step in _format_2_steps():
        for buffer in (fresh, again):
            buffer.add(**step)
    assert_same(fresh, again)


# ------------------------------------------------------------------ settings
def test_the_layout_is_kept_normalized_and_plain_replays_are_unchanged():
    plain = TrajectoryReplay(8, 1, (6, 2), np.uint8, ACTIONS, 1, 1)
    assert plain.frame_stack is None and plain._obs.shape == (8, 1, 6, 2) and plain._key_slot is None
    framed = TrajectoryReplay(8, 1, (6, 2), np.uint8, ACTIONS, 1, 1, frame_stack=(np.int64(3), -2))
    assert framed.frame_stack == (3, 0) and framed._obs.shape == (8, 1, 2, 2)
    assert all(type(value) is int for value in framed.frame_stack)


@pytest.mark.parametrize(
    "frame_stack, match",
    [
        (4, r"frame_stack must be None or \(frames, axis\).*VecFrameStack.*got 4"),
        ((4, 0, 1), r"frame_stack must be None or \(frames, axis\).*got \(4, 0, 1\)"),
        ((4.0, 0), r"frame_stack must be None or \(frames, axis\)"),
        ((True, 0), r"frame_stack must be None or \(frames, axis\)"),
        ((1, 0), r"frame count must be at least 2, got \(1, 0\).*pass frame_stack=None"),
        ((0, 0), "frame count must be at least 2"),
        ((2, 3), r"axis 3 is not an axis of the observation shape \(8, 84, 84\); pass an axis in \[-3, 3\)"),
        ((2, -4), "axis -4 is not an axis"),
        ((3, 0), r"frame_stack=\(3, 0\): axis 0 of the observation shape \(8, 84, 84\) has size 8, which 3"),
    ],
)
def test_bad_frame_stack_is_refused_with_the_fix(frame_stack, match):
    with pytest.raises(ValueError, match=match):
        TrajectoryReplay(16, 2, (8, 84, 84), np.uint8, ACTIONS, 1, 1, frame_stack=frame_stack)


MODEL = dict(
    n_envs=2, observation_shape=(8, 4, 4), observation_dtype=np.uint8, action_dim=ACTIONS, unroll_steps=1,
    td_steps=1,
)  # fmt: skip


def test_check_compatible_refuses_another_frame_layout():
    framed = TrajectoryReplay(16, **MODEL, frame_stack=(4, 0))
    plain = TrajectoryReplay(16, **MODEL)
    framed.check_compatible(**MODEL, frame_stack=(4, -3))  # the same axis
    plain.check_compatible(**MODEL)
    plain.check_compatible(**MODEL, frame_stack=None)
    fix = r"load it into a model whose env stacks frames the same way \(frame_stack=\(4, 0\)\)"
    for other in (None, (2, 0), (8, 0)):
        with pytest.raises(ValueError, match=rf"in b\.pkl was recorded with frame_stack=\(4, 0\) .*{fix}"):
            framed.check_compatible(**MODEL, frame_stack=other, path="b.pkl")
    with pytest.raises(
        ValueError, match=r"recorded with frame_stack=None but this model has frame_stack=\(4, 0\)"
    ):
        plain.check_compatible(**MODEL, frame_stack=(4, 0))
    # another shape is named first, even when the layout does not fit it
    with pytest.raises(ValueError, match="observation_shape"):
        framed.check_compatible(**{**MODEL, "observation_shape": (3, 4, 4)}, frame_stack=(4, 0))
