"""muzero-agents: MuZero as a Stable-Baselines3 algorithm with a Numba batched MCTS."""

from muzero_agents.algorithm import MuZero
from muzero_agents.policies import CnnPolicy, MlpPolicy, MuZeroCnnPolicy, MuZeroPolicy

__all__ = ["CnnPolicy", "MlpPolicy", "MuZero", "MuZeroCnnPolicy", "MuZeroPolicy"]
__version__ = "0.3.0"
