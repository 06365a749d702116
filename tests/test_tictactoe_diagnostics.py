"""The tic-tac-toe diagnostics: the position enumeration and the exact values it scores against."""

import numpy as np

from benchmarks.diagnostics.tictactoe_diagnostics import completes_a_line, observations, reachable_positions
from wrappers.opponents import tictactoe_value


def test_every_reachable_non_terminal_position_is_found_once_with_its_ply():
    positions = reachable_positions()
    assert len(positions) == 4520  # the known count of non-terminal tic-tac-toe positions
    counts = np.bincount(list(positions.values()))
    assert counts.tolist() == [1, 9, 72, 252, 756, 1140, 1372, 696, 222]


def test_exact_values_of_known_positions():
    assert tictactoe_value((0,) * 9) == 0  # perfect play draws
    corner_then_edge = (1, 0, 0, 0, 0, 0, 0, -1, 0)  # the opener (+1, to move) wins
    assert tictactoe_value(corner_then_edge) == 1
    must_block = (-1, -1, 0, 0, 1, 0, 0, 0, 0)  # the opponent threatens 2: blocking holds the draw
    assert tictactoe_value(must_block) == 0
    not_blocked = (1, 1, 0, 0, -1, 0, 0, 0, -1)  # after the mover played 8 instead: a win for the other
    assert tictactoe_value(not_blocked) == 1


def test_observations_follow_pettingzoo_planes():
    obs = observations([(1, -1, 0, 0, 0, 0, 0, 0, 0)])
    assert obs.shape == (1, 3, 3, 2)
    assert obs[0, 0, 0, 0] == 1 and obs[0, 0, 1, 1] == 1 and obs.sum() == 2


def test_winning_moves_are_the_ones_completing_a_line():
    cells = (1, 1, 0, -1, -1, 0, 1, 0, 0)  # the mover has 0, 1 and 6; the opponent 3 and 4
    assert [a for a in range(9) if cells[a] == 0 and completes_a_line(cells, a)] == [2]
    assert not completes_a_line((0,) * 9, 4)
