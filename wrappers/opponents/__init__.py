"""Opponents for the versus-opponent env: anything that picks a move from (board, mask, state).

An opponent is any object with ``act(observation, action_mask, game_state) -> int``
(``Opponent``). Random play, any SB3-style model (through ``predict``), perfect tic-tac-toe,
depth-limited connect-four negamax and the engines in ``wrappers.engines`` all follow it, so
models can play each other and engines alike.
"""

from wrappers.opponents.base import RESIGN, GameState, Opponent
from wrappers.opponents.minimax import TICTACTOE_LINES, TicTacToeMinimaxOpponent, tictactoe_value
from wrappers.opponents.negamax import ConnectFourNegamaxOpponent
from wrappers.opponents.predictor import PolicyOpponent
from wrappers.opponents.random import RandomOpponent

__all__ = [
    "RESIGN",
    "TICTACTOE_LINES",
    "ConnectFourNegamaxOpponent",
    "GameState",
    "Opponent",
    "PolicyOpponent",
    "RandomOpponent",
    "TicTacToeMinimaxOpponent",
    "tictactoe_value",
]
