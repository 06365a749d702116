"""SelfPlayEnv: Gymnasium/SB3 compliance, masks, mover-perspective rewards, illegal moves."""

import importlib.util
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("pettingzoo.classic")
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

from wrappers import SelfPlayEnv, make_board_game

torch.set_num_threads(1)

GAMES = [
    ("tictactoe", {}),
    ("connect_four", {}),
    ("go", {"board_size": 9}),
    ("chess", {}),
    ("shogi", {}),
]


def _skip_missing_shogi(name: str) -> None:
    if name == "shogi" and importlib.util.find_spec("wrappers.envs.shogi_v0") is None:
        pytest.skip("wrappers/envs/shogi_v0.py is not there yet")


@pytest.mark.parametrize("name,kwargs", GAMES)
def test_every_game_passes_gymnasium_and_sb3_env_checkers(name, kwargs):
    _skip_missing_shogi(name)
    env = make_board_game(name, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3 warns that int8/bool boards are not uint8 images
        check_env(env, skip_render_check=True)
        sb3_check_env(env)
    assert env.is_two_player_zero_sum and env.num_players == 2


@pytest.mark.parametrize("name,kwargs", GAMES)
def test_masks_observations_and_to_play_match_pettingzoo(name, kwargs):
    """Drive our env and the bare PettingZoo env with the same random legal moves."""
    _skip_missing_shogi(name)
    env = make_board_game(name, **kwargs)
    raw = env.aec_env  # the PettingZoo env it wraps; compare through its own API
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    boards_seen = set()
    for _ in range(40):
        boards_seen.add(np.asarray(obs).tobytes())
        agent = raw.agent_selection
        expected = raw.observe(agent)
        assert np.array_equal(env.action_masks(), expected["action_mask"].astype(bool))
        assert np.array_equal(obs, expected["observation"])
        assert info["to_play"] == raw.possible_agents.index(agent)
        assert np.array_equal(info["action_mask"], env.action_masks())
        obs, _, terminated, truncated, info = env.step(rng.choice(np.flatnonzero(env.action_masks())))
        if terminated or truncated:
            obs, info = env.reset()
    assert len(boards_seen) > 10  # the games moved on


def _play(env, actions):
    out = []
    env.reset(seed=0)
    for a in actions:
        mover = env.to_play
        _, reward, terminated, _, _ = env.step(a)
        out.append((mover, reward, terminated))
    return out


def test_tictactoe_rewards_are_the_movers():
    env = make_board_game("tictactoe")
    # squares 0,1,2 are a line; player 0 plays 0,1,2 while player 1 plays 3,4
    steps = _play(env, [0, 3, 1, 4, 2])
    assert [m for m, _, _ in steps] == [0, 1, 0, 1, 0]
    assert [r for _, r, _ in steps] == [0, 0, 0, 0, 1.0]
    assert steps[-1][2] is True
    # now the second player completes 3,4,5 and gets +1 as the mover
    steps = _play(env, [0, 3, 1, 4, 8, 5])
    assert steps[-1] == (1, 1.0, True)
    assert env.reward_of(0) == -1.0 and env.reward_of(1) == 1.0


def test_illegal_action_ends_game_and_mover_loses():
    env = make_board_game("tictactoe")
    env.reset(seed=0)
    env.step(4)
    mover = env.to_play
    _, reward, terminated, truncated, info = env.step(4)  # occupied square
    assert (reward, terminated, truncated) == (-1.0, True, False)
    assert info["illegal_action"] is True
    assert env.reward_of(1 - mover) == 1.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset()
    _, reward, terminated, _, info = env.step(99)  # out of range: also illegal, no crash
    assert reward == -1.0 and terminated and info["illegal_action"]


def test_vec_env_exposes_two_player_flag_and_masks():
    vec = make_vec_env(make_board_game, n_envs=2, env_kwargs={"name": "connect_four"})
    vec.reset()
    assert vec.get_attr("is_two_player_zero_sum") == [True, True]
    masks = np.stack(vec.env_method("action_masks"))
    assert masks.shape == (2, 7) and masks.all()


class _Game:
    """A tiny AEC game: two players take turns; the second move ends it, paying the winner only."""

    def __init__(self, with_mask=True):
        from gymnasium import spaces

        self.possible_agents = ["a", "b"]
        self.with_mask = with_mask
        self._obs_space = spaces.Box(0, 1, (2,), np.float32)
        self.rewards = {}

    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        from gymnasium import spaces

        return spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.agent_selection = "a"
        self.moves = 0
        self.rewards = {"a": 0.0, "b": 0.0}
        self.terminations = {"a": False, "b": False}
        self.truncations = {"a": False, "b": False}
        self._infos()

    def _infos(self):
        mask = np.array([1, 1, 0], np.int8)
        self.infos = {a: ({"action_mask": mask} if self.with_mask else {}) for a in self.agents}

    def observe(self, agent):
        return np.array([self.moves, 0], np.float32)

    def step(self, action):
        self.moves += 1
        self.rewards = {"a": 0.0, "b": 0.0}
        if self.moves == 2:  # the game pays only the winner: "a" if the last action was 0
            self.rewards["a" if action == 0 else "b"] = 1.0
            self.terminations = {"a": True, "b": True}
        self.agent_selection = "b" if self.agent_selection == "a" else "a"

    def render(self):
        return None

    def close(self):
        pass


def test_mask_in_info_and_winner_only_rewards_become_mover_perspective():
    env = SelfPlayEnv(_Game())
    _, info = env.reset(seed=1)
    assert info["action_mask"].tolist() == [True, True, False]
    env.step(1)
    _, reward, terminated, _, _ = env.step(0)  # "b" moves, "a" is paid: the mover lost
    assert terminated and reward == -1.0
    env.reset()
    env.step(1)
    _, reward, _, _, _ = env.step(1)  # "b" is paid: the mover won
    assert reward == 1.0


def test_missing_mask_is_a_clear_error():
    with pytest.raises(ValueError, match="action_mask"):
        SelfPlayEnv(_Game(with_mask=False))
    with pytest.raises(TypeError, match="PettingZoo AEC env"):
        SelfPlayEnv(object())


def test_openspiel_env_through_shimmy_works_with_mask_in_info():
    shimmy = pytest.importorskip("shimmy")
    pytest.importorskip("pyspiel")
    env = SelfPlayEnv(shimmy.OpenSpielCompatibilityV0(game_name="tic_tac_toe"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
    env.reset(seed=0)
    steps = _play(env, [0, 3, 1, 4, 2])  # OpenSpiel's cells are row-major too: 0,1,2 is a row
    assert steps[-1] == (0, 1.0, True)
