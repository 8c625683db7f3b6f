"""Environments: Gymnasium / ALE vector envs with a torch-tensor boundary.

``make_env(env_id, num_envs, seed, device)`` returns a :class:`TensorVecEnv` for any Gymnasium
id; Atari ids get the standard DeepMind preprocessing (see :mod:`envs.atari`).
"""

from envs.atari import AtariConfig, FireResetEnv, atari_game, is_atari_id
from envs.evaluate import EvalResult, evaluate, write_gif
from envs.factory import check_env_id, make_env
from envs.vector import EpisodeStats, StepResult, TensorVecEnv

__all__ = [
    "AtariConfig",
    "EpisodeStats",
    "EvalResult",
    "FireResetEnv",
    "StepResult",
    "TensorVecEnv",
    "atari_game",
    "check_env_id",
    "evaluate",
    "is_atari_id",
    "make_env",
    "write_gif",
]
