"""Shogi PettingZoo env: API conformance, rules against cshogi, encoding, perspective, endings."""

from __future__ import annotations

import pickle
import random
import warnings

import cshogi
import numpy as np
import pytest
from pettingzoo.test import api_test, seed_test

from wrappers.envs import shogi_v0
from wrappers.envs.shogi import encoding
from wrappers.envs.shogi.observation import NUM_CHANNELS

N = encoding.NUM_PLANES


def _action(row: int, col: int, plane: int) -> int:
    return (row * 9 + col) * N + plane


def _reference_piece_planes(board: cshogi.Board, color: int) -> np.ndarray:
    """Obviously-correct piece planes from ``board.pieces``, cell by cell."""
    planes = np.zeros((9, 9, 28), dtype=np.float32)
    pieces = board.pieces
    for row in range(9):
        for col in range(9):
            file, rank = (9 - col, row + 1) if color == 0 else (col + 1, 9 - row)
            piece = pieces[(file - 1) * 9 + rank - 1]
            if piece:
                owner, piece_type = (0, piece) if piece < 16 else (1, piece - 16)
                planes[row, col, (0 if owner == color else 14) + piece_type - 1] = 1.0
    return planes


def _play(env: shogi_v0.raw_env, moves: list[str]) -> None:
    for move in moves:
        assert not env.terminations[env.agent_selection], f"game ended before {move}"
        env.step(env.usi_to_action(move))


def _random_positions(games: int, plies: int, seed: int = 0):
    """Yield (env, reference cshogi board) along random games; the board follows by USI."""
    rng = random.Random(seed)
    for _ in range(games):
        env = shogi_v0.raw_env()
        board = cshogi.Board()
        for _ in range(plies):
            if env.terminations[env.agent_selection]:
                break
            yield env, board
            legal = env.legal_actions()
            action = int(legal[rng.randrange(len(legal))])
            board.push_usi(env.action_to_usi(action))
            env.step(action)


# ------------------------------------------------------------------------- API
def test_pettingzoo_api_test_passes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dict observations warn, as for PettingZoo's chess
        api_test(shogi_v0.env(), num_cycles=300)


def test_seed_test_passes():
    seed_test(shogi_v0.env, num_cycles=100)


def test_spaces_and_first_observation():
    env = shogi_v0.env()
    env.reset(seed=0)
    obs, reward, termination, truncation, _ = env.last()
    assert env.agent_selection == "player_0"
    assert obs["observation"].shape == (9, 9, NUM_CHANNELS) == (9, 9, 47)
    assert obs["observation"].dtype == np.float32
    assert obs["action_mask"].shape == (11259,) and obs["action_mask"].dtype == np.int8
    assert obs["action_mask"].sum() == 30  # legal moves in the start position
    assert env.observe("player_1")["action_mask"].sum() == 0
    assert env.action_space("player_0").n == 9 * 9 * 139
    assert (reward, termination, truncation) == (0, False, False)


# ------------------------------------------------------------------------- rules vs cshogi
def test_legal_moves_and_encoding_match_cshogi_on_random_positions():
    seen = {"drop": 0, "promotion": 0, "knight": 0, "gote": 0}
    positions = 0
    for env, board in _random_positions(games=12, plies=160):
        positions += 1
        assert env.sfen.split()[:3] == board.sfen().split()[:3]
        moves = list(board.legal_moves)
        mask = env.observe(env.agent_selection)["action_mask"]
        assert int(mask.sum()) == len(moves)
        indices = set()
        for move in moves:
            usi = cshogi.move_to_usi(move)
            action = env.usi_to_action(usi)
            assert mask[action] == 1, usi
            assert env.action_to_usi(action) == usi
            assert encoding.action_to_move16(action, board.turn) == cshogi.move16(move)
            indices.add(action)
            plane = action % N
            seen["drop"] += plane >= encoding.DROP_OFFSET
            seen["promotion"] += encoding.PROMOTION_OFFSET <= plane < encoding.DROP_OFFSET
            seen["knight"] += plane % encoding.PROMOTION_OFFSET in (64, 65) and plane < 132
            seen["gote"] += board.turn == cshogi.WHITE
        assert len(indices) == len(moves)  # distinct indices
        np.testing.assert_array_equal(np.sort(list(indices)), env.legal_actions())
    assert positions > 1000
    assert all(count > 0 for count in seen.values()), seen


def test_piece_planes_match_reference_for_both_players_and_turns():
    for index, (env, board) in enumerate(_random_positions(games=3, plies=120, seed=1)):
        if index % 7:
            continue
        for color, agent in enumerate(shogi_v0.AGENTS):
            planes = env.observe(agent)["observation"]
            np.testing.assert_array_equal(planes[:, :, :28], _reference_piece_planes(board, color))
            own, opponent = board.pieces_in_hand[color], board.pieces_in_hand[1 - color]
            maxima = np.array([18, 4, 4, 4, 4, 2, 2])
            np.testing.assert_allclose(planes[0, 0, 28:35], np.array(own) / maxima, rtol=1e-6)
            np.testing.assert_allclose(planes[8, 8, 35:42], np.array(opponent) / maxima, rtol=1e-6)
            assert planes[4, 4, 45] == board.turn


def test_pawn_drop_mate_is_illegal():
    # P*5b would mate (gold on 5c guards it and 4b/6b, gote's lances block 4a/6a): uchifuzume.
    env = shogi_v0.raw_env(initial_sfen="3lkl3/9/4G4/9/9/9/9/9/4K4 b P 1")
    mask = env.observe("player_0")["action_mask"]
    assert mask[env.usi_to_action("P*5b")] == 0
    assert mask[env.usi_to_action("P*5d")] == 1


# ------------------------------------------------------------------------- perspective
def test_hand_checked_indices_are_mirrored_for_gote():
    env = shogi_v0.raw_env()
    # Sente's 7g7f: from cell (row 6, col 2) one step N -> plane 0.
    assert env.usi_to_action("7g7f") == _action(6, 2, 0) == 7784
    # Sente's knight 8i7g: from (8, 1), two forward and one right -> plane 65.
    assert env.usi_to_action("8i7g") == _action(8, 1, 65)
    # Promotion: bishop 8h2b+ is 6 steps NE from (7, 1) -> plane 1 * 8 + 5, promoted + 66.
    assert env.usi_to_action("8h2b+") == _action(7, 1, 66 + 13)
    assert env.usi_to_action("P*5e") == _action(4, 4, 132)
    env.step(env.usi_to_action("7g7f"))
    # Gote's mirrored moves get the same indices: its board is turned around.
    assert env.usi_to_action("3c3d") == 7784
    assert env.usi_to_action("2a3c") == _action(8, 1, 65)
    assert env.usi_to_action("2b8h+") == _action(7, 1, 66 + 13)
    assert env.action_to_usi(_action(4, 4, 132 + 6)) == "R*5e"
    # Gote sees its own pawns on row 6 and sente's advanced pawn (7f) at row 3, col 6.
    planes = env.observe("player_1")["observation"]
    assert planes[6, :, 0].sum() == 9 and planes[:, :, 0].sum() == 9
    assert planes[3, 6, 14] == 1 and planes[2, 6, 14] == 0
    assert planes[8, 4, 7] == 1  # gote's king in front of it, 5a -> (8, 4)
    assert planes[0, 4, 14 + 7] == 1  # sente's king far away, 5i -> (0, 4)
    assert planes[0, 0, 45] == 1  # gote to move


def test_action_to_usi_and_usi_to_action_reject_bad_input():
    env = shogi_v0.raw_env()
    with pytest.raises(ValueError, match="USI move"):
        env.usi_to_action("7g7z")
    with pytest.raises(ValueError, match="never a legal"):
        env.action_to_usi(_action(0, 0, 0))  # one step N from the far rank leaves the board
    with pytest.raises(ValueError, match="outside"):
        env.action_to_usi(11259)


# ------------------------------------------------------------------------- endings
def test_mate_gives_plus_one_to_the_mater():
    env = shogi_v0.env(initial_sfen="4k4/9/4P4/9/9/9/9/9/4K4 b G 1")
    env.reset()
    env.step(env.unwrapped.usi_to_action("G*5b"))
    _, reward, termination, _, info = env.last()
    assert env.agent_selection == "player_1"
    assert termination and reward == -1 and info["reason"] == "checkmate"
    assert env.rewards == {"player_0": 1, "player_1": -1}
    env.step(None)
    _, reward, termination, _, _ = env.last()
    assert env.agent_selection == "player_0" and termination and reward == 1
    env.step(None)
    assert env.agents == []


def test_short_mating_sequence_from_sfen():
    # Gote: king 1a, bishop 2a. Sente: pawn 2c, gold and silver in hand. S*2b checks (guarded by
    # the pawn, so the only reply is 1a1b), then G*1c mates (guarded by the silver; the bishop's
    # diagonal is blocked by its own king).
    env = shogi_v0.raw_env(initial_sfen="7bk/9/7P1/9/9/9/9/9/K8 b GS 1")
    legal_before = len(env.legal_actions())
    assert legal_before > 0
    env.step(env.usi_to_action("S*2b"))
    replies = [env.action_to_usi(a) for a in env.legal_actions()]
    assert replies == ["1a1b"]
    assert not any(env.terminations.values())
    env.step(env.usi_to_action("1a1b"))
    env.step(env.usi_to_action("G*1c"))
    assert env.terminations == {"player_0": True, "player_1": True}
    assert env.rewards == {"player_0": 1, "player_1": -1}
    assert env.infos["player_1"]["reason"] == "checkmate"
    assert env.usi_moves == ["S*2b", "1a1b", "G*1c"]


def test_fourfold_repetition_is_a_draw():
    env = shogi_v0.raw_env()
    cycle = ["5i5h", "5a5b", "5h5i", "5b5a"]
    _play(env, cycle * 2)
    planes = env.observe("player_0")["observation"]
    assert planes[0, 0, 42:45].tolist() == [1, 1, 0]  # start position seen twice before
    _play(env, cycle[:3])
    assert not any(env.terminations.values())
    _play(env, cycle[3:])
    assert all(env.terminations.values())
    assert env.rewards == {"player_0": 0, "player_1": 0}
    assert env.infos["player_0"]["reason"] == "sennichite"


def test_perpetual_check_loses_for_the_checker():
    # Sente's rook checks from 5i / 4i while gote's king steps 5a <-> 4a.
    env = shogi_v0.raw_env(initial_sfen="4k4/9/9/9/9/9/9/9/3R4K b - 1")
    _play(env, ["6i5i"] + ["5a4a", "5i4i", "4a5a", "4i5i"] * 3)
    assert all(env.terminations.values())
    assert env.infos["player_0"]["reason"] == "perpetual_check"
    assert env.rewards == {"player_0": -1, "player_1": 1}


def test_move_cap_ends_in_a_draw():
    env = shogi_v0.raw_env(max_moves=6)
    _play(env, ["5i5h", "5a5b", "5h5i", "5b5a", "7g7f"])
    assert not any(env.terminations.values())
    assert env.observe("player_1")["observation"][0, 0, 46] == pytest.approx(5 / 6)
    _play(env, ["3c3d"])
    assert all(env.terminations.values()) and env.infos["player_0"]["reason"] == "move_cap"
    assert env.rewards == {"player_0": 0, "player_1": 0}


def test_start_position_without_legal_moves_is_rejected():
    with pytest.raises(ValueError, match="already over"):
        shogi_v0.raw_env(initial_sfen="4k4/4G4/4P4/9/9/9/9/9/4K4 w - 1")  # gote is mated


def test_default_move_cap_is_512_and_bad_cap_is_rejected():
    assert shogi_v0.raw_env().max_moves == 512
    with pytest.raises(ValueError, match="max_moves"):
        shogi_v0.raw_env(max_moves=0)


def test_illegal_action_ends_the_game_and_the_mover_loses():
    env = shogi_v0.env()
    env.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.step(0)  # not a legal move in the start position
    _, reward, termination, _, info = env.last()
    assert env.agent_selection == "player_1" and termination and reward == 0
    assert info["illegal_move"] is False and info["reason"] == "illegal_move"
    env.step(None)
    _, reward, termination, _, info = env.last()
    assert env.agent_selection == "player_0" and termination and reward == -1
    assert info["illegal_move"] is True
    env.step(None)
    assert env.agents == []


def test_out_of_range_action_raises_a_clear_error():
    env = shogi_v0.raw_env()
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(11259)
    with pytest.raises(ValueError, match="integer indices"):
        env.step(1.5)


# ------------------------------------------------------------------------- helpers
def test_sfen_render_and_start_position_option():
    env = shogi_v0.raw_env(render_mode="ansi")
    _play(env, ["7g7f", "3c3d"])
    assert env.sfen == "lnsgkgsnl/1r5b1/pppppp1pp/6p2/9/2P6/PP1PPPPPP/1B5R1/LNSGKGSNL b - 3"
    text = env.render()
    assert "sente to move" in text and " K " in text and " k " in text
    env.reset(options={"sfen": "4k4/9/4P4/9/9/9/9/9/4K4 w G 1"})
    assert env.agent_selection == "player_1" and env.sfen.startswith("4k4/9/4P4")
    assert env.start_sfen == "4k4/9/4P4/9/9/9/9/9/4K4 w G 1" and env.usi_moves == []


@pytest.mark.parametrize(
    "sfen",
    [
        "garbage",
        "lnsgkgsnl/9/9 b - 1",
        "lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNQ b - 1",
        "4k4/9/9/9/9/9/9/9/4K4 b 19P 1",
    ],
)
def test_malformed_sfen_raises_value_error_instead_of_aborting(sfen):
    with pytest.raises(ValueError, match="SFEN"):
        shogi_v0.raw_env(initial_sfen=sfen)


def test_observation_is_fresh_each_ply_and_env_pickles():
    env = shogi_v0.raw_env()
    first = env.observe("player_0")
    env.step(env.usi_to_action("7g7f"))
    assert first["action_mask"].sum() == 30  # the earlier observation was not overwritten
    clone = pickle.loads(pickle.dumps(env))
    assert clone.sfen == cshogi.STARTING_SFEN  # EzPickle rebuilds from the constructor
