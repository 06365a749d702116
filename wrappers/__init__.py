"""Environment adapters: turn-based PettingZoo games as Gymnasium envs, opponents, engines.

Nothing here imports ``muzero_agents``: the adapters serve any SB3 algorithm.
"""

from wrappers.opponents import (
    RESIGN,
    ConnectFourNegamaxOpponent,
    GameState,
    Opponent,
    PolicyOpponent,
    RandomOpponent,
    TicTacToeMinimaxOpponent,
)
from wrappers.registry import GAMES, GYMNASIUM_IDS, make_board_game, register_gymnasium_ids
from wrappers.selfplay import SelfPlayEnv
from wrappers.versus import VersusOpponentEnv

register_gymnasium_ids()

__all__ = [
    "GAMES",
    "GYMNASIUM_IDS",
    "RESIGN",
    "ConnectFourNegamaxOpponent",
    "GameState",
    "Opponent",
    "PolicyOpponent",
    "RandomOpponent",
    "SelfPlayEnv",
    "TicTacToeMinimaxOpponent",
    "VersusOpponentEnv",
    "make_board_game",
]
