"""An exponential moving average of the network's weights, to play with (``MuZero(ema_decay=d)``).

With a constant learning rate the network keeps moving until training stops, and on tic-tac-toe
which positions it misjudges changed from one checkpoint to the next (45 s apart: 0, 11, 38, 24
... games lost to a perfect player, benchmarks/results/boardgames/tictactoe-play-simulations-*),
so whether the final weights had a hole was a draw. An average over the last few hundred steps
(Polyak averaging; timm's ModelEma and many RL codebases keep one for evaluation) smooths those
swings while self-play and training keep using the newest weights.

After each gradient step every floating-point tensor of the state (parameters and batch-norm
statistics) moves towards the learner's: ``avg += (1 - d) * (new - avg)``; integer buffers (batch
norm's step counter) are copied.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn


def check_ema_decay(decay: object) -> None:
    """Raise ValueError naming the fix unless ``decay`` is None or a float in (0, 1)."""
    if decay is None:
        return
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0.0 < float(decay) < 1.0:
        raise ValueError(
            f"ema_decay must be None or a number in (0, 1), got {decay!r}: e.g. 0.995 averages over "
            "roughly the last 200 gradient steps; None plays with the newest weights."
        )


@torch.no_grad()
def update_average(average: nn.Module, current: nn.Module, decay: float) -> None:
    """Move ``average``'s state one step towards ``current``'s (same layout)."""
    current_state = current.state_dict()
    for name, tensor in average.state_dict().items():
        new = current_state[name]
        if tensor.is_floating_point():
            tensor.lerp_(new.detach(), 1.0 - decay)
        else:
            tensor.copy_(new)
