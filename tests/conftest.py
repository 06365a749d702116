"""Shared test set-up: one torch thread (2 shared cores), small fast MuZero settings."""

import pytest
import torch

torch.set_num_threads(1)

# Small, fast settings: enough to exercise every code path in seconds, not to learn.
FAST_MUZERO = dict(
    num_simulations=4,
    batch_size=16,
    learning_starts=32,
    unroll_steps=3,
    td_steps=5,
    buffer_size=2_000,
    replay_ratio=0.25,
    policy_kwargs=dict(network_kwargs=dict(hidden_dim=16, net_arch=[32, 32])),
)


@pytest.fixture
def fast_kwargs():
    return {
        **FAST_MUZERO,
        "policy_kwargs": {"network_kwargs": dict(FAST_MUZERO["policy_kwargs"]["network_kwargs"])},
    }
