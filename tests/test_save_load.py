"""Save/load: round trips, loads into other envs, refused files, and models saved by muzero-agents 0.1.0."""

import copy
import pathlib

import gymnasium as gym
import numpy as np
import pytest
import torch

from muzero_agents import MuZero
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3 import PPO

DATA = pathlib.Path(__file__).parent / "data"


def test_a_cartpole_model_saved_by_0_1_0_loads_without_env_and_plays():
    model = MuZero.load(DATA / "cartpole-mlp-v0.1.0.zip")
    assert model.search_kwargs["pb_c_init"] == 1.25 and model.replay_buffer_kwargs["priority_beta"] == 0.4
    assert model.policy_kwargs["support_size"] == 20 and model.policy.support_size == 20
    assert model.play_kwargs == {"num_simulations": None, "ema_decay": None}
    assert model.learner.weight_average is None
    assert not any(
        hasattr(model, name) for name in ("pb_c_init", "cut_returns_at_exploration", "play_symmetries")
    )
    action, _ = model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert 0 <= int(action) < 2


def test_a_board_game_model_saved_by_0_1_0_keeps_its_grouped_settings_and_trains_on(tmp_path):
    pytest.importorskip("pettingzoo")
    from wrappers import make_board_game

    env = make_board_game("tictactoe")
    model = MuZero.load(DATA / "tictactoe-cnn-v0.1.0.zip", env=env)
    assert model.search == "gumbel" and model.search_kwargs["pb_c_init"] == 1.3
    assert model.play_kwargs == {"num_simulations": 8, "ema_decay": 0.99}
    assert (
        model.self_play_kwargs["random_opening_moves"] == 2 and model.self_play_kwargs["sampling_moves"] == 3
    )
    average, newest = model.learner.weight_average.state_dict(), model.policy.state_dict()
    assert any(not torch.equal(average[k], newest[k]) for k in newest)  # the saved average, not a copy
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
    assert env.action_masks()[int(action)]
    updates = model._n_updates
    model.learn(48, reset_num_timesteps=False)
    assert model._n_updates > updates
    model.save(tmp_path / "again")
    again = MuZero.load(tmp_path / "again", env=env)
    assert again.play_kwargs == model.play_kwargs and again.search_kwargs == model.search_kwargs


def _perturbed(model: MuZero) -> MuZero:
    """``model`` with every weight moved by noise: a new MuZero's heads are zero, so before
    training every network gives the same values, policy and actions."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.policy.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return model


def _root_values(model: MuZero, obs: np.ndarray) -> np.ndarray:
    """The values ``model``'s deterministic search gives the roots ``obs``."""
    search = dict(num_simulations=4, explore=False, temperature=0.0, rng=np.random.default_rng(0))
    return model.planner.plan(model.policy, obs, None, **search).root_value


def _same_weights(a: MuZero, b: MuZero) -> bool:
    mine, theirs = a.policy.state_dict(), b.policy.state_dict()
    return mine.keys() == theirs.keys() and all(torch.equal(mine[key], theirs[key]) for key in mine)


def test_save_load_gives_identical_deterministic_actions(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=100)
    _perturbed(model)
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    before, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model.zip")
    assert _same_weights(loaded, model) and not _same_weights(
        loaded, MuZero("MlpPolicy", "CartPole-v1", seed=0)
    )
    np.testing.assert_allclose(_root_values(loaded, obs), _root_values(model, obs), rtol=1e-6)
    after, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(before, after)
    single, _ = loaded.predict(obs[0], deterministic=True)
    assert np.ndim(single) == 0 and single == before[0]


def test_load_with_new_env_and_continue_training(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=80)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "replay")
    loaded = MuZero.load(tmp_path / "model", env=make_vec_env("CartPole-v1", n_envs=1, seed=3))
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    updates = loaded._n_updates
    assert len(loaded.replay_buffer) == 80
    loaded.learn(total_timesteps=40, reset_num_timesteps=False)
    assert loaded.num_timesteps == 120 and loaded._n_updates > updates
    assert len(loaded.replay_buffer) == 120


def test_load_with_more_envs_continues_and_refuses_mismatched_replay(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=60)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "replay")
    loaded = MuZero.load(tmp_path / "model", env=make_vec_env("CartPole-v1", n_envs=2, seed=3))
    with pytest.raises(ValueError, match="recorded with n_envs=1"):
        loaded.load_replay_buffer(tmp_path / "replay.pkl")
    loaded.learn(total_timesteps=40, reset_num_timesteps=False)
    assert loaded.num_timesteps == 100


def test_get_and_set_parameters_round_trip(fast_kwargs):
    a = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    b = MuZero("MlpPolicy", "CartPole-v1", seed=1, **fast_kwargs)
    _perturbed(a.learn(total_timesteps=60))
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    assert not np.allclose(_root_values(a, obs), _root_values(b, obs))
    b.set_parameters(a.get_parameters())
    assert _same_weights(a, b)
    np.testing.assert_allclose(_root_values(a, obs), _root_values(b, obs), rtol=1e-6)


def test_loading_a_non_muzero_save_is_refused(tmp_path):
    PPO("MlpPolicy", "CartPole-v1", n_steps=16).save(tmp_path / "ppo")
    with pytest.raises(ValueError, match="not a MuZero save: its policy is ActorCriticPolicy"):
        MuZero.load(tmp_path / "ppo.zip")


def test_loading_a_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        MuZero.load(path)


def test_loading_weights_of_another_network_layout_names_the_cause(tmp_path):
    import zipfile

    import torch

    small = MuZero("MlpPolicy", "CartPole-v1", policy_kwargs=dict(network_kwargs=dict(hidden_dim=8)))
    other = MuZero("MlpPolicy", "CartPole-v1", policy_kwargs=dict(network_kwargs=dict(hidden_dim=16)))
    small.save(tmp_path / "small")
    torch.save(other.policy.state_dict(), tmp_path / "policy.pth")
    with zipfile.ZipFile(tmp_path / "small.zip") as source:  # small's save with other's weights
        parts = {name: source.read(name) for name in source.namelist() if name != "policy.pth"}
    with zipfile.ZipFile(tmp_path / "mixed.zip", "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
        target.write(tmp_path / "policy.pth", "policy.pth")
    with pytest.raises(ValueError, match="do not fit the network these settings build"):
        MuZero.load(tmp_path / "mixed.zip")


def test_loading_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        MuZero.load(tmp_path / "nowhere")


def test_a_group_given_to_load_changes_only_the_keys_it_names(tmp_path):
    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=3, seed=0, play_kwargs=dict(ema_decay=0.9))
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model", play_kwargs=dict(num_simulations=50))
    assert loaded.play_kwargs == {"num_simulations": 50, "ema_decay": 0.9}
    assert loaded.learner.weight_average is not None  # the saved average is kept
    old = MuZero.load(DATA / "tictactoe-cnn-v0.1.0.zip", play_kwargs=dict(num_simulations=50))
    assert old.play_kwargs == {"num_simulations": 50, "ema_decay": 0.99}  # over 0.1.0's flat names too
    old = MuZero.load(DATA / "tictactoe-cnn-v0.1.0.zip", search_kwargs=dict(pb_c_init=2.0))
    assert old.search_kwargs["pb_c_init"] == 2.0 and old.planner.search_kwargs["pb_c_init"] == 2.0


def test_0_1_0_argument_names_point_to_their_new_place(tmp_path):
    with pytest.raises(TypeError, match=r'ema_decay.*moved to play_kwargs\["ema_decay"\]'):
        MuZero("MlpPolicy", "CartPole-v1", ema_decay=0.9)
    with pytest.raises(TypeError, match="unexpected keyword arguments: not_a_setting"):
        MuZero("MlpPolicy", "CartPole-v1", not_a_setting=1)
    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=3)
    model.save(tmp_path / "model")
    assert MuZero.load(tmp_path / "model", ema_decay=0.9).play_kwargs["ema_decay"] == 0.9  # as in 0.2.0
    with pytest.raises(TypeError, match=r"MuZero.load\(\) got the argument .support_size., which moved"):
        MuZero.load(tmp_path / "model", support_size=5)  # would be ignored: the saved network has one
    with pytest.raises(TypeError, match=r"MuZero.load\(\) got unexpected keyword arguments: learnign_rate"):
        MuZero.load(tmp_path / "model", learnign_rate=1e-4)  # SB3 would set it on the model silently
    with pytest.raises(AttributeError, match=r'play_simulations moved to play_kwargs\["num_simulations"\]'):
        model.play_simulations = 100
    with pytest.raises(AttributeError, match="play_symmetries was removed"):
        model.play_symmetries = True


class _FrameEnv(gym.Env):
    """36x36 single-channel frames: large enough to be downsampled as a frame."""

    def __init__(self):
        from gymnasium import spaces

        self.observation_space = spaces.Box(0, 255, (1, 36, 36), np.uint8)
        self.action_space = spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def test_a_frame_model_saved_before_0_3_0_keeps_its_downsampling_stem(tmp_path):
    from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file

    network_kwargs = dict(channels=8, num_blocks=1, downsampling="stride", downsample_to=12)
    old = MuZero("CnnPolicy", _FrameEnv(), seed=0, policy_kwargs=dict(network_kwargs=network_kwargs))
    old.save(tmp_path / "new.zip")
    data, params, variables = load_from_zip_file(tmp_path / "new.zip")
    del data["_save_format"]  # as 0.2.0 wrote it: no format, only the keys the user gave
    data["policy_kwargs"]["network_kwargs"] = dict(channels=8, num_blocks=1)
    save_to_zip_file(tmp_path / "old.zip", data=data, params=params, pytorch_variables=variables)

    loaded = MuZero.load(tmp_path / "old.zip")
    assert loaded.policy_kwargs["network_kwargs"]["downsampling"] == "stride"
    frame = _FrameEnv().observation_space.sample()[None]
    with torch.no_grad():
        expected = old.policy.network.initial_inference(old.policy.prepare_obs(frame)).policy_logits
        got = loaded.policy.network.initial_inference(loaded.policy.prepare_obs(frame)).policy_logits
    torch.testing.assert_close(got, expected)
    loaded.save(tmp_path / "again.zip")  # saved again, it carries this version's format
    assert load_from_zip_file(tmp_path / "again.zip")[0]["_save_format"] == 3
    assert MuZero.load(tmp_path / "again.zip").policy.network.representation[0][0].stride == (1, 1)


def test_new_frame_models_downsample_with_pooling_to_six():
    model = MuZero("CnnPolicy", _FrameEnv(), policy_kwargs=dict(network_kwargs=dict(channels=8)))
    hidden = model.policy.network.initial_inference(model.policy.prepare_obs(np.zeros((1, 1, 36, 36)))).hidden
    assert tuple(hidden.shape[2:]) == (5, 5)  # 36 -> 18 -> 9 -> 5: the largest side at most 6
    assert model.policy.network.representation[0][0].stride == (2, 2)


def test_adam_moments_saved_in_the_other_memory_layout_take_their_parameters_layout(fast_kwargs):
    """Conv networks once kept boards contiguous; now they are channels-last. Adam's fused kernel
    pairs a parameter with its moments as flat memory, so loaded moments must take the
    parameter's layout, else the step updates elements with other elements' moments."""
    pytest.importorskip("pettingzoo")
    from wrappers import make_board_game

    small = dict(network_kwargs=dict(channels=8, num_blocks=1))
    env = make_board_game("tictactoe")
    model = MuZero("CnnPolicy", env, seed=0, **{**fast_kwargs, "policy_kwargs": small})
    model.learn(40)
    params = model.get_parameters()
    for state in params["policy.optimizer"]["state"].values():  # as a contiguous network saved them
        state.update({k: torch.rand(v.shape) for k, v in state.items() if k != "step"})
    model.set_parameters(params)
    optimizer = model.policy.optimizer
    assert optimizer.param_groups[0]["fused"]
    for param, state in optimizer.state.items():
        assert all(v.stride() == param.stride() for k, v in state.items() if k != "step")
    weights = [p for group in optimizer.param_groups for p in group["params"]]
    assert any(p.dim() == 4 and not p.is_contiguous() for p in weights)  # channels-last convs
    reference_weights = [p.detach().clone().requires_grad_() for p in weights]
    reference = torch.optim.AdamW(reference_weights)
    reference.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # shares no tensor
    reference.param_groups[0]["fused"] = None  # the plain kernel, which reads any layout
    for p, q in zip(weights, reference_weights):
        p.grad = torch.randn_like(p)
        q.grad = p.grad.clone()
    optimizer.step()
    reference.step()
    for p, q in zip(weights, reference_weights):
        torch.testing.assert_close(p, q)


def test_a_weight_decay_given_to_load_is_the_one_the_optimizer_uses(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, learner_kwargs=dict(weight_decay=1e-4), **fast_kwargs)
    model.learn(total_timesteps=40)
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model", learner_kwargs=dict(weight_decay=0.5))
    assert {group["weight_decay"] for group in loaded.policy.optimizer.param_groups} == {0.5}
    kept = MuZero.load(tmp_path / "model")
    assert {group["weight_decay"] for group in kept.policy.optimizer.param_groups} == {1e-4}


def test_set_random_seed_makes_a_loaded_model_repeat_its_training(tmp_path, fast_kwargs):
    openings = dict(random_opening_moves=3)  # drawn from a stream split off the search's
    MuZero("MlpPolicy", "CartPole-v1", self_play_kwargs=openings, **fast_kwargs).save(tmp_path / "model")

    def train_from_the_save() -> torch.Tensor:
        model = MuZero.load(tmp_path / "model", env=make_vec_env("CartPole-v1", n_envs=1))
        model.set_random_seed(3)
        assert model.seed == 3
        model.learn(total_timesteps=60)
        return torch.cat([p.detach().flatten() for p in model.policy.parameters()])

    assert torch.equal(train_from_the_save(), train_from_the_save())


def test_a_loaded_replay_samples_with_the_models_priority_alpha(tmp_path, fast_kwargs):
    def stored_masses(model):
        replay = model.replay_buffer
        masses = replay._tree.get(np.arange(replay.capacity))
        return masses[masses > 0]

    kwargs = {**fast_kwargs, "replay_buffer_kwargs": {"priority_alpha": 1.0}}
    prioritized = MuZero("MlpPolicy", "CartPole-v1", seed=0, **kwargs).learn(200)
    assert np.ptp(stored_masses(prioritized)) > 0  # the gradient steps set unequal priorities
    prioritized.save_replay_buffer(tmp_path / "replay.pkl")

    kwargs["replay_buffer_kwargs"] = {"priority_alpha": 0.0}
    uniform = MuZero("MlpPolicy", "CartPole-v1", seed=0, **kwargs)
    uniform.load_replay_buffer(tmp_path / "replay.pkl")
    assert uniform.replay_buffer.alpha == 0.0
    np.testing.assert_array_equal(stored_masses(uniform), 1.0)  # uniform, as the model asks
    assert len(stored_masses(uniform)) == len(stored_masses(prioritized))

    kwargs["replay_buffer_kwargs"] = {"priority_alpha": 0.5}
    square_root = MuZero("MlpPolicy", "CartPole-v1", seed=0, **kwargs)
    square_root.load_replay_buffer(tmp_path / "replay.pkl")
    np.testing.assert_allclose(stored_masses(square_root), np.sqrt(stored_masses(prioritized)))


def _save_with_a_policy_from_a_module_later_renamed(tmp_path, monkeypatch, fast_kwargs):
    """A model saved with a policy class from module ``oldpolicies``, which is then gone; returns
    its path and the same class from module ``newpolicies``."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    source = "from muzero_agents.policies import MlpPolicy\n\nclass MyPolicy(MlpPolicy):\n    pass\n"
    (tmp_path / "oldpolicies.py").write_text(source)
    (tmp_path / "newpolicies.py").write_text(source)
    old = importlib.import_module("oldpolicies")
    MuZero(old.MyPolicy, "CartPole-v1", seed=0, **fast_kwargs).save(tmp_path / "model")
    (tmp_path / "oldpolicies.py").unlink()
    monkeypatch.delitem(sys.modules, "oldpolicies")
    return tmp_path / "model.zip", importlib.import_module("newpolicies").MyPolicy


def test_custom_objects_replace_what_a_save_can_no_longer_unpickle(tmp_path, monkeypatch, fast_kwargs):
    path, renamed = _save_with_a_policy_from_a_module_later_renamed(tmp_path, monkeypatch, fast_kwargs)
    with pytest.raises(ModuleNotFoundError):
        MuZero.load(path)
    loaded = MuZero.load(path, custom_objects={"policy_class": renamed}, play_kwargs={"num_simulations": 3})
    assert type(loaded.policy) is renamed and loaded.play_kwargs["num_simulations"] == 3


def test_a_replay_included_in_the_save_is_loaded_with_it(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(64)
    model.save(tmp_path / "model", include=["replay_buffer"])
    loaded = MuZero.load(tmp_path / "model.zip")
    assert len(loaded.replay_buffer) == len(model.replay_buffer) == 64
    resumed = MuZero.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1"))
    updates = resumed._n_updates  # saved in the zip
    resumed.learn(32)
    assert (
        resumed._n_updates > updates and len(resumed.replay_buffer) == 64 + 32
    )  # it trains on the saved replay
    model.save(tmp_path / "plain")
    assert len(MuZero.load(tmp_path / "plain.zip").replay_buffer) == 0
    with pytest.warns(UserWarning, match="recorded with n_envs=1 .* starts a new replay"):
        other = MuZero.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1", n_envs=2))
    assert other.n_envs == 2 and len(other.replay_buffer) == 0


def test_load_replay_buffer_takes_sb3s_truncate_last_traj(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(40)
    model.save_replay_buffer(tmp_path / "replay")
    model.load_replay_buffer(tmp_path / "replay.pkl", truncate_last_traj=True)  # the RL Zoo's -i passes it
    assert model.replay_buffer._cur_len.sum() == 0  # the running episodes ended
    with pytest.raises(ValueError, match="leave truncate_last_traj at True"):
        model.load_replay_buffer(tmp_path / "replay.pkl", truncate_last_traj=False)


def test_a_cnn_model_loads_with_the_policy_kwargs_it_was_made_with(tmp_path):
    pytest.importorskip("pettingzoo")
    from wrappers import make_board_game

    policy_kwargs = dict(network_kwargs=dict(channels=8, num_blocks=1))
    model = MuZero("CnnPolicy", make_board_game("tictactoe"), seed=0, policy_kwargs=policy_kwargs)
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model.zip", policy_kwargs=policy_kwargs)
    assert loaded.policy_kwargs == model.policy_kwargs  # the layout the saved policy read is kept
    with pytest.raises(ValueError, match="policy kwargs"):
        MuZero.load(
            tmp_path / "model.zip", policy_kwargs=dict(network_kwargs=dict(channels=16, num_blocks=1))
        )


def test_the_policy_saved_alone_loads_as_sb3_policies_do(tmp_path, fast_kwargs):
    model = _perturbed(MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs))
    model.policy.save(tmp_path / "policy.pth")
    loaded = type(model.policy).load(tmp_path / "policy.pth")
    mine, theirs = model.policy.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[key], theirs[key]) for key in mine)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    actions = model.policy.predict(obs, deterministic=True)[0]
    assert len(set(actions)) > 1 and np.array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    assert loaded.optimizer_class is model.policy.optimizer_class


def test_load_refuses_a_bad_device_by_name(tmp_path, fast_kwargs):
    MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs).save(tmp_path / "model")
    with pytest.raises(ValueError, match="device must be 'auto' or a torch device name"):
        MuZero.load(tmp_path / "model.zip", device="gpu")


class _AllLegal(gym.Wrapper):
    """CartPole with sb3-contrib's ``action_masks()``, so that its steps are stored with masks."""

    def action_masks(self):
        return np.ones(2, dtype=bool)


def test_a_replay_stored_with_other_action_masks_than_the_env_gives_is_not_trained_on(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(40)
    model.save(tmp_path / "model", include=["replay_buffer"])
    model.save_replay_buffer(tmp_path / "plain")
    with pytest.warns(UserWarning, match="recorded without legal-action masks.*starts a new replay"):
        loaded = MuZero.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1", wrapper_class=_AllLegal))
    with pytest.raises(
        ValueError, match="recorded without legal-action masks, but the model's env gives them"
    ):
        loaded.load_replay_buffer(tmp_path / "plain.pkl")
    model.set_env(make_vec_env("CartPole-v1", wrapper_class=_AllLegal))  # the same spaces and envs
    assert len(model.replay_buffer) == 0  # a new replay: the old one took steps without masks
    model.learn(40, reset_num_timesteps=False)  # failed at the first step before
    assert model.replay_buffer.has_legal_masks and len(model.replay_buffer) == 40
    model.save_replay_buffer(tmp_path / "masked")
    plain = MuZero.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1"))
    with pytest.raises(ValueError, match="recorded with legal-action masks, but the model's env gives none"):
        plain.load_replay_buffer(tmp_path / "masked.pkl")


def test_stats_window_size_set_later_or_at_load_sizes_the_logged_statistics(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", stats_window_size=3, seed=0, **fast_kwargs)
    model.learn(120)
    assert model.ep_info_buffer.maxlen == 3 and len(model.ep_info_buffer) == 3
    newest = list(model.ep_info_buffer)[-2:]
    model.stats_window_size = 2
    assert model.ep_info_buffer.maxlen == 2 and list(model.ep_info_buffer) == newest
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model.zip", env=make_vec_env("CartPole-v1"), stats_window_size=5)
    loaded.learn(40)
    assert loaded.ep_info_buffer.maxlen == 5 and loaded.ep_success_buffer.maxlen == 5


def test_load_takes_an_env_id_or_function_as_the_constructor_does(tmp_path, fast_kwargs):
    from muzero_agents.distributed.envs import source_of

    MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs).save(tmp_path / "model")
    by_id = MuZero.load(tmp_path / "model.zip", env="CartPole-v1")  # SB3's load takes only envs
    by_function = MuZero.load(tmp_path / "model.zip", env=lambda: make_vec_env("CartPole-v1", n_envs=2))
    assert by_id.n_envs == 1 and by_function.n_envs == 2
    assert source_of(by_id.env).env_id == "CartPole-v1"  # Ray actors can rebuild both
    assert source_of(by_function.env).factory is not None
    by_function.learn(40)
    assert by_function.num_timesteps == 40
