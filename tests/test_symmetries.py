"""Board symmetries: each one maps real games to real games, and augmentation moves batches consistently."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from muzero_agents import MuZero
from muzero_agents.targets import ReplayBatch
from muzero_agents.augment import Symmetries, augment
from wrappers.symmetries import dihedral_transforms, grid_symmetries, mirror_transforms
from wrappers import make_board_game


def _random_game(env, rng, max_moves):
    """Moves, observations, masks and rewards of one random legal game (or its first max_moves)."""
    obs, _ = env.reset(seed=0)
    moves, observations, masks, rewards = [], [obs], [env.action_masks()], []
    for _ in range(max_moves):
        action = int(rng.choice(np.flatnonzero(masks[-1])))
        obs, reward, terminated, truncated, _ = env.step(action)
        moves.append(action)
        observations.append(obs)
        masks.append(env.action_masks())
        rewards.append(reward)
        if terminated or truncated:
            break
    return moves, observations, masks, rewards


@pytest.mark.parametrize(
    ("game", "kwargs", "count", "max_moves"),
    [("tictactoe", {}, 8, 9), ("connect_four", {}, 2, 42), ("go", {"board_size": 5}, 8, 40)],
)
def test_every_symmetry_maps_a_real_game_onto_a_real_game(game, kwargs, count, max_moves):
    """Playing the mapped moves from the start gives the mapped observations, masks and rewards."""
    env = make_board_game(game, **kwargs)
    symmetries = env.board_symmetries
    assert len(symmetries) == count
    rng = np.random.default_rng(1)
    for _ in range(3):
        moves, observations, masks, rewards = _random_game(env, rng, max_moves)
        for symmetry in symmetries:
            image = make_board_game(game, **kwargs)
            obs, _ = image.reset(seed=0)
            assert np.array_equal(obs.reshape(-1), observations[0].reshape(-1)[symmetry.obs_index])
            for step, move in enumerate(moves):
                mapped = symmetry.action_map[move]
                assert image.action_masks()[mapped]
                obs, reward, *_ = image.step(int(mapped))
                assert reward == rewards[step]
                assert np.array_equal(obs.reshape(-1), observations[step + 1].reshape(-1)[symmetry.obs_index])
                assert np.array_equal(image.action_masks()[symmetry.action_map], masks[step + 1])


def test_chess_declares_no_symmetry():
    pytest.importorskip("chess")
    assert make_board_game("chess").board_symmetries == []


def test_the_dihedral_group_has_eight_distinct_images():
    grid = np.arange(9).reshape(3, 3)
    images = {transform(grid).tobytes() for transform in dihedral_transforms()}
    assert len(images) == 8
    assert np.array_equal(dihedral_transforms()[0](grid), grid)


def test_grid_symmetries_refuse_shapes_that_do_not_match():
    with pytest.raises(ValueError, match="H, W, C"):
        grid_symmetries((3, 3), np.arange(9).reshape(3, 3), 9, dihedral_transforms())
    with pytest.raises(ValueError, match="square"):
        grid_symmetries((2, 3, 1), np.arange(6).reshape(2, 3), 6, dihedral_transforms())
    assert len(grid_symmetries((2, 3, 1), np.arange(6).reshape(2, 3), 6, mirror_transforms())) == 2


def _one_stone_batch(cells: np.ndarray, unroll: int = 2) -> ReplayBatch:
    """A tic-tac-toe batch whose position b has one stone on cell ``cells[b]``, played and targeted there."""
    size, actions = cells.size, 9
    observations = np.zeros((size, 3, 3, 2), dtype=np.int8)
    observations[np.arange(size), cells // 3, cells % 3, 0] = 1
    one_hot = np.eye(actions, dtype=np.float32)[cells]
    return ReplayBatch(
        observations=observations,
        actions=np.repeat(cells[:, None], unroll, axis=1).astype(np.int64),
        target_values=np.tile(np.arange(unroll + 1, dtype=np.float32), (size, 1)),
        target_rewards=np.zeros((size, unroll + 1), np.float32),
        target_policies=np.repeat(one_hot[:, None, :], unroll + 1, axis=1),
        value_mask=np.ones((size, unroll + 1), np.float32),
        reward_mask=np.ones((size, unroll + 1), np.float32),
        policy_mask=np.ones((size, unroll + 1), np.float32),
        weights=np.ones(size, np.float32),
        indices=np.arange(size),
        legal_masks=np.repeat(one_hot[:, None, :] > 0, unroll + 1, axis=1),
    )


def test_augment_moves_the_stone_the_action_and_the_targets_together():
    env = make_board_game("tictactoe")
    cells = np.tile(np.arange(9), 20)
    batch = _one_stone_batch(cells)
    image = augment(batch, Symmetries.stack(env.board_symmetries), np.random.default_rng(0))
    stone_cells = image.observations[..., 0].reshape(len(cells), 9).argmax(axis=1)
    assert np.array_equal(image.actions[:, 0], stone_cells)
    assert np.array_equal(image.target_policies[:, 1].argmax(axis=1), stone_cells)
    assert np.array_equal(image.legal_masks[:, 2].argmax(axis=1), stone_cells)
    assert np.array_equal(image.target_values, batch.target_values)
    corner = cells == 0  # a corner goes to every corner, never to an edge or the centre
    assert set(stone_cells[corner]) == {0, 2, 6, 8}
    assert augment(batch, None, np.random.default_rng(0)) is batch


def test_muzero_reads_the_symmetries_of_its_env_and_trains_on_images(monkeypatch):
    import muzero_agents.learner as algorithm

    seen = []

    def spy(batch, symmetries, rng):
        seen.append(None if symmetries is None else symmetries.obs_index.shape[0])
        return augment(batch, symmetries, rng)

    monkeypatch.setattr(algorithm, "augment", spy)
    model = MuZero(
        "MlpPolicy", make_board_game("tictactoe"), learning_starts=8, batch_size=8, num_simulations=2
    )
    model.learn(24)
    assert model._n_updates > 0 and seen == [8] * model._n_updates
    off = MuZero(
        "MlpPolicy",
        make_board_game("tictactoe"),
        learning_starts=8,
        batch_size=8,
        num_simulations=2,
        learner_kwargs=dict(augment_symmetries=False),
    )
    seen.clear()
    off.learn(24)
    assert off._n_updates > 0 and seen == [None] * off._n_updates  # read, not trained on


def test_symmetries_of_a_reshaped_board_are_refused():
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    stacked = VecFrameStack(DummyVecEnv([lambda: make_board_game("tictactoe")]), 2)
    with pytest.raises(ValueError, match="augment_symmetries=False"):
        MuZero("MlpPolicy", stacked, num_simulations=2)
    assert (
        MuZero(
            "MlpPolicy", stacked, num_simulations=2, learner_kwargs=dict(augment_symmetries=False)
        )._symmetries
        is None
    )


def test_symmetries_of_a_board_transposed_by_an_observation_wrapper_are_refused():
    board = make_board_game("tictactoe")  # (3, 3, 2) planes; the wrapper makes them channels-first
    space = gym.spaces.Box(0, 1, (2, 3, 3), board.observation_space.dtype)
    transposed = gym.wrappers.TransformObservation(board, lambda obs: obs.transpose(2, 0, 1), space)
    with pytest.raises(ValueError, match="an observation wrapper reshaped them.*augment_symmetries=False"):
        MuZero("CnnPolicy", transposed, num_simulations=2)  # 6 of 8 images put stones on wrong cells
    assert make_board_game("tictactoe").board_symmetries[0].obs_shape == (3, 3, 2)


class _ExtraPlane(gym.ObservationWrapper):
    """Adds a plane to tic-tac-toe's board and declares the symmetries of its own observations."""

    def __init__(self, env):
        super().__init__(env)
        self.observation_space = type(env.observation_space)(0, 1, (3, 3, 3), env.observation_space.dtype)
        cells = np.arange(9).reshape(3, 3)
        self.board_symmetries = grid_symmetries((3, 3, 3), cells, 9, dihedral_transforms())

    def observation(self, observation):
        return np.concatenate([observation, np.ones_like(observation[..., :1])], axis=-1)


def test_a_wrapper_that_declares_the_symmetries_of_its_own_observations_keeps_them():
    model = MuZero("MlpPolicy", _ExtraPlane(make_board_game("tictactoe")), num_simulations=2)
    assert model._symmetries is not None and model._symmetries.obs_index.shape == (8, 27)
    kept = MuZero("CnnPolicy", make_board_game("tictactoe"), num_simulations=2)
    assert kept._symmetries is not None and len(kept._symmetries.obs_index) == 8


def test_an_action_grid_that_is_not_a_permutation_is_refused():
    grid = np.zeros((3, 3), dtype=np.int64)  # every cell the same action: not a board's layout
    with pytest.raises(ValueError, match="permute"):
        grid_symmetries((3, 3, 1), grid + np.arange(3), 9, dihedral_transforms())
