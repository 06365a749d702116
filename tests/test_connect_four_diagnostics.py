"""The connect-four diagnostics: one-move tactics found from the bitboard, and the tallies."""

import numpy as np

from benchmarks.diagnostics.connect_four_diagnostics import hit_rate, random_play_positions, tactics
from benchmarks.diagnostics.model_rewards import one_step_rewards, reward_table
from wrappers import make_board_game


def _position(moves: list[int]) -> tuple[np.ndarray, np.ndarray]:
    env = make_board_game("connect_four")
    obs, _ = env.reset(seed=0)
    for move in moves:
        obs, *_ = env.step(move)
    return obs, env.action_masks()


def test_tactics_finds_the_movers_win_and_the_opponents_threat():
    obs, _ = _position([0, 1, 0, 1, 0, 1])  # first player to move, three up in column 0; second in 1
    own, threats = tactics(obs[None])
    assert own == [[0]] and threats == [[1]]
    obs, _ = _position([0, 1, 0, 1, 0])  # second player to move: it can only block column 0
    own, threats = tactics(obs[None])
    assert own == [[]] and threats == [[0]]


def test_random_play_positions_are_legal_and_seeded():
    obs, masks = random_play_positions(games=3, seed=5)
    again, _ = random_play_positions(games=3, seed=5)
    assert obs.shape[1:] == (6, 7, 2) and masks.shape == (len(obs), 7) and masks.any(axis=1).all()
    assert np.array_equal(obs, again)


class _FixedMoves:
    def __init__(self, actions):
        self.actions = np.array(actions)

    def predict(self, observations, action_masks=None, deterministic=True):
        return self.actions[: len(observations)], None


def test_hit_rate_counts_moves_in_the_targets():
    obs = np.zeros((4, 6, 7, 2))
    masks = np.ones((4, 7), dtype=bool)
    assert hit_rate(_FixedMoves([0, 3, 3, 6]), obs, masks, [[0], [3, 4], [1], []]) == 0.5


def test_reward_table_counts_the_wrong_side_of_one_half():
    table = reward_table(np.array([0.9, 0.4]), np.array([0.0, 0.6, 0.1, 0.2]))
    winning, others = table.splitlines()[1:]
    assert winning.split()[-1] == "0.500" and others.split()[-1] == "0.250"


def test_one_step_rewards_run_the_network_as_the_search_does():
    """A loaded model is in training mode; measuring must not use or change batch-norm statistics."""
    import torch

    from muzero_agents import MuZero

    torch.set_num_threads(1)
    model = MuZero("CnnPolicy", make_board_game("connect_four"), seed=0)
    model.policy.set_training_mode(True)
    obs, masks = random_play_positions(games=2, seed=1)
    running = [m.running_mean.clone() for m in model.policy.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    only_column_0 = np.zeros_like(masks)
    only_column_0[:, 0] = True  # then "others" is every position's reward for column 0, in order
    none_wins = np.zeros_like(masks)
    wins, rewards = one_step_rewards(model, obs, only_column_0, none_wins)
    _, alone = one_step_rewards(model, obs[:1], only_column_0[:1], none_wins[:1])
    after = [m.running_mean for m in model.policy.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(running, after))
    assert wins.size == 0 and rewards.shape == (len(obs),)
    assert np.allclose(alone, rewards[:1], atol=1e-5)  # a position's reward ignores the rest of the batch


def test_main_prints_the_tables_with_the_chosen_search(tmp_path, capsys):
    import torch

    from benchmarks.diagnostics.connect_four_diagnostics import main
    from muzero_agents import MuZero

    torch.set_num_threads(1)
    path = tmp_path / "c4.zip"
    MuZero("CnnPolicy", make_board_game("connect_four"), seed=0).save(path)
    main([str(path), "--games", "20", "--play-search", "gumbel", "--play-simulations", "2"])
    out = capsys.readouterr().out
    assert "winning (+1)" in out and "gumbel search at 2 simulations" in out
    assert "takes an immediate win:" in out and "blocks a single threat:" in out
