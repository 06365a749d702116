"""EfficientZero's consistency loss: augmentation moves the unroll's real observations with the position, the term is masked past episode ends, trains the dynamics (not the
target branch), and the option survives learn, background training, save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from muzero_agents import MuZero
from tests.conftest import sample_batch
from muzero_agents.augment import Symmetries, augment
from muzero_agents.losses import ConsistencyTerm, muzero_loss
from tests.test_symmetries import _one_stone_batch
from wrappers import make_board_game


def test_augment_moves_the_unrolls_observations_with_the_position():
    cells = np.tile(np.arange(9), 20)
    batch = _one_stone_batch(cells)
    later = np.repeat(batch.observations[:, None], 2, axis=1)
    batch = batch._replace(
        next_observations=later, next_observation_mask=np.ones((cells.size, 2), np.float32)
    )
    image = augment(
        batch, Symmetries.stack(make_board_game("tictactoe").board_symmetries), np.random.default_rng(0)
    )
    for k in range(2):
        assert np.array_equal(image.next_observations[:, k], image.observations)
    assert not np.array_equal(image.next_observations, later)  # something did move


def tictactoe_model(**kwargs) -> MuZero:
    settings = dict(
        discount=1.0,
        num_simulations=4,
        batch_size=32,
        learning_starts=64,
        unroll_steps=3,
        seed=0,
    )
    coef = kwargs.pop("consistency_loss_coef", 2.0)
    settings.update(kwargs)
    learner_kwargs = dict(consistency_loss_coef=coef)
    return MuZero("MlpPolicy", make_board_game("tictactoe"), learner_kwargs=learner_kwargs, **settings)


def test_the_head_exists_only_when_the_loss_is_on_and_bad_weights_are_refused():
    assert tictactoe_model(consistency_loss_coef=0.0).policy.consistency_head is None
    assert tictactoe_model().policy.consistency_head is not None
    with pytest.raises(ValueError, match="consistency_loss_coef"):
        tictactoe_model(consistency_loss_coef=-1.0)
    with pytest.raises(ValueError, match=r'consistency_kwargs"\]\["projection_dim"\] must be an int >= 1'):
        tictactoe_model(policy_kwargs=dict(consistency_kwargs=dict(projection_dim=0)))


def test_the_term_is_masked_past_the_end_and_needs_its_inputs():
    model = tictactoe_model(learning_starts=10_000)
    model.learn(100)  # fills the buffer, no training yet
    batch = sample_batch(model, 32, next_observations=True)
    args = (model.policy, batch, model.unroll_steps, model.policy.support_size, 0.25, 1.0)
    with torch.no_grad():
        on = muzero_loss(*args, consistency_loss_coef=2.0)
        off = muzero_loss(*args, consistency_loss_coef=0.0)
        masked_batch = batch._replace(next_observation_mask=np.zeros_like(batch.next_observation_mask))
        masked = muzero_loss(model.policy, masked_batch, *args[2:], consistency_loss_coef=2.0)
    assert -1.0 <= on.consistency <= 1.0 and on.consistency != 0.0
    assert off.consistency is None and masked.consistency == 0.0
    assert abs(float(masked.total) - float(off.total)) < 1e-5
    assert abs(float(on.total) - float(off.total)) > 1e-4
    with pytest.raises(ValueError, match="next_observations=True"):
        muzero_loss(
            model.policy, batch._replace(next_observations=None), *args[2:], consistency_loss_coef=2.0
        )


def test_the_gradient_reaches_the_dynamics_but_not_the_target_branch():
    model = tictactoe_model(learning_starts=10_000)
    model.learn(100)
    policy = model.policy
    policy.set_training_mode(True)
    batch = sample_batch(model, 32, next_observations=True)
    term = ConsistencyTerm.start(policy, batch, 2.0)
    assert not term.targets.requires_grad
    hidden = policy.network.initial_inference(policy.prepare_obs(batch.observations)).hidden
    hidden = policy.network.recurrent_inference(hidden.detach(), torch.as_tensor(batch.actions[:, 0])).hidden
    term.add_step(hidden, 1, 1.0)
    term.loss.sum().backward()
    grads = lambda module: [p.grad for p in module.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads(policy.network.dynamics_state))
    assert all(g is not None for g in grads(policy.consistency_head.predictor))
    assert all(g is None for g in grads(policy.network.representation))  # its branch was detached


def test_training_lowers_the_consistency_loss():
    model = tictactoe_model(learning_starts=10_000, batch_size=64)
    model.learn(300)
    batch = sample_batch(model, 256, next_observations=True)
    args = (model.policy, batch, model.unroll_steps, model.policy.support_size, 0.25, 1.0, 2.0)

    def measured() -> float:
        model.policy.set_training_mode(True)
        with torch.no_grad():
            return muzero_loss(*args).consistency

    before = measured()
    model.train(60, 64)
    assert measured() < before - 0.1
    assert "train/consistency_loss" in model.logger.name_to_value


def test_learn_save_and_load_keep_the_head(tmp_path):
    model = tictactoe_model()
    model.learn(120)
    assert model._n_updates > 0
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model")
    assert loaded.learner_kwargs["consistency_loss_coef"] == 2.0
    for a, b in zip(model.policy.consistency_head.parameters(), loaded.policy.consistency_head.parameters()):
        assert torch.equal(a, b)
    loaded.set_env(make_board_game("tictactoe"))
    loaded.learn(40, reset_num_timesteps=False)  # trains on with the loaded head


def test_background_training_with_the_consistency_loss():
    model = tictactoe_model(background_training=True)
    model.learn(200)
    assert model._n_updates > 0
    assert "train/consistency_loss" in model.logger.name_to_value  # the trainer thread used the term


def test_loading_with_the_other_coefficient_names_the_fix(tmp_path):
    tictactoe_model().save(tmp_path / "with_head")
    tictactoe_model(consistency_loss_coef=0.0).save(tmp_path / "without_head")
    with pytest.raises(ValueError, match="saved with the consistency head"):
        MuZero.load(tmp_path / "with_head", learner_kwargs=dict(consistency_loss_coef=0.0))
    with pytest.raises(ValueError, match="saved without the consistency head"):
        MuZero.load(tmp_path / "without_head", learner_kwargs=dict(consistency_loss_coef=2.0))
    assert MuZero.load(tmp_path / "with_head").policy.consistency_head is not None


def test_a_batch_of_one_is_refused_early():
    with pytest.raises(ValueError, match="batch_size.*consistency_loss_coef"):
        tictactoe_model(batch_size=1)
    assert tictactoe_model(batch_size=1, consistency_loss_coef=0.0).batch_size == 1
