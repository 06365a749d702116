"""EfficientZero's temporal consistency (Ye et al., 2021): a self-supervised loss on the dynamics.

MuZero's dynamics function learns only through the reward, value and policy heads: in a board
game whose one reward is the winning move's, a transition's own latent state gets little signal.
EfficientZero adds a SimSiam-style loss: the hidden state the dynamics predicts for step t+k,
projected and passed through a predictor, should point the same way as the projection of the
representation of the real observation at t+k (computed without gradient). The dynamics then
learns the game's actual transitions, so the search deeper in the tree sees states the
prediction function was trained on.
"""

from __future__ import annotations

import torch
from torch import nn


class ConsistencyHead(nn.Module):
    """SimSiam projector (hidden state -> embedding) and predictor (embedding -> embedding).

    Only the online branch (the dynamics' states) goes through the predictor; the target branch
    (the representation of the real observation) is projected alone and detached.
    """

    def __init__(self, hidden_size: int, projection_dim: int = 256, predictor_dim: int = 128) -> None:
        super().__init__()
        for name, value in (("projection_dim", projection_dim), ("predictor_dim", predictor_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.projector = nn.Sequential(
            nn.Flatten(),
            nn.Linear(hidden_size, projection_dim),
            nn.BatchNorm1d(projection_dim),
            nn.ReLU(),
            nn.Linear(projection_dim, projection_dim),
            nn.BatchNorm1d(projection_dim),
        )
        self.predictor = nn.Sequential(
            nn.Linear(projection_dim, predictor_dim),
            nn.BatchNorm1d(predictor_dim),
            nn.ReLU(),
            nn.Linear(predictor_dim, projection_dim),
        )

    def online(self, hidden: torch.Tensor) -> torch.Tensor:
        """The dynamics branch: projection then prediction."""
        return self.predictor(self.projector(hidden))

    def target(self, hidden: torch.Tensor) -> torch.Tensor:
        """The observation branch: projection only, no gradient (SimSiam's stop-gradient)."""
        with torch.no_grad():
            return self.projector(hidden)


def negative_cosine(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per sample ``-cos(online, target)`` in [-1, 1], in float32: [B, D] x [B, D] -> [B]."""
    online = nn.functional.normalize(online.float(), dim=1)
    target = nn.functional.normalize(target.float(), dim=1)
    return -(online * target).sum(dim=1)
