"""Symmetric play: predict searches every image of the board and adds their policies up on the original."""

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from muzero_agents import MuZero
from muzero_agents.augment import Symmetries
from muzero_agents.search import SearchResult
from wrappers import make_board_game


def tictactoe_position(moves=(0, 4, 5)):
    """An asymmetric tic-tac-toe position (X 0 and 5, O 4): its observation and legal mask."""
    env = make_board_game("tictactoe")
    obs, _ = env.reset(seed=0)
    for move in moves:
        obs, *_ = env.step(move)
    return env, obs, env.action_masks()


def neighbour_scores(board: np.ndarray) -> np.ndarray:
    """Per cell of a 3x3x2 board: stones around it (mover's 1, opponent's 10), 0 on occupied cells.

    Every rotation and reflection keeps a cell's neighbours, so these scores move with the board:
    the scores of an image, pulled back, are the original's.
    """
    stones = board[..., 0].astype(np.int64) + 10 * board[..., 1]
    padded = np.pad(stones, 1)
    around = sum(np.roll(np.roll(padded, dr, 0), dc, 1) for dr in (-1, 0, 1) for dc in (-1, 0, 1))
    scores = around[1:-1, 1:-1] - stones
    return np.where(board.sum(-1) == 0, scores, 0).reshape(-1)


def test_images_match_their_boards_and_scores_pull_back_to_the_original():
    env, obs, mask = tictactoe_position()
    symmetries = Symmetries.stack(env.board_symmetries)
    images, image_masks = symmetries.images(obs[None], mask[None])
    assert images.shape == (8, 3, 3, 2) and image_masks.shape == (8, 9)
    for image, image_mask in zip(images, image_masks):
        assert np.array_equal(image_mask, image.sum(-1).reshape(-1) == 0)  # legal = the image's empty cells
        assert image.sum() == obs.sum()
    assert len({image.tobytes() for image in images}) == 8  # the position has no symmetry of its own

    per_image = np.stack([neighbour_scores(image) for image in images])
    pulled = symmetries.pull_back_sum(per_image)
    assert pulled.shape == (1, 9)
    assert np.array_equal(pulled[0], 8 * neighbour_scores(obs))


def test_a_batch_of_positions_keeps_each_one_apart():
    env, obs, mask = tictactoe_position()
    _, other, other_mask = tictactoe_position((8,))
    symmetries = Symmetries.stack(env.board_symmetries)
    images, _ = symmetries.images(np.stack([obs, other]), np.stack([mask, other_mask]))
    per_image = np.stack([neighbour_scores(image) for image in images])
    pulled = symmetries.pull_back_sum(per_image)
    assert np.array_equal(pulled, 8 * np.stack([neighbour_scores(obs), neighbour_scores(other)]))


def tictactoe_model(**overrides):
    kwargs = dict(
        num_simulations=4, policy_kwargs=dict(network_kwargs=dict(channels=8, num_blocks=1)), seed=0
    )
    return MuZero("CnnPolicy", make_board_game("tictactoe"), **{**kwargs, **overrides})


def fake_search(score_of_image):
    """A search whose visit counts are ``score_of_image(index, image)``, recording its batches."""
    batches = []

    def search(observations, legal_mask, explore, temperature, policy=None, rng=None, num_simulations=None):
        batches.append((observations.copy(), None if legal_mask is None else legal_mask.copy()))
        visits = np.stack([score_of_image(i, image) for i, image in enumerate(observations)]).astype(np.int32)
        zeros = np.zeros(len(observations), dtype=np.float32)
        improved = (visits / visits.sum(1, keepdims=True)).astype(np.float32)
        return SearchResult(visits.argmax(1), visits, improved, zeros, visits * 0.0)

    return search, batches


def test_a_misjudgement_in_one_orientation_is_outvoted(monkeypatch):
    _, obs, mask = tictactoe_position()
    model = tictactoe_model(play_symmetries=True)
    legal_scores = np.where(mask, neighbour_scores(obs), 10**6)
    wrong = int(np.argmin(legal_scores))  # the legal cell the scores rank last

    def score(index, image):
        scores = neighbour_scores(image)
        if index == 0:  # the identity image: the same visit budget, all on the wrong cell
            budget = scores.sum()
            scores = np.zeros(9, dtype=np.int64)
            scores[wrong] = budget
        return scores

    search, batches = fake_search(score)
    monkeypatch.setattr(model, "_search", search)
    action, _ = model.predict(obs, action_masks=mask, deterministic=True)
    assert len(batches) == 1 and batches[0][0].shape == (8, 3, 3, 2)
    images, image_masks = batches[0]
    assert np.array_equal(image_masks, images.sum(-1).reshape(8, 9) == 0)  # each image's own empty cells
    assert int(action) != wrong
    summed = 7 * neighbour_scores(obs)  # the other seven images agree with each other
    assert int(action) == int(np.argmax(summed))
    model.play_symmetries = False
    action, _ = model.predict(obs, action_masks=mask, deterministic=True)
    assert int(action) == wrong  # one search, the identity image's


def test_predict_plays_legal_moves_from_every_image_sampled_or_not():
    model = tictactoe_model(play_symmetries=True)
    _, obs, mask = tictactoe_position()
    _, other, other_mask = tictactoe_position((4,))
    batch, masks = np.stack([obs, other]), np.stack([mask, other_mask])
    for deterministic in (True, False):
        for _ in range(5):
            actions, _ = model.predict(batch, action_masks=masks, deterministic=deterministic)
            assert actions.shape == (2,) and masks[0, actions[0]] and masks[1, actions[1]]


def test_gumbel_plays_the_summed_improved_policies_not_its_halving_visits(monkeypatch):
    """Sequential halving leaves equal visits on its survivors; the completed-Q policies decide."""
    _, obs, mask = tictactoe_position()
    model = tictactoe_model(play_symmetries=True, search="gumbel", num_simulations=4)
    real_search = model._search
    seen = []

    def recording(observations, legal_mask, explore, temperature, policy=None, rng=None, num_simulations=None):
        result = real_search(observations, legal_mask, explore, temperature, policy, rng, num_simulations)
        seen.append(result)
        return result

    monkeypatch.setattr(model, "_search", recording)
    action, _ = model.predict(obs, action_masks=mask, deterministic=True)
    symmetries = model._symmetries
    summed = symmetries.pull_back_sum(seen[0].policy.astype(np.float64))[0]
    assert int(action) == int(np.argmax(summed)) and mask[int(action)]
    for _ in range(5):
        sampled, _ = model.predict(obs, action_masks=mask, deterministic=False)
        assert summed[int(sampled)] > 0 and mask[int(sampled)]


def test_the_choice_follows_the_policies_where_visits_tie(monkeypatch):
    _, obs, mask = tictactoe_position()
    model = tictactoe_model(play_symmetries=True)
    legal = np.flatnonzero(mask)
    favoured = int(legal[-1])  # the last legal cell: visits tie, so a visit argmax would take the first

    def search(observations, legal_mask, explore, temperature, policy=None, rng=None, num_simulations=None):
        visits = legal_mask.astype(np.int32) * 4  # halving-like: equal visits on every legal action
        improved = legal_mask.astype(np.float32)
        images_of_favoured = model._symmetries.action_map[:, favoured]
        improved[np.arange(len(observations)), images_of_favoured] += 5.0
        improved /= improved.sum(1, keepdims=True)
        zeros = np.zeros(len(observations), dtype=np.float32)
        return SearchResult(visits.argmax(1), visits, improved, zeros, visits * 0.0)

    monkeypatch.setattr(model, "_search", search)
    action, _ = model.predict(obs, action_masks=mask, deterministic=True)
    assert int(action) == favoured


def test_the_symmetries_travel_in_the_save(tmp_path):
    model = tictactoe_model(play_symmetries=True)
    model.save(tmp_path / "sym")
    loaded = MuZero.load(tmp_path / "sym", device="cpu")  # no env: the save has the symmetries
    assert loaded.play_symmetries and loaded._symmetries.same_as(model._symmetries)
    _, obs, mask = tictactoe_position()
    action, _ = loaded.predict(obs, action_masks=mask, deterministic=True)
    assert mask[int(action)]

    model.save(tmp_path / "old", exclude=["_symmetries"])  # as saves from before symmetric play
    old = MuZero.load(tmp_path / "old", device="cpu")
    with pytest.raises(ValueError, match="set_env"):
        old.predict(obs, action_masks=mask)
    old.set_env(make_board_game("tictactoe"))
    action, _ = old.predict(obs, action_masks=mask, deterministic=True)
    assert mask[int(action)]


def test_play_symmetries_needs_a_board_with_symmetries():
    with pytest.raises(ValueError, match="play_symmetries=True needs an env that declares board_symmetries"):
        MuZero("MlpPolicy", "CartPole-v1", play_symmetries=True)
    with pytest.raises(ValueError, match="play_symmetries must be a bool"):
        MuZero("MlpPolicy", "CartPole-v1", play_symmetries="yes")
    assert MuZero("MlpPolicy", "CartPole-v1")._symmetries is None
