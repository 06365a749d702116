"""VersusOpponentEnv and the opponents: sides, rewards, forfeits, SB3 models as players."""

import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("pettingzoo.classic")
from gymnasium.utils.env_checker import check_env

from wrappers import (
    RESIGN,
    PolicyOpponent,
    RandomOpponent,
    TicTacToeMinimaxOpponent,
    VersusOpponentEnv,
    make_board_game,
)

torch.set_num_threads(1)


def _random_episode(env, rng, seed=None):
    _, info = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, info = env.step(rng.choice(np.flatnonzero(env.action_masks())))
        total += reward
        done = terminated or truncated
    return total, info


def test_versus_env_passes_check_env_and_is_single_agent():
    env = make_board_game("tictactoe", "random", agent_side="alternate")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
    assert env.is_two_player_zero_sum is False


def test_random_games_end_with_outcomes_from_the_agents_view():
    env = make_board_game("connect_four", "random", opponent_kwargs={"seed": 0})
    rng = np.random.default_rng(0)
    outcomes = [_random_episode(env, rng)[0] for _ in range(20)]
    assert set(outcomes) <= {-1.0, 0.0, 1.0}
    assert len(set(outcomes)) >= 2  # random play both wins and loses


def test_agent_is_always_to_move_and_sides_alternate():
    env = make_board_game("tictactoe", "random", agent_side="alternate")
    sides = []
    for episode in range(4):
        obs, info = env.reset(seed=episode)
        sides.append(info["agent_player"])
        assert env.game_env.to_play == info["agent_player"]
        # the opponent already moved when the agent is second: one of its marks is on the board
        assert obs[..., 1].sum() == info["agent_player"]
    assert sides == [0, 1, 0, 1]
    env.reset(seed=0)
    _, info = env.reset()  # unseeded resets keep alternating
    assert info["agent_player"] == 1
    _, info = env.reset(options={"agent_side": "second"})
    assert info["agent_player"] == 1


def test_minimax_never_loses_and_beats_random_mostly():
    rng = np.random.default_rng(1)
    wins = 0
    for side in ("first", "second"):
        env = make_board_game("tictactoe", "minimax", agent_side=side, opponent_kwargs={"seed": 0})
        for _ in range(30):
            outcome, _ = _random_episode(env, rng)  # the agent is random, the opponent perfect
            assert outcome <= 0.0
            wins += outcome < 0
    assert wins >= 35


def test_minimax_finds_the_winning_and_the_blocking_move():
    obs = np.zeros((3, 3, 2), np.int8)
    obs[0, 0, 0] = obs[0, 1, 0] = 1  # the mover has squares 0 and 1: playing 2 wins
    obs[1, 0, 1] = obs[1, 1, 1] = 1  # the opponent threatens 5
    assert TicTacToeMinimaxOpponent.best_actions(obs) == [2]
    obs[0, 1, 0] = 0
    obs[2, 2, 0] = 1  # no win for the mover now: it must block 5
    assert TicTacToeMinimaxOpponent.best_actions(obs) == [5]


class _Fixed:
    """An opponent that always plays one action (maybe illegal) or resigns."""

    def __init__(self, action):
        self.action = action

    def act(self, observation, action_mask, game_state):
        self.last_state = game_state
        return self.action


def test_opponent_illegal_move_or_resignation_is_a_win_for_the_agent():
    env = VersusOpponentEnv(make_board_game("tictactoe").aec_env, _Fixed(0), agent_side="first")
    env.reset()
    _, reward, terminated, _, info = env.step(0)  # the opponent then plays 0 again: illegal
    assert (reward, terminated, info["opponent_illegal_action"]) == (1.0, True, True)
    env = VersusOpponentEnv(make_board_game("tictactoe").aec_env, _Fixed(RESIGN))
    env.reset()
    _, reward, terminated, _, info = env.step(4)
    assert (reward, terminated, info["opponent_resigned"]) == (1.0, True, True)


def test_agent_illegal_move_loses_and_history_reaches_the_opponent():
    opponent = _Fixed(8)
    env = VersusOpponentEnv(make_board_game("tictactoe").aec_env, opponent, game="tictactoe")
    env.reset()
    env.step(4)
    assert opponent.last_state.history == [4] and opponent.last_state.game == "tictactoe"
    assert env.history == [4, 8]
    _, reward, terminated, _, info = env.step(8)
    assert (reward, terminated, info["illegal_action"]) == (-1.0, True, True)


class _Model:
    """Stands in for an SB3 model: records what predict received."""

    def __init__(self, with_masks):
        self.seen = []
        if with_masks:
            self.predict = self._predict_masked
        else:
            self.predict = self._predict

    def _predict_masked(self, obs, state=None, episode_start=None, deterministic=False, action_masks=None):
        self.seen.append(action_masks)
        return np.array(int(np.flatnonzero(action_masks)[-1])), None

    def _predict(self, obs, state=None, episode_start=None, deterministic=False):
        self.seen.append(None)
        return np.array(0), None


def test_policy_opponent_passes_masks_when_predict_takes_them():
    masked = _Model(with_masks=True)
    env = make_board_game("tictactoe", masked)  # a model with predict is wrapped automatically
    assert isinstance(env.opponent, PolicyOpponent)
    env.reset()
    env.step(0)
    assert masked.seen[-1].dtype == bool and masked.seen[-1].tolist() == [False] + [True] * 8
    assert env.history == [0, 8]
    plain = _Model(with_masks=False)
    env = make_board_game("tictactoe", plain)
    env.reset()
    _, reward, _, _, info = env.step(0)  # the unmasked model answers 0, an occupied square
    assert plain.seen == [None] and reward == 1.0 and info["opponent_illegal_action"]


def test_random_opponent_is_reproducible_with_seed():
    a, b = RandomOpponent(seed=3), RandomOpponent(seed=3)
    mask = np.ones(50, bool)
    assert [a.act(None, mask, None) for _ in range(5)] == [b.act(None, mask, None) for _ in range(5)]


def test_maskable_ppo_trains_a_few_hundred_steps_on_the_versus_env():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(make_board_game("tictactoe", "random", agent_side="alternate"))
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    rewards, _ = evaluate_policy(model, env, n_eval_episodes=10, return_episode_rewards=True)
    assert len(rewards) == 10 and all(r in (-1.0, 0.0, 1.0) for r in rewards)
    mirror = make_board_game("tictactoe", model, agent_side="second")  # the model as opponent
    outcome, info = _random_episode(mirror, np.random.default_rng(0))
    assert isinstance(mirror.opponent, PolicyOpponent) and outcome in (-1.0, 0.0, 1.0)
    assert "opponent_illegal_action" not in info  # masks reached the model's predict


class _Scripted:
    """Plays its moves in order; raises ``error`` instead once they run out, if given."""

    def __init__(self, moves, error=None):
        self.moves, self.error = list(moves), error

    def act(self, observation, action_mask, game_state):
        if not self.moves and self.error is not None:
            raise self.error
        return self.moves.pop(0)


def test_the_last_observation_is_the_learners_view_when_its_own_move_ends_the_game():
    env = VersusOpponentEnv(make_board_game("tictactoe"), _Scripted([3, 4]), agent_side="first")
    env.reset(seed=0)
    for action in (0, 1):
        env.step(action)
    observation, reward, terminated, _, _ = env.step(2)  # the learner completes 0-1-2
    assert terminated and reward == 1.0
    learner_marks = np.flatnonzero(observation[:, :, 0].ravel())  # plane 0: the viewer's marks
    assert sorted(learner_marks) == [0, 1, 2]


def test_the_last_observation_is_the_learners_view_when_the_engine_fails():
    from wrappers.engines.base import EngineError

    env = VersusOpponentEnv(
        make_board_game("tictactoe"), _Scripted([], EngineError("died")), agent_side="first"
    )
    env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step(4)
    assert truncated and not terminated and reward == 0.0 and "engine_error" in info
    assert observation[:, :, 0].sum() == 1 and observation[:, :, 1].sum() == 0  # the learner's mark, its view


def test_reset_options_other_than_the_side_reach_the_game():
    env = make_board_game("tictactoe", "random", agent_side="first")
    seen = []
    game_reset = env.game_env.reset
    env.game_env.reset = lambda seed=None, options=None: (seen.append(options), game_reset(seed=seed))[1]
    env.reset(seed=0, options={"agent_side": "second", "custom": 1})
    env.reset(seed=0)
    assert seen == [{"custom": 1}, None] and env.agent_player == 0
