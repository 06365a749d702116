"""Game engines as opponents: GNU Go (GTP), Stockfish (UCI), GNU Shogi (xshogi line protocol).

Engines are found on PATH or in /usr/games (Debian's games directory); a missing one raises
``EngineNotFoundError`` naming the package: ``apt-get install gnugo stockfish gnushogi``.
"""

from wrappers.checks import build_with_kwargs
from wrappers.engines.base import EngineError, EngineNotFoundError, EngineOpponent, find_engine
from wrappers.engines.gtp import GnuGoOpponent

ENGINES = {"gnugo": "go", "stockfish": "chess", "gnushogi": "shogi"}
"""Engine name -> the game it plays."""


def make_engine(name: str, **kwargs) -> EngineOpponent:
    """Build an engine opponent by name (``"gnugo"``, ``"stockfish"``, ``"gnushogi"``)."""
    if name == "gnugo":
        return build_with_kwargs(GnuGoOpponent, kwargs, "opponent_kwargs")
    if name == "stockfish":
        from wrappers.engines.uci import StockfishOpponent  # needs the `chess` package

        return build_with_kwargs(StockfishOpponent, kwargs, "opponent_kwargs")
    if name == "gnushogi":
        from wrappers.engines.xshogi import GnuShogiOpponent

        return build_with_kwargs(GnuShogiOpponent, kwargs, "opponent_kwargs")
    raise ValueError(f"Unknown engine {name!r}; known engines: {', '.join(sorted(ENGINES))}.")


def __getattr__(name: str):
    """Import the chess and shogi adapters on first use (they need the `chess` and shogi env)."""
    if name == "StockfishOpponent":
        from wrappers.engines.uci import StockfishOpponent

        return StockfishOpponent
    if name == "GnuShogiOpponent":
        from wrappers.engines.xshogi import GnuShogiOpponent

        return GnuShogiOpponent
    raise AttributeError(f"module 'wrappers.engines' has no attribute {name!r}")


__all__ = [
    "ENGINES",
    "EngineError",
    "EngineNotFoundError",
    "EngineOpponent",
    "GnuGoOpponent",
    "GnuShogiOpponent",
    "StockfishOpponent",
    "find_engine",
    "make_engine",
]
