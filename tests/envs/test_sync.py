"""SameStepVectorEnv steps exactly like Gymnasium's SyncVectorEnv in same-step autoreset mode."""

import gymnasium as gym
import numpy as np
import pytest

from envs import make_env
from envs.sync import SameStepVectorEnv


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0", "Pendulum-v1", "FrozenLake-v1"])
def test_same_steps_as_gymnasium_sync_vector_env(env_id):
    n = 3
    ours = SameStepVectorEnv([lambda: gym.make(env_id) for _ in range(n)])
    ref = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n)],
                                   autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    assert ours.observation_space == ref.observation_space and ours.action_space == ref.action_space
    o1, _ = ours.reset(seed=7)
    o2, _ = ref.reset(seed=7)
    np.testing.assert_array_equal(o1, o2)
    ref.action_space.seed(0)
    ends = 0
    for _ in range(450):  # MountainCar truncates at 200 steps, CartPole terminates often
        a = ref.action_space.sample()
        s1, s2 = ours.step(a), ref.step(a)
        for x, y in zip(s1[:4], s2[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        done = s1[2] | s1[3]
        if done.any():
            ends += int(done.sum())
            np.testing.assert_array_equal(s1[4]["_final_obs"], s2[4]["_final_obs"])
            for i in np.flatnonzero(done):
                np.testing.assert_array_equal(s1[4]["final_obs"][i], s2[4]["final_obs"][i])
        else:
            assert "final_obs" not in s1[4]
        assert s1[0] is not o1  # a fresh array each step: callers may keep the last one
        o1 = s1[0]
    assert ends > 0
    ours.close()
    ref.close()


def test_make_env_uses_it_and_it_refuses_what_it_cannot_batch():
    assert isinstance(make_env("CartPole-v1", 2, seed=0).env, SameStepVectorEnv)

    class DictObs(gym.Env):
        observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,))})
        action_space = gym.spaces.Discrete(2)

    with pytest.raises(ValueError, match="array observation spaces"):
        SameStepVectorEnv([DictObs])
    with pytest.raises(ValueError, match="different spaces"):
        SameStepVectorEnv([lambda: gym.make("CartPole-v1"), lambda: gym.make("Acrobot-v1")])
