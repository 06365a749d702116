"""Board games by name: ``make_board_game("go", board_size=9)`` -> a self-play Gymnasium env.

With ``opponent=`` the same game comes back as a single-agent ``VersusOpponentEnv``: the
opponent is an ``Opponent``, any model with ``predict``, ``"random"``, ``"minimax"``
(tic-tac-toe) or an engine name (``"gnugo"``, ``"stockfish"``, ``"gnushogi"``).
Game modules are imported only when asked for, so missing optional packages only matter
for the games that need them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from wrappers.checks import build_with_kwargs, check_keywords, finite_number, integer_in_range
from wrappers.opponents import Opponent, PolicyOpponent, RandomOpponent, TicTacToeMinimaxOpponent
from wrappers.pass_rule import PassWhenSettled
from wrappers.selfplay import SelfPlayEnv
from wrappers.symmetries import Symmetry, dihedral_transforms, grid_symmetries, mirror_transforms
from wrappers.versus import VersusOpponentEnv

GAMES_EXTRA = "pip install 'muzero-agents[games]'"


@dataclass(frozen=True)
class GameSpec:
    """Where a game lives and which keyword arguments it takes (with defaults; None: any)."""

    module: str
    defaults: dict | None


# the modules behind PettingZoo's tictactoe_v3 etc.; importing them directly avoids its
# "old creation API" deprecation warning and works across PettingZoo versions
GAMES: dict[str, GameSpec] = {
    "tictactoe": GameSpec("pettingzoo.classic.tictactoe.tictactoe", {}),
    "connect_four": GameSpec("pettingzoo.classic.connect_four.connect_four", {}),
    "go": GameSpec("pettingzoo.classic.go.go", {"board_size": 19, "komi": 7.5}),
    "chess": GameSpec("pettingzoo.classic.chess.chess", {}),
    "shogi": GameSpec("wrappers.envs.shogi_v0", None),  # max_moves, initial_sfen: checked there
}

GO_SIZES = range(5, 20)  # GNU Go plays up to 19x19; tiny boards are degenerate


def make_board_game(
    name: str,
    opponent: Opponent | str | Any | None = None,
    *,
    agent_side: str | None = None,
    opponent_kwargs: dict | None = None,
    render_mode: str | None = None,
    **game_kwargs: Any,
) -> SelfPlayEnv | VersusOpponentEnv | PassWhenSettled:
    """Build a board game as a self-play env, or as a versus-opponent env if ``opponent`` is given.

    :param name: one of ``GAMES`` (``"tictactoe"``, ``"connect_four"``, ``"go"``, ``"chess"``, ``"shogi"``).
    :param opponent: None for self-play; else an ``Opponent``, a model with ``predict``,
        ``"random"``, ``"minimax"`` (tic-tac-toe only) or an engine name.
    :param agent_side: the learner's side against an opponent: ``"first"`` (default),
        ``"second"`` or ``"alternate"`` (per episode).
    :param opponent_kwargs: arguments for a named opponent (e.g. ``{"level": 1}`` for GNU Go,
        ``{"skill_level": 0, "depth": 1}`` for Stockfish, ``{"seed": 0}`` for random).
    :param render_mode: passed to the PettingZoo env.
    :param game_kwargs: the game's own settings (Go: ``board_size`` 5-19, ``komi``;
        shogi: ``max_moves``, ``initial_sfen``). Go also takes ``pass_when_settled=True``: the
        learner may pass only when every other legal move fills one of its own eyes or to answer a
        pass, and games end and are scored after 2 * board_size**2 moves (``wrappers.pass_rule``;
        the opponent's moves are not restricted).
    """
    key = _canonical(name)
    settled_passes = game_kwargs.pop("pass_when_settled", False)
    if not isinstance(settled_passes, bool):
        raise ValueError(f"pass_when_settled must be True or False, got {settled_passes!r}.")
    if settled_passes and key != "go":
        raise TypeError(f"pass_when_settled is a Go rule; {key} has no pass.")
    config = _game_config(key, game_kwargs)
    aec_env = _make_aec_env(key, config, render_mode)
    if opponent is None:
        if opponent_kwargs or agent_side is not None:
            raise ValueError(
                "agent_side and opponent_kwargs need an opponent (self-play plays both sides): "
                "pass opponent=... as well, or drop them."
            )
        env = SelfPlayEnv(aec_env)
        env.board_symmetries = board_symmetries(key, env)  # needs the env's spaces
    else:
        opponent = _make_opponent(key, opponent, opponent_kwargs or {})
        side = agent_side or "first"
        env = VersusOpponentEnv(aec_env, opponent, agent_side=side, game=key, game_config=config)
    if settled_passes:
        return PassWhenSettled(env, max_moves=2 * config["board_size"] ** 2)
    return env


def board_symmetries(key: str, env: SelfPlayEnv) -> list[Symmetry]:
    """The rotations and reflections under which ``key``'s rules and observations are unchanged.

    Tic-tac-toe and Go (action ``row * N + col``, pass last): the 8 of the square. Connect four
    (action = column): the mirror. Chess and shogi: none (castling, pawn direction, promotion zones).
    """
    shape = env.observation_space.shape
    n_actions = int(env.action_space.n)
    if key in ("tictactoe", "go"):
        rows, cols = shape[:2]
        return grid_symmetries(
            shape, np.arange(rows * cols).reshape(rows, cols), n_actions, dihedral_transforms()
        )
    if key == "connect_four":
        columns = np.broadcast_to(np.arange(shape[1]), shape[:2])
        return grid_symmetries(shape, columns, n_actions, mirror_transforms())
    return []


def _canonical(name: str) -> str:
    wanted = str(name).lower().replace("-", "").replace("_", "")
    for key in GAMES:
        if key.replace("_", "") == wanted:
            return key
    raise ValueError(f"Unknown board game name {name!r}; known games: {', '.join(sorted(GAMES))}.")


def _game_config(key: str, kwargs: dict) -> dict:
    defaults = GAMES[key].defaults
    if defaults is None:
        return dict(kwargs)
    unknown = set(kwargs) - set(defaults)
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise TypeError(f"{key} takes no argument(s) {sorted(unknown)}; its settings: {allowed}.")
    config = {**defaults, **kwargs}
    if key == "go":
        low, high = GO_SIZES.start, GO_SIZES.stop - 1
        config["board_size"] = integer_in_range("board_size", config["board_size"], low, high, example=9)
        # NaN komi made every game a white win (no score beats NaN); infinities decide every game
        config["komi"] = finite_number("komi", config["komi"], "7.5")
    return config


def _make_aec_env(key: str, config: dict, render_mode: str | None) -> Any:
    module = _import_game(key)
    if GAMES[key].defaults is None:  # the game checks the values; here only the names
        check_keywords(module.raw_env, config, key)
    env = module.env(render_mode=render_mode, **config)
    modes = env.metadata.get("render_modes", [])
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be None or one of {modes} for {key}; got {render_mode!r}.")
    if key == "go":
        from wrappers.go_size_guard import GoBoardSizeGuard

        env = GoBoardSizeGuard(env)
    return env


def _import_game(key: str) -> Any:
    try:
        return importlib.import_module(GAMES[key].module)
    except ImportError as err:
        if key == "shogi" and err.name == GAMES[key].module:
            raise ImportError(
                f"The shogi env ({GAMES[key].module}) is not available in this install."
            ) from err
        raise ImportError(
            f"The {key} game needs optional packages (missing: {err.name}). Install them with {GAMES_EXTRA}."
        ) from err


def _make_opponent(key: str, opponent: Any, kwargs: Any) -> Opponent:
    if not isinstance(kwargs, dict):
        raise TypeError(
            f"opponent_kwargs must be a dict of the named opponent's arguments (e.g. {{'level': 1}}); "
            f"got {kwargs!r}."
        )
    if not isinstance(opponent, str):
        if kwargs:
            raise ValueError(
                "opponent_kwargs only apply to an opponent given by name; configure an opponent "
                f"object ({type(opponent).__name__}) when building it, and drop opponent_kwargs."
            )
        if callable(getattr(opponent, "act", None)):
            return opponent
        if callable(getattr(opponent, "predict", None)):
            return PolicyOpponent(opponent)
        raise TypeError(
            f"opponent must be an Opponent, a model with predict(), or a name; got {type(opponent).__name__}."
        )
    if opponent == "random":
        return build_with_kwargs(RandomOpponent, kwargs, "opponent_kwargs")
    if opponent == "minimax":
        if key != "tictactoe":
            raise ValueError(
                f"The 'minimax' opponent plays tic-tac-toe only, not {key}; use opponent='random' "
                "or an engine name."
            )
        return build_with_kwargs(TicTacToeMinimaxOpponent, kwargs, "opponent_kwargs")
    from wrappers.engines import ENGINES, make_engine

    if opponent not in ENGINES:
        names = ", ".join(["random", "minimax", *sorted(ENGINES)])
        raise ValueError(
            f"Unknown opponent {opponent!r}; known names: {names} (or pass an Opponent object "
            "or a model with predict())."
        )
    if ENGINES[opponent] != key:
        playing_key = [name for name, game in ENGINES.items() if game == key]
        instead = f"opponent={playing_key[0]!r} or 'random'" if playing_key else "opponent='random'"
        raise ValueError(f"{opponent} plays {ENGINES[opponent]}, not {key}; use {instead}.")
    return make_engine(opponent, **kwargs)


GYMNASIUM_IDS = {
    "BoardGame/TicTacToe-v0": {"name": "tictactoe"},
    "BoardGame/ConnectFour-v0": {"name": "connect_four"},
    "BoardGame/Go9x9-v0": {"name": "go", "board_size": 9},
    "BoardGame/Go13x13-v0": {"name": "go", "board_size": 13},
    "BoardGame/Go19x19-v0": {"name": "go", "board_size": 19},
    "BoardGame/Chess-v0": {"name": "chess"},
    "BoardGame/Shogi-v0": {"name": "shogi"},
}


def register_gymnasium_ids() -> None:
    """Register the games as Gymnasium ids, so ``gym.make("BoardGame/Go9x9-v0")`` and SB3's
    string env ids work after ``import wrappers``; ``make_board_game``'s keywords pass through
    (``gym.make("BoardGame/TicTacToe-v0", opponent="random")``)."""
    import gymnasium

    for env_id, kwargs in GYMNASIUM_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point="wrappers.registry:make_board_game", kwargs=kwargs)
