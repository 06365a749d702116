"""The loss weights act on their own terms only."""

import torch

from muzero_agents import MuZero
from muzero_agents.losses import muzero_loss


def test_reward_loss_coef_scales_the_reward_term_only():
    model = MuZero("MlpPolicy", "CartPole-v1", learning_starts=10_000, seed=0)
    model.learn(64)  # fills the buffer, no training yet
    batch = model.replay_buffer.sample(16)
    args = (model.policy, batch, model.unroll_steps, model.support_size, model.value_loss_coef)
    with torch.no_grad():
        totals = [float(muzero_loss(*args, reward_loss_coef=c).total) for c in (0.0, 1.0, 3.0)]
        reward = muzero_loss(*args).reward
    assert reward > 0
    assert (batch.weights == 1).all()  # a fresh buffer: every importance weight is 1
    assert abs((totals[1] - totals[0]) - reward) < 1e-4
    assert abs((totals[2] - totals[0]) - 3.0 * reward) < 1e-4
    assert totals[1] > totals[0]


def test_train_passes_the_loss_weights(monkeypatch):
    import muzero_agents.algorithm as algorithm

    seen = []
    real = algorithm.muzero_loss

    def recording(*args, **kwargs):
        seen.append(args[4:] + tuple(kwargs.values()))
        return real(*args, **kwargs)

    monkeypatch.setattr(algorithm, "muzero_loss", recording)
    model = MuZero(
        "MlpPolicy", "CartPole-v1", learning_starts=32, value_loss_coef=0.5, reward_loss_coef=7.0, seed=0
    )
    model.learn(40)
    assert seen and all(weights == (0.5, 7.0) for weights in seen)
