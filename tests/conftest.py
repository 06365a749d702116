"""Shared test set-up: one torch thread (2 shared cores), small fast MuZero settings."""

import os

import pytest
import torch
from hypothesis import settings as hypothesis_settings

torch.set_num_threads(1)

# Property tests draw new examples on every run; CI (HYPOTHESIS_PROFILE=ci) draws the same ones
# each time, so a landing never depends on the draw. A failure prints the example to reproduce.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

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


def sample_batch(model, batch_size, next_observations=False):
    """A batch of targets from ``model``'s replay, as its gradient step builds one (no Reanalyze)."""
    from muzero_agents.targets import make_batch

    window = model.replay_buffer.sample(batch_size, next_observations=next_observations)
    return make_batch(window, discount=model.discount, td_lambda=model.td_lambda, two_player=model.two_player)
