"""Keep PettingZoo Go's module-level board size equal to each env's own.

PettingZoo's Go stores the board size in module globals (``go_base.N`` and friends), so
building a second Go env of another size breaks the first (numpy shape errors on its next
move). The guard restores its env's size before each call that touches the board: an integer
compare when only one size is in use.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.classic.go import go_base
from pettingzoo.utils.wrappers import BaseWrapper


class GoBoardSizeGuard(BaseWrapper):
    """AEC wrapper around a PettingZoo Go env that re-asserts its board size before use."""

    def __init__(self, env: Any):
        super().__init__(env)
        self.board_size = int(env.unwrapped._N)

    def _restore(self) -> None:
        if go_base.N != self.board_size:
            self.env.unwrapped._overwrite_go_global_variables(self.board_size)

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        self._restore()
        super().reset(seed=seed, options=options)

    def step(self, action: Any) -> None:
        self._restore()
        super().step(action)

    def observe(self, agent: str) -> Any:
        self._restore()
        return super().observe(agent)

    def render(self) -> Any:
        self._restore()
        return super().render()
