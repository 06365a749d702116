"""The learning diagnostics: per-step prediction errors, entropies, the search's change of the
prior, hidden-state and target spreads, priorities; computed right and logged by learn()."""

import csv

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import configure

from muzero_agents import MuZero
from muzero_agents.actor import SelfPlayActor, StepRecord
from muzero_agents.diagnostics import masked_step_means, priority_diagnostics
from muzero_agents.losses import muzero_loss
from tests.conftest import sample_batch


def test_masked_step_means_average_the_kept_rows_of_each_step():
    errors = torch.tensor([[1.0, 2.0, 5.0], [3.0, 4.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert masked_step_means(errors, mask) == [2.0, 2.0, None]  # a step with no row: no mean, not 0
    assert priority_diagnostics(np.array([1.0, 3.0])) == {"priority_mean": 2.0, "priority_max": 3.0}
    assert priority_diagnostics(np.array([])) == {}


def _record(policies, legal=None):
    n = len(policies)
    return StepRecord(
        observations=np.zeros((n, 1)), actions=np.zeros(n, np.int64), rewards=np.zeros(n, np.float32),
        root_values=np.ones(n), search_policies=np.asarray(policies, np.float32), dones=np.zeros(n, bool),
        terminated=np.zeros(n, bool), final_observations={}, final_values={}, legal_masks=legal,
        random_moves=np.zeros(n, bool),
    )  # fmt: skip


def test_the_search_statistics_measure_how_far_the_search_moved_the_prior():
    logits = np.log(np.array([[0.5, 0.25, 0.25]]))
    same = SelfPlayActor.statistics(_record([[0.5, 0.25, 0.25]]), logits)
    assert same["policy_kl"] == pytest.approx(0.0, abs=1e-6)
    assert same["prior_entropy"] == pytest.approx(-(0.5 * np.log(0.5) + 0.5 * np.log(0.25)), rel=1e-5)
    moved = SelfPlayActor.statistics(_record([[1.0, 0.0, 0.0]]), logits)
    assert moved["policy_kl"] == pytest.approx(np.log(2.0), rel=1e-5)  # log(1 / 0.5)
    # an illegal action takes no prior mass: the prior over the legal two is uniform
    masked = SelfPlayActor.statistics(
        _record([[0.5, 0.5, 0.0]], np.array([[True, True, False]])), np.zeros((1, 3))
    )
    assert masked["prior_entropy"] == pytest.approx(np.log(2.0)) and masked["policy_kl"] == pytest.approx(
        0.0, abs=1e-6
    )
    assert "policy_kl" not in SelfPlayActor.statistics(_record([[1.0, 0.0, 0.0]]))


def test_the_first_step_value_error_is_the_priorities_mean(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs).learn(64)
    batch = sample_batch(model, 16)
    losses = muzero_loss(model.policy, batch, model.unroll_steps, model.policy.support_size)
    scalars = losses.scalars()
    inside = batch.value_mask[:, 0] > 0
    assert scalars["value_error_k0"] == pytest.approx(
        float((losses.priorities - 1e-6)[inside].mean()), rel=1e-4
    )
    assert {f"reward_error_k{k}" for k in range(1, model.unroll_steps + 1)} <= scalars.keys()
    assert 0.0 < scalars["policy_entropy"] <= np.log(2.0) + 1e-6
    assert scalars["hidden_std_first"] > 0.0 and scalars["value_target_std"] >= 0.0


def test_learn_logs_the_diagnostics(fast_kwargs, tmp_path):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(400, log_interval=1)
    with open(tmp_path / "progress.csv") as file:
        columns = set(next(csv.reader(file)))
    expected = {
        "train/value_error_k0", f"train/value_error_k{model.unroll_steps}", "train/reward_error_k1",
        "train/policy_entropy", "train/hidden_std_first", "train/hidden_std_last", "train/value_target_std",
        "train/priority_mean", "train/priority_max", "search/policy_kl", "search/prior_entropy",
    }  # fmt: skip
    assert expected <= columns
