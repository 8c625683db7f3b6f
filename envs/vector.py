"""The tensor boundary: a vector env whose ``reset``/``step`` speak torch tensors on ``device``.

:class:`TensorVecEnv` wraps any Gymnasium ``VectorEnv`` that autoresets in ``SAME_STEP`` mode
(the ALE C++ vector env, ``SyncVectorEnv``, ``AsyncVectorEnv``) and is the only place where
NumPy arrays become tensors. It adds, the same way for every backend:

- **Episode statistics** (:class:`EpisodeStats`): raw (unclipped) return and length in agent
  steps of each *game* that ended, whatever ``terminated`` said about lives.
- **Autoreset semantics.** When an episode ends at step t, the env resets in the same call:
  ``StepResult.obs`` holds the first observation of the new episode (what to act on next),
  and ``StepResult.next_obs`` holds the true last observation of the ended one (what to
  store and bootstrap from). Where no episode ended the two are the same tensor values.
- **Atari learning signals**: terminal-on-life-loss (``terminated`` is True on a life loss
  but the game goes on; ``StepResult.reset`` tells where the env really reset) and reward
  clipping to the sign.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
import torch

_TORCH_DTYPES = {
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.int8): torch.int8,
    np.dtype(np.int16): torch.int16,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float32,  # learners want float32; classic control emits float64 rarely
    np.dtype(np.bool_): torch.bool,
}


@dataclasses.dataclass(frozen=True)
class EpisodeStats:
    """Games that ended during one step (``k`` of them, possibly 0). CPU tensors, for logging.

    Attributes:
      env_ids: ``[k]`` int64, which sub-envs finished.
      returns: ``[k]`` float64, raw undiscounted return of the whole game (unclipped rewards).
      lengths: ``[k]`` int64, agent steps in the game.
    """

    env_ids: torch.Tensor
    returns: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return int(self.env_ids.numel())


@dataclasses.dataclass(frozen=True)
class StepResult:
    """What one vector step returns. All but ``episodes`` are on the env's ``device``.

    Attributes:
      obs: ``[num_envs, *obs_shape]`` observation to act on next (first observation of a new
        episode where one ended).
      reward: ``[num_envs]`` float32 reward for the learner (sign-clipped if configured).
      terminated: ``[num_envs]`` bool, do not bootstrap from ``next_obs`` (includes life loss when
        ``terminal_on_life_loss``).
      truncated: ``[num_envs]`` bool, the episode was cut by a time limit; bootstrap from
        ``next_obs``.
      next_obs: ``[num_envs, *obs_shape]`` true successor of the observation acted on: the final
        observation of an ended episode, ``obs`` elsewhere.
      reset: ``[num_envs]`` bool, the env reset in this step (game over or truncation); differs
        from ``terminated | truncated`` only on life losses.
      episodes: statistics of the games that ended.
    """

    obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    next_obs: torch.Tensor
    reset: torch.Tensor
    episodes: EpisodeStats


_NO_IDS = np.zeros(0, dtype=np.int64)
_NO_EPISODES = EpisodeStats(
    env_ids=torch.zeros(0, dtype=torch.int64),
    returns=torch.zeros(0, dtype=torch.float64),
    lengths=torch.zeros(0, dtype=torch.int64),
)


def torch_dtype(np_dtype: Any) -> torch.dtype:
    """The torch dtype observations of this NumPy dtype are delivered in."""
    try:
        return _TORCH_DTYPES[np.dtype(np_dtype)]
    except KeyError:
        raise ValueError(f"unsupported observation dtype {np_dtype}") from None


class TensorVecEnv:
    """A vector env with a torch interface; see the module docstring for the semantics.

    Args:
      env: a Gymnasium ``VectorEnv`` with ``autoreset_mode == SAME_STEP``.
      device: where observations, rewards and flags are delivered.
      clip_rewards: give the learner ``sign(reward)``.
      terminal_on_life_loss: report ``terminated`` on a life loss (needs ``info["lives"]``).
      backend: a label for ``repr`` and tests (``"ale"``, ``"gymnasium"``).

    Attributes:
      num_envs, device, single_observation_space, single_action_space,
      obs_shape (tuple), obs_dtype (torch dtype), is_discrete, num_actions (discrete only),
      action_shape (tuple, ``()`` for discrete).
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        device: str | torch.device = "cpu",
        clip_rewards: bool = False,
        terminal_on_life_loss: bool = False,
        backend: str = "gymnasium",
    ) -> None:
        mode = env.metadata.get("autoreset_mode")
        if mode != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError(f"TensorVecEnv needs a vector env with SAME_STEP autoreset, got {mode}")
        self.env = env
        self.backend = backend
        self.device = torch.device(device)
        self._on_cpu = self.device.type == "cpu"
        self.num_envs = int(env.num_envs)
        self.clip_rewards = clip_rewards
        self.terminal_on_life_loss = terminal_on_life_loss
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self.obs_shape = tuple(self.single_observation_space.shape or ())
        self.obs_dtype = torch_dtype(self.single_observation_space.dtype)
        self._np_obs_dtype = torch.empty(0, dtype=self.obs_dtype).numpy().dtype  # obs_dtype in NumPy
        self.is_discrete = isinstance(self.single_action_space, gym.spaces.Discrete)
        if self.is_discrete:
            self.num_actions = int(self.single_action_space.n)
            self.action_shape: tuple[int, ...] = ()
        elif isinstance(self.single_action_space, gym.spaces.Box):
            self.num_actions = 0
            self.action_shape = tuple(self.single_action_space.shape)
        else:
            raise ValueError(
                f"action space {self.single_action_space} is not supported (Discrete or Box only)"
            )
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._lives = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = True
        self.default_seed: int | None = None  # used by the first reset() without a seed

    # -------------------------------------------------------------------------------- API
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every sub-env; env ``i`` is seeded with ``seed + i``. Returns ``[num_envs, *obs_shape]``.

        Without ``seed``, the first reset uses ``default_seed`` (the seed given to ``make_env``)
        and later ones continue the sub-envs' own generators.
        """
        if seed is None and self.default_seed is not None:
            seed, self.default_seed = self.default_seed, None
        obs, info = self.env.reset(seed=seed)
        if seed is not None:
            self.single_action_space.seed(seed)
            self.env.action_space.seed(seed)
        self._returns[:] = 0.0
        self._lengths[:] = 0
        if "lives" in info:
            self._lives[:] = info["lives"]
        self._needs_reset = False
        return self._to_tensor(obs)

    def step(self, actions: torch.Tensor | np.ndarray) -> StepResult:
        """Step every sub-env with ``actions`` (``[num_envs]`` ints, or ``[num_envs, *action_shape]`` floats)."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        obs, reward, terminated, truncated, info = self.env.step(self._to_numpy_actions(actions))
        reward = np.asarray(reward, dtype=np.float64)
        terminated = np.asarray(terminated, dtype=np.bool_)
        truncated = np.asarray(truncated, dtype=np.bool_)
        reset = terminated | truncated

        self._returns += reward
        self._lengths += 1
        done_ids = reset.nonzero()[0]  # one call answers "did any end?" and "which?"
        if len(done_ids):
            episodes = EpisodeStats(
                env_ids=torch.from_numpy(done_ids.astype(np.int64, copy=False)),
                returns=torch.from_numpy(self._returns[done_ids]),  # fancy indexing copies
                lengths=torch.from_numpy(self._lengths[done_ids]),
            )
            self._returns[done_ids] = 0.0
            self._lengths[done_ids] = 0
        else:
            episodes = _NO_EPISODES

        learn_terminated = terminated
        if "lives" in info:
            lives = np.asarray(info["lives"], dtype=np.int64)
            if self.terminal_on_life_loss:
                learn_terminated = terminated | ((lives < self._lives) & ~reset)
            self._lives[:] = lives  # after a reset: the new game's lives

        learn_reward = (np.sign(reward) if self.clip_rewards else reward).astype(np.float32)
        obs_t = self._to_tensor(obs)
        if len(done_ids):
            next_obs_np = np.array(obs, copy=True)
            next_obs_np[done_ids] = self._final_observations(info, done_ids)
            next_obs = self._to_tensor(next_obs_np)
        else:
            next_obs = obs_t
        if self._on_cpu:  # views of the host arrays, no copies
            flags = (torch.from_numpy(learn_terminated), torch.from_numpy(truncated), torch.from_numpy(reset))
            reward_t = torch.from_numpy(learn_reward)
        else:  # one host array -> one host-to-device copy for the three flags
            bools_np = np.stack((learn_terminated, truncated, reset))
            flags = torch.from_numpy(bools_np).to(self.device).unbind(0)
            reward_t = torch.from_numpy(learn_reward).to(self.device)
        return StepResult(obs_t, reward_t, flags[0], flags[1], next_obs, flags[2], episodes)

    def sample_actions(self) -> torch.Tensor:
        """Uniformly random actions ``[num_envs, *action_shape]`` from the (seeded) action space."""
        a = self.env.action_space.sample()
        return torch.as_tensor(np.asarray(a)).to(self.device)

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> TensorVecEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"TensorVecEnv(backend={self.backend!r}, num_envs={self.num_envs}, obs={list(self.obs_shape)} "
            f"{self.obs_dtype}, action={self.single_action_space}, device={self.device})"
        )

    # ---------------------------------------------------------------------------- helpers
    def _to_tensor(self, obs: np.ndarray) -> torch.Tensor:
        if self._on_cpu and obs.dtype == self._np_obs_dtype and obs.flags.c_contiguous:
            return torch.from_numpy(obs)  # the common case: a view
        t = torch.from_numpy(np.ascontiguousarray(obs))
        if t.dtype != self.obs_dtype:
            t = t.to(self.obs_dtype)
        return t if self._on_cpu else t.to(self.device)

    def _final_observations(self, info: dict[str, Any], done_ids: np.ndarray) -> np.ndarray:
        final = info.get("final_obs")
        if final is None:
            raise RuntimeError("the vector env did not report final observations (info['final_obs'])")
        if isinstance(final, np.ndarray) and final.dtype != object:
            return final[done_ids]
        return np.stack([np.asarray(final[i]) for i in done_ids])

    def _to_numpy_actions(self, actions: torch.Tensor | np.ndarray) -> np.ndarray:
        if isinstance(actions, torch.Tensor):
            a = actions.numpy() if actions.is_cpu and not actions.requires_grad else actions.detach().cpu().numpy()
        else:
            a = np.asarray(actions)
        expected = (self.num_envs, *self.action_shape)
        if a.shape != expected:
            raise ValueError(f"actions must have shape {list(expected)}, got {list(a.shape)}")
        if self.is_discrete:
            if a.dtype.kind not in "iu":
                raise ValueError(f"discrete actions must be integers, got dtype {a.dtype}")
            values = a.tolist()  # a short Python list: cheaper to bound than two NumPy reductions
            if min(values) < 0 or max(values) >= self.num_actions:
                raise ValueError(
                    f"discrete actions must be in [0, {self.num_actions}), got values in [{a.min()}, {a.max()}]"
                )
            return a.astype(np.int64, copy=False)
        return a.astype(self.single_action_space.dtype, copy=False)
