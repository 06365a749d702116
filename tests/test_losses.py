"""The loss weights act on their own terms only."""

import torch

from muzero_agents import MuZero
from tests.conftest import sample_batch
from muzero_agents.losses import muzero_loss


def test_reward_loss_coef_scales_the_reward_term_only():
    model = MuZero("MlpPolicy", "CartPole-v1", learning_starts=10_000, seed=0)
    model.learn(64)  # fills the buffer, no training yet
    batch = sample_batch(model, 16)
    args = (model.policy, batch, model.unroll_steps, model.policy.support_size, model.value_loss_coef)
    with torch.no_grad():
        totals = [float(muzero_loss(*args, reward_loss_coef=c).total) for c in (0.0, 1.0, 3.0)]
        reward = muzero_loss(*args).reward
    assert reward > 0
    assert (batch.weights == 1).all()  # a fresh buffer: every importance weight is 1
    assert abs((totals[1] - totals[0]) - reward) < 1e-4
    assert abs((totals[2] - totals[0]) - 3.0 * reward) < 1e-4
    assert totals[1] > totals[0]


def test_train_passes_the_loss_weights(monkeypatch):
    import muzero_agents.learner as algorithm

    seen = []
    real = algorithm.muzero_loss

    def recording(*args, **kwargs):
        seen.append(args[4:] + tuple(kwargs.values()))
        return real(*args, **kwargs)

    monkeypatch.setattr(algorithm, "muzero_loss", recording)
    model = MuZero(
        "MlpPolicy",
        "CartPole-v1",
        learning_starts=32,
        value_loss_coef=0.5,
        seed=0,
        learner_kwargs=dict(reward_loss_coef=7.0),
    )
    model.learn(40)
    assert seen and all(weights == (0.5, 7.0, 0.0) for weights in seen)  # consistency off by default


def test_mixed_precision_trains_the_network_in_bfloat16(monkeypatch):
    """mixed_precision runs the training network under bfloat16 autocast; the weights stay float32."""
    import muzero_agents.learner as algorithm

    dtypes = []
    real = algorithm.muzero_loss

    def recording(policy, *args, **kwargs):
        out = policy.network.initial_inference(torch.zeros(2, 4))
        dtypes.append(out.value_logits.dtype)
        return real(policy, *args, **kwargs)

    monkeypatch.setattr(algorithm, "muzero_loss", recording)
    for enabled in (False, True):
        model = MuZero(
            "MlpPolicy",
            "CartPole-v1",
            learning_starts=32,
            seed=0,
            learner_kwargs=dict(mixed_precision=enabled),
        )
        before = [p.detach().clone() for p in model.policy.parameters()]
        model.learn(40)
        assert all(p.dtype == torch.float32 for p in model.policy.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
        assert all(torch.isfinite(p).all() for p in model.policy.parameters())
        assert dtypes[-1] == (torch.bfloat16 if enabled else torch.float32)
