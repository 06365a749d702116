"""`make demo`: train MuZero on CartPole-v1 with a progress bar, then evaluate it.

Shows learning in a few minutes on 2 CPU cores: the evaluation before and after training.
"""

from __future__ import annotations

import argparse

import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from muzero_agents import MuZero


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timesteps", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    eval_env = make_vec_env("CartPole-v1", n_envs=10, seed=1_000 + args.seed)
    model = MuZero("MlpPolicy", "CartPole-v1", seed=args.seed, verbose=0)
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    model.learn(total_timesteps=args.timesteps, progress_bar=True)
    after, std = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    model.save("muzero_cartpole_demo")
    print(f"CartPole-v1 mean return over 10 deterministic episodes: {before:.1f} untrained -> "
          f"{after:.1f} +/- {std:.1f} after {args.timesteps} env steps (max 500).")
    print("Saved the model to muzero_cartpole_demo.zip (load it with MuZero.load).")


if __name__ == "__main__":
    main()
