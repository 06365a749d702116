"""A game engine as a subprocess speaking a line protocol, and the opponent built on one.

The process starts on first use, every answer is awaited with a time limit, and ``close()``,
``with`` or garbage collection shut it down. A missing binary is reported when the opponent is
built, naming the Debian package that provides it.

Failures: when the engine dies, gives no answer within ``time_limit``, answers something that is
not a move, or plays a move the game's mask forbids, ``act`` stops the process, starts a fresh
one (which is told the whole game again) and asks the same position once more. If that fails
too, the process is stopped and ``EngineError`` is raised; the versus env then ends the episode
as truncated (see ``VersusOpponentEnv``). So a failing engine costs at most two time limits per
move, and an engine whose board may have drifted from the game's is never asked again.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

import numpy as np

from wrappers.checks import positive_seconds
from wrappers.opponents import GameState

SEARCH_DIRS = ("/usr/games", "/usr/local/games")  # Debian's games are not on root's PATH


class EngineError(RuntimeError):
    """The engine misbehaved: it died, timed out, refused a move or played an illegal one."""


class EngineNotFoundError(FileNotFoundError):
    """The engine's binary is not installed."""


def find_engine(binary: str, package: str) -> str:
    """Path to ``binary`` on PATH or in Debian's games directories, or a clear error."""
    if os.path.sep in binary and os.access(binary, os.X_OK):
        return binary
    found = shutil.which(binary) or shutil.which(binary, path=os.pathsep.join(SEARCH_DIRS))
    if found is None:
        raise EngineNotFoundError(
            f"{binary} was not found on PATH nor in {', '.join(SEARCH_DIRS)}. "
            f"Install it with `apt-get install {package}` (Debian/Ubuntu) or pass binary=<path>."
        )
    return found


class EngineProcess:
    """A subprocess with line-based stdin/stdout; reads wait at most ``timeout`` seconds."""

    def __init__(self, argv: list[str], name: str):
        self.argv = argv
        self.name = name
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        self.close()
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._lines = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True).start()

    def send(self, line: str) -> None:
        if not self.alive:
            raise EngineError(f"{self.name} is not running (it exited with code {self._exit_code()}).")
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise EngineError(f"{self.name} closed its input: {err}") from err

    def read_until(self, done: Callable[[str], bool], timeout: float) -> list[str]:
        """Lines up to and including the first for which ``done(line)`` is true."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                self.close(wait=0.0)
                raise EngineError(
                    f"{self.name} gave no answer within {timeout:.1f} s (last lines: {lines[-3:]}); it was "
                    "stopped. If it needs longer, raise the opponent's time_limit."
                ) from None
            if line is None:
                raise EngineError(f"{self.name} exited (code {self._exit_code()}) after: {lines[-5:]}")
            lines.append(line)
            if done(line):
                return lines

    def drain(self) -> list[str]:
        """Lines already received and not yet read."""
        lines = []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return lines
            if line is not None:
                lines.append(line)

    def close(self, quit_command: str | None = None, wait: float = 1.0) -> None:
        """Ask the process to quit, give it ``wait`` seconds, then kill it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if quit_command and proc.poll() is None:
                proc.stdin.write(quit_command + "\n")
                proc.stdin.flush()
            proc.stdin.close()
            proc.wait(timeout=wait)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def _exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()


def _pump(stream, lines: queue.Queue) -> None:
    """Reader thread: move the engine's output lines into a queue; None marks the end."""
    try:
        for line in stream:
            lines.put(line.rstrip("\r\n"))
    except (OSError, ValueError):
        pass
    lines.put(None)


class EngineOpponent:
    """Base of engine opponents: lazy start, restart after death, clean shutdown, mask checks.

    Subclasses set ``name``, ``package``, ``game`` and ``quit_command`` and implement
    ``_handshake()`` (after each start) and ``_choose(mask, state) -> int``.
    """

    name = "engine"
    package = "engine"
    game = ""
    quit_command = "quit"

    def __init__(self, binary: str, args: list[str], time_limit: float):
        self.time_limit = positive_seconds("time_limit", time_limit)
        if not isinstance(binary, str) or not binary:
            raise TypeError(f"binary must be the engine's executable name or path; got {binary!r}.")
        self.binary = find_engine(binary, self.package)
        self.process = EngineProcess([self.binary, *args], self.name)

    def act(self, observation: np.ndarray, action_mask: np.ndarray, game_state: GameState) -> int:
        """The engine's move in ``game_state``; after a failure, one more try with a fresh process."""
        if game_state.game not in (None, self.game):
            raise ValueError(f"{self.name} plays {self.game}, not {game_state.game}.")
        mask = np.asarray(action_mask).astype(bool)
        try:
            return self._ask(mask, game_state)
        except EngineError as first:
            self.process.close(wait=0.0)  # its board may differ from the game's: start afresh
            try:
                return self._ask(mask, game_state)
            except EngineError as second:
                self.process.close(wait=0.0)
                before = "the same way" if str(first) == str(second) else f"with: {first}"
                raise EngineError(
                    f"{second} That was after a restart; before it, it had failed on this position {before}."
                ) from second

    def _ask(self, mask: np.ndarray, game_state: GameState) -> int:
        self._ensure_started()
        action = self._choose(mask, game_state)
        if action >= 0 and not (action < len(mask) and mask[action]):
            raise EngineError(
                f"{self.name} chose action {action}, which the game's mask forbids "
                f"(after moves {game_state.history[-6:]}); engine and game rules disagree."
            )
        return action

    def close(self) -> None:
        """Stop the engine (it restarts on the next move if used again)."""
        self.process.close(self.quit_command)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown may have torn down anything
            self.close()

    def _ensure_started(self) -> None:
        if not self.process.alive:
            self.process.start()
            self._handshake()

    def _handshake(self) -> None:
        raise NotImplementedError

    def _choose(self, mask: np.ndarray, state: GameState) -> int:
        raise NotImplementedError
