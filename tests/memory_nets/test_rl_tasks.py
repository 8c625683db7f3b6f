"""The memory tasks as RL environments: observations are the task's inputs, the reward is the
fraction of bits right on scored steps, an episode is one sequence."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs import make_env
from memory_nets.rl_tasks import MEMORY_TASKS, MemoryTaskEnv


@pytest.mark.parametrize("env_id", list(MEMORY_TASKS))
def test_answering_with_the_targets_earns_one_per_scored_step(env_id: str) -> None:
    env = gym.make(env_id).unwrapped  # registered on import of memory_nets.rl_tasks
    assert isinstance(env, MemoryTaskEnv)
    for episode in range(3):
        obs, info = env.reset(seed=10 + episode)
        np.testing.assert_array_equal(obs, env._inputs[0])
        total, steps, done = 0.0, 0, False
        while not done:
            perfect = np.where(env._targets[steps] > 0, 1.0, -1.0)
            obs, reward, done, truncated, _ = env.step(perfect)
            assert not truncated and reward == (1.0 if env._mask[steps] else 0.0)
            total += reward
            steps += 1
        assert total == info["scored_steps"] > 0 and steps == len(env._inputs)


def test_wrong_bits_cost_their_fraction_and_seeds_repeat_episodes() -> None:
    env = MemoryTaskEnv("copy", bits=4, min_length=3, max_length=3)
    env.reset(seed=5)
    again = MemoryTaskEnv("copy", bits=4, min_length=3, max_length=3)
    again.reset(seed=5)
    np.testing.assert_array_equal(env._inputs, again._inputs)
    rewards = [env.step(-np.ones(4, dtype=np.float32))[1] for _ in range(7)]  # answer "all zeros"
    zeros = (env._targets == 0).mean(axis=1)
    np.testing.assert_allclose(rewards, env._mask * zeros)  # the fraction of bits that are 0
    assert rewards[:4] == [0.0] * 4  # the input and the delimiter are not scored
    with pytest.raises(ValueError, match="unknown task 'cpy'; allowed: copy, repeat_copy"):
        MemoryTaskEnv("cpy")


def test_make_env_serves_them_as_continuous_action_envs() -> None:
    env = make_env("MemoryAssociativeRecall-v0", num_envs=2, seed=0)
    assert env.obs_shape == (6,) and env.action_shape == (4,) and not env.is_discrete
    env.close()
