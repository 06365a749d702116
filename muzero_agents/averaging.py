"""An exponential moving average of the network's weights, to play with
(``MuZero(play_kwargs=dict(ema_decay=d))``).

With a constant learning rate the network keeps moving until training stops, so which positions
it misjudges changes from one checkpoint to the next. An average over the last few hundred steps
(Polyak averaging, as many RL codebases keep for evaluation) smooths those swings while
self-play and training keep using the newest weights.

After each gradient step every floating-point tensor of the state (parameters and batch-norm
statistics) moves towards the learner's: ``avg += (1 - d) * (new - avg)``; integer buffers (batch
norm's step counter) are copied.
"""

from __future__ import annotations

import torch
from torch import nn


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
