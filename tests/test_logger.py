"""Logger: MuZero writes SB3's standard keys and its own to stdout, csv and tensorboard."""

from stable_baselines3.common.logger import configure
from muzero_agents import MuZero


def test_csv_and_tensorboard_loggers(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv", "tensorboard"]))
    model.learn(total_timesteps=300, log_interval=1)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in [
        "rollout/ep_rew_mean",
        "time/fps",
        "train/value_loss",
        "train/reward_loss",
        "train/policy_loss",
        "search/root_value",
        "search/visit_entropy",
    ]:
        assert key in header, key
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_tensorboard_log_argument(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", tensorboard_log=str(tmp_path), seed=0, **fast_kwargs)
    model.learn(total_timesteps=100, log_interval=1, tb_log_name="run")
    assert list(tmp_path.glob("run_1/events.out.tfevents.*"))


def test_success_rate_is_logged_for_envs_that_report_it(tmp_path, fast_kwargs):
    import gymnasium as gym

    class ReportsSuccess(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                info["is_success"] = True
            return obs, reward, terminated, truncated, info

    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=1, wrapper_class=ReportsSuccess)
    model = MuZero("MlpPolicy", env, seed=0, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(total_timesteps=200, log_interval=1)
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    column = lines[0].split(",").index("rollout/success_rate")
    assert {line.split(",")[column] for line in lines[1:]} - {""} == {"1.0"}
