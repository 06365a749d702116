"""The minatar suite: MuZero, DQN and PPO build, learn and are evaluated on each MinAtar game."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from gymnasium import spaces

from benchmarks.harness import tasks
from benchmarks.harness.minatar_cnn import MinAtarCNN
from benchmarks.harness.runner import Job, run_job
from benchmarks.harness.suites import MINATAR_MAX_EPISODE_STEPS, get_suite
from benchmarks.harness.tasks import algo_config
from benchmarks.harness.zoo import merge_settings

SUITE = get_suite("minatar")
CASES = [(task, algo) for task in SUITE.tasks for algo in SUITE.algos]
# fast settings on top of the suite's, so every algorithm takes gradient steps within 128 env steps
FAST = {
    "muzero": {"num_simulations": 2, "batch_size": 8, "learning_starts": 16, "replay_ratio": 0.1},
    "dqn": {"learning_starts": 16},
    "ppo": {"n_steps": 8, "batch_size": 32, "n_epochs": 1},
}


def _tiny(task):
    """The task cut to 128 env steps, one evaluation of 2 episodes of at most 30 steps."""
    overrides = {algo: merge_settings(task.overrides.get(algo, {}), FAST[algo]) for algo in SUITE.algos}
    small = task.sliced(max_steps=128, eval_episodes=2)
    return replace(small, overrides=overrides, game_kwargs={"max_episode_steps": 30})


def test_dqn_and_ppo_take_the_zoos_atari_entry_with_the_documented_departures():
    task = SUITE.tasks[0]
    for algo in ("dqn", "ppo"):
        config = algo_config(algo, task)
        assert "[atari]" in config.source and "task overrides" in config.source
        assert config.frame_stack is None and config.policy == "CnnPolicy"
        assert config.kwargs["policy_kwargs"]["features_extractor_class"] is MinAtarCNN
    assert algo_config("dqn", task).kwargs["learning_starts"] == 1_000
    assert algo_config("ppo", task).n_envs == 8 and algo_config("ppo", task).kwargs["n_steps"] == 128
    muzero = algo_config("muzero", task)
    assert muzero.source == "muzero.yml [MinAtar/Breakout-v1]" and muzero.n_envs == 8


def test_every_game_has_reference_scores_and_a_step_cap():
    for task in SUITE.tasks:
        (evaluation,) = task.evaluations
        assert 0 < evaluation.low < evaluation.threshold == evaluation.high / 2
        assert task.game_kwargs == {"max_episode_steps": MINATAR_MAX_EPISODE_STEPS}


def test_minatar_cnn_reads_ten_by_ten_grids():
    space = spaces.Box(0, 1, (4, 10, 10), np.uint8)
    extractor = MinAtarCNN(space)
    features = extractor(torch.ones(3, 4, 10, 10))
    assert features.shape == (3, 128) and extractor.features_dim == 128
    with pytest.raises(ValueError, match="channel-first"):
        MinAtarCNN(spaces.Box(0, 1, (100,), np.uint8))
    with pytest.raises(ValueError, match="at least 3x3"):
        MinAtarCNN(spaces.Box(0, 1, (4, 2, 2), np.uint8))


@pytest.mark.parametrize("task, algo", CASES, ids=[f"{t.env_id.split('/')[1]}-{a}" for t, a in CASES])
def test_each_algorithm_learns_and_is_evaluated(task, algo, monkeypatch):
    pytest.importorskip("minatar")
    built = []
    build_run = tasks.build_run

    def keep(*args, **kwargs):
        built.append(build_run(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(tasks, "build_run", keep)  # run_job's own build, kept to look at its model
    record = run_job(Job(algo, _tiny(task), seed=0), progress=False)
    (run,) = built
    assert run.model.observation_space.shape[1:] == (10, 10)
    assert run.model._n_updates > 0, f"{algo} took no gradient step"
    assert record["env_steps"] >= 128
    final = record["rows"][-1]
    assert final["env"] == task.env_id and final["env_steps"] == record["env_steps"]
    assert np.isfinite(final["eval_mean"])
