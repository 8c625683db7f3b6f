"""Position-only classic control: the original env with the velocities hidden."""

from __future__ import annotations

import importlib.util
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs import make_env
from envs.pomdp import PositionOnly, register_pomdp


@pytest.mark.parametrize(("new_id", "original", "keep"), [("CartPolePositionOnly-v1", "CartPole-v1", [0, 2]),
                                                          ("PendulumPositionOnly-v1", "Pendulum-v1", [0, 1])])
def test_position_only_is_the_original_with_the_velocities_dropped(new_id: str, original: str, keep: list[int]) -> None:
    register_pomdp()
    hidden, full = gym.make(new_id), gym.make(original)
    obs, _ = hidden.reset(seed=3)
    ref, _ = full.reset(seed=3)
    np.testing.assert_array_equal(obs, ref[keep])
    assert hidden.observation_space.shape == (2,)
    hidden.action_space.seed(0)
    steps = 0
    while True:
        action = hidden.action_space.sample()
        obs, reward, terminated, truncated, _ = hidden.step(action)
        ref, ref_reward, ref_terminated, ref_truncated, _ = full.step(action)
        np.testing.assert_array_equal(obs, ref[keep])
        assert (reward, terminated, truncated) == (ref_reward, ref_terminated, ref_truncated)
        steps += 1
        if terminated or truncated:
            break
    if original == "Pendulum-v1":
        assert steps == 200  # its time limit kept


def test_make_env_serves_the_ids_and_the_wrapper_refuses_images() -> None:
    env = make_env("CartPolePositionOnly-v1", num_envs=3, seed=0)
    obs = env.reset()
    assert isinstance(obs, torch.Tensor) and obs.shape == (3, 2)
    env.close()
    with pytest.raises(ValueError, match="needs a 1-D Box observation space"):
        PositionOnly(gym.make("FrozenLake-v1"), [0])
    with pytest.raises(ValueError, match="unknown env id 'CartPolePositionOnly-v2'"):
        make_env("CartPolePositionOnly-v2")


@pytest.mark.skipif(importlib.util.find_spec("popgym") is None, reason="popgym not installed (pip install -e '.[pomdp]')")
@pytest.mark.parametrize(("env_id", "features", "actions"), [("popgym-RepeatPreviousEasy-v0", 4, 4),
                                                             ("popgym-RepeatFirstEasy-v0", 4, 4),
                                                             ("popgym-CountRecallEasy-v0", 4, 27),
                                                             ("popgym-AutoencodeEasy-v0", 6, 4),
                                                             ("popgym-PositionOnlyCartPoleEasy-v0", 2, 2)])
def test_popgym_ids_come_through_make_env_as_vectors(env_id: str, features: int, actions: int) -> None:
    env = make_env(env_id, num_envs=2, seed=0)
    obs = env.reset()
    assert obs.shape == (2, features) and env.single_action_space.n == actions
    if features != 2:  # one-hot codes of discrete observations: 0/1, one 1 per code
        assert set(obs.unique().tolist()) <= {0, 1}
    result = env.step(torch.zeros(2, dtype=torch.long))
    assert result.obs.shape == (2, features) and torch.isfinite(result.reward.float()).all()
    env.close()


def test_a_popgym_id_without_popgym_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "popgym", None)  # import popgym now raises ImportError
    with pytest.raises(ValueError, match=r"popgym-CountRecallEasy-v0 is a POPGym env, and popgym is not installed: "
                                         r"pip install -e '.\[pomdp\]'"):
        make_env("popgym-CountRecallEasy-v0")
