"""The learner's weights as the actors and Reanalyze workers read them: in Ray's object store.

The learner puts a CPU copy of its network's weights every ``interval`` gradient steps, with
their version (the learner's step count then); a worker fetches them only when the version is
newer than the one it holds. Self-play actors and Reanalyze workers read the same copy. The
copy is put either by the learner's main loop (between two gradient steps) or by the gradient
step itself (before it trains), never by both at once.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from muzero_agents.distributed.cluster import import_ray

WEIGHT_INTERVAL = 4  # gradient steps between two publications


class PublishedWeights:
    """The newest published weights (a Ray object) and their version.

    :param interval: gradient steps between two publications
    """

    def __init__(self, interval: int = WEIGHT_INTERVAL) -> None:
        self.ray = import_ray()
        self.interval = interval
        self._current: tuple[Any, int] = (None, -1)  # replaced whole, so a reader never sees half

    def due(self, step: int) -> bool:
        """Whether the learner at gradient step ``step`` should publish (nothing yet, or
        ``interval`` steps since the last publication)."""
        ref, version = self._current
        return ref is None or step - version >= self.interval

    def publish(self, policy: nn.Module, version: int) -> None:
        """Put a CPU copy of ``policy``'s weights, as ``version`` (call it between gradient steps)."""
        weights = {name: value.detach().to("cpu", copy=True) for name, value in policy.state_dict().items()}
        self._current = (self.ray.put(weights), version)

    def current(self) -> tuple[list[Any], int]:
        """``([the Ray object], version)``: the object inside a list, so that Ray hands the
        reference to a worker without fetching the weights, which it does only when it needs them."""
        ref, version = self._current
        return [ref], version
