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


def _loss_and_gradients(model, batch):
    model.policy.optimizer.zero_grad(set_to_none=True)
    losses = muzero_loss(model.policy, batch, model.unroll_steps, model.policy.support_size)
    losses.total.backward()
    return losses, [p.grad.clone() for p in model.policy.parameters() if p.grad is not None]


def test_predicting_all_steps_at_once_equals_one_step_at_a_time(monkeypatch):
    """The MLP's prediction function runs once on the K+1 steps' hidden states: the same loss,
    gradients and priorities as one call per step (the path of networks with batch norm)."""
    import muzero_agents.losses as losses_module

    model = MuZero("MlpPolicy", "CartPole-v1", learning_starts=10_000, seed=0)
    model.learn(200)
    torch.manual_seed(0)
    for p in model.policy.parameters():  # the heads start at zero: give every output something to show
        torch.nn.init.normal_(p, std=0.1)
    batch = sample_batch(model, 32)
    assert losses_module._predicts_steps_together(model.policy.network)
    together, together_grads = _loss_and_gradients(model, batch)
    monkeypatch.setattr(losses_module, "_predicts_steps_together", lambda network: False)
    per_step, per_step_grads = _loss_and_gradients(model, batch)
    torch.testing.assert_close(together.total, per_step.total)
    for name in ("value", "reward", "policy"):
        assert abs(getattr(together, name) - getattr(per_step, name)) < 1e-5
    assert abs(together.priorities - per_step.priorities).max() < 1e-5
    for a, b in zip(together_grads, per_step_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_networks_with_batch_norm_predict_one_step_at_a_time():
    from muzero_agents.losses import _predicts_steps_together
    from muzero_agents.networks import ConvMuZeroNetwork, MlpMuZeroNetwork

    assert _predicts_steps_together(MlpMuZeroNetwork(4, 2, 5))
    assert not _predicts_steps_together(ConvMuZeroNetwork((2, 3, 3), 5, 4, channels=8, num_blocks=1))
