"""Rollout storage for on-policy agents: ``[steps, num_envs, ...]`` tensors on ``device``.

Each step stores what the policy saw and did (``obs``, ``actions``, ``log_probs``, ``values``)
and what the env answered (``rewards``, ``terminated``, ``truncated``). Where an episode was
truncated, the value of its true final observation is stored too (``final_values``), so GAE
bootstraps from it instead of from the next episode's first observation.

For a policy with a memory core the rollout also keeps ``starts`` (``[T, N]``: the step begins
an episode, so the core was reset before it) and ``begin_state``, the core's state before the
rollout's first step, from which learning re-runs the core over the same steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from agents import targets


class Rollout:
    """Args:
    num_steps, num_envs: ``T`` and ``N``.
    obs_shape, obs_dtype, action_shape, action_dtype: per-env observation and action.
    device: where the tensors live.
    """

    def __init__(self, num_steps: int, num_envs: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype,
                 action_shape: tuple[int, ...], action_dtype: torch.dtype, device: str | torch.device = "cpu") -> None:
        if num_steps < 1 or num_envs < 1:
            raise ValueError(f"num_steps and num_envs must be >= 1, got {num_steps}, {num_envs}")
        t, n, dev = num_steps, num_envs, torch.device(device)
        self.num_steps, self.num_envs, self.device = t, n, dev
        self.obs = torch.zeros((t, n, *obs_shape), dtype=obs_dtype, device=dev)
        self.actions = torch.zeros((t, n, *action_shape), dtype=action_dtype, device=dev)
        self.log_probs = torch.zeros((t, n), device=dev)
        self.values = torch.zeros((t, n), device=dev)
        self.rewards = torch.zeros((t, n), device=dev)
        self.terminated = torch.zeros((t, n), dtype=torch.bool, device=dev)
        self.truncated = torch.zeros((t, n), dtype=torch.bool, device=dev)
        self.final_values = torch.zeros((t, n), device=dev)
        self.starts = torch.zeros((t, n), dtype=torch.bool, device=dev)
        self.begin_state: tuple[torch.Tensor, ...] = ()
        self.t = 0
        # NumPy views of CPU storage: a step's writes cost a microsecond each instead of torch's ~5
        self._host = None
        if dev.type == "cpu" and obs_dtype != torch.bfloat16 and action_dtype != torch.bfloat16:
            self._host = {k: getattr(self, k).numpy() for k in self._NAMES}

    _NAMES = ("obs", "actions", "log_probs", "values", "rewards", "terminated", "truncated", "final_values", "starts")

    @property
    def full(self) -> bool:
        return self.t == self.num_steps

    def add(self, obs: torch.Tensor, actions: torch.Tensor, log_probs: torch.Tensor | None = None,
            values: torch.Tensor | None = None, starts: torch.Tensor | None = None,
            state: tuple[torch.Tensor, ...] | None = None) -> None:
        """Record the policy's side of step ``t``: ``obs`` ``[N, *obs_shape]``, ``actions``, ``log_probs`` / ``values`` ``[N]``.

        ``log_probs`` and ``values`` may be left out and filled for the whole rollout at once
        later (``rollout.log_probs[:] = ...``), by an agent that evaluates them in one batch.
        A recurrent agent gives ``starts`` ``[N]`` and, with the first step, the core ``state``
        before it.
        """
        if self.full:
            raise ValueError(f"the rollout already holds {self.num_steps} steps; compute advantages and reset()")
        t, h = self.t, self._host
        if h is not None and obs.is_cpu and actions.is_cpu:
            h["obs"][t], h["actions"][t] = obs.numpy(), actions.numpy()
        else:
            self.obs[t], self.actions[t] = obs, actions
        if log_probs is not None:
            self.log_probs[t] = log_probs
        if values is not None:
            self.values[t] = values
        if starts is not None:
            self.starts[t] = starts
        if t == 0 and state is not None:
            self.begin_state = tuple(x.clone() for x in state)

    def record(self, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
               final_values: torch.Tensor | None = None) -> None:
        """Record the env's answer to step ``t`` (``[N]`` each) and advance.

        ``final_values`` ``[N]``: values of the true final observations (read where ``truncated``).
        """
        t, h = self.t, self._host
        if h is not None and rewards.is_cpu and terminated.is_cpu and truncated.is_cpu:
            h["rewards"][t], h["terminated"][t], h["truncated"][t] = rewards.numpy(), terminated.numpy(), truncated.numpy()
        else:
            self.rewards[t], self.terminated[t], self.truncated[t] = rewards, terminated, truncated
        if final_values is not None:
            self.final_values[t] = final_values
        self.t += 1

    def advantages(self, last_values: torch.Tensor, gamma: float, gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE advantages and lambda-returns ``[T, N]`` each, given the values ``[N]`` of the
        observations that follow the last step."""
        if not self.full:
            raise ValueError(f"the rollout holds {self.t} of {self.num_steps} steps")
        next_values = torch.cat([self.values[1:], last_values.reshape(1, -1).to(self.values.dtype)])
        next_values = torch.where(self.truncated, self.final_values, next_values)
        discounts = gamma * (~self.terminated).to(self.rewards.dtype)
        adv = targets.generalized_advantages(self.rewards, discounts, self.values, next_values,
                                     self.terminated | self.truncated, gae_lambda)
        return adv, adv + self.values

    def minibatches(self, advantages: torch.Tensor, returns: torch.Tensor, num_minibatches: int,
                    generator: torch.Generator, core: Any = None) -> Iterator[tuple[torch.Tensor, ...]]:
        """One epoch over the full rollout in ``num_minibatches`` shuffled minibatches, each
        ``(obs, actions, log_probs, values, advantages, returns)``.

        Without ``core``: sets of steps, ``[B, ...]`` each with ``B = T * N / num_minibatches`` (every
        column shuffled once, minibatches are slices of it). With a memory core
        (:class:`agents.cores.AgentCore`): sets of envs, ``[T, b, ...]`` whole sequences with
        ``b = N / num_minibatches``, followed by their ``starts`` ``[T, b]`` and the core's state
        before the rollout for those envs, so the loss re-runs the core over the same steps.
        ``advantages`` and ``returns`` are ``[T, N]``; the order comes from ``generator``.
        """
        columns = (self.obs, self.actions, self.log_probs, self.values, advantages, returns)
        if core is None:
            size = self.num_steps * self.num_envs
            flat = [col.flatten(0, 1) for col in columns]
            perm = torch.randperm(size, device=self.device, generator=generator)
            shuffled = [col.index_select(0, perm) for col in flat]
            step = size // num_minibatches
            for start in range(0, size, step):
                yield tuple(col[start:start + step] for col in shuffled)
            return
        perm = torch.randperm(self.num_envs, device=self.device, generator=generator)
        step = self.num_envs // num_minibatches
        for start in range(0, self.num_envs, step):
            envs = perm[start:start + step]
            yield (*(col.index_select(1, envs) for col in (*columns, self.starts)), *core.select(self.begin_state, envs))

    def reset(self) -> None:
        self.t = 0

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "begin_state": list(self.begin_state), **{k: getattr(self, k) for k in self._NAMES}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            if k == "t":
                self.t = int(v)
            elif k == "begin_state":
                self.begin_state = tuple(x.to(self.device) for x in v)
            else:
                getattr(self, k).copy_(v)
