"""The memory tasks of :mod:`memory_nets.tasks` as reinforcement-learning environments, so one
task can be learned supervised (``experiments.memory_task``) and by an agent, and compared.

An episode is one sequence of the task. At step ``t`` the observation is the task's input
``inputs[t]`` (``[input_size]``, 0/1 channels) and the action is the output: a ``Box(-1, 1,
[output_size])`` vector whose entry ``i`` means bit ``i`` is 1 when it is > 0 (each output bit
an action dimension, which the policy-gradient agents' Gaussian policies handle as they are).
On the steps the task scores, the reward is the fraction of bits right; elsewhere 0. A
perfect episode's return is the number of scored steps; the episode ends after the sequence.

    import memory_nets.rl_tasks               # registers the ids below with Gymnasium (as ale_py does)
    gym.make("MemoryCopy-v0")                 # copy 4-bit vectors, lengths 1-5
    MemoryTaskEnv("associative_recall", bits=4, min_items=2, max_items=4)
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from memory_nets.tasks import TASKS


class MemoryTaskEnv(gym.Env):
    """One sequence of ``TASKS[task](**options)`` per episode (module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, task: str = "copy", render_mode: str | None = None, **options: Any) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
        self.task = TASKS[task](**options)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.task.input_size,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.task.output_size,), dtype=np.float32)
        self._generator = torch.Generator().manual_seed(0)
        self._inputs = self._targets = self._mask = np.zeros((0,), dtype=np.float32)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._generator.manual_seed(seed)
        batch = self.task.sample(1, self._generator)
        self._inputs = batch.inputs[:, 0].numpy().astype(np.float32)  # [T, input_size]
        self._targets = batch.targets[:, 0].numpy()  # [T, output_size]
        self._mask = batch.mask[:, 0].numpy()  # [T]
        self._t = 0
        return self._inputs[0], {"scored_steps": int(self._mask.sum())}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        t = self._t
        bits = (np.asarray(action) > 0).astype(self._targets.dtype)
        reward = float(self._mask[t] * (bits == self._targets[t]).mean())
        self._t = t + 1
        done = self._t == len(self._inputs)
        obs = np.zeros_like(self._inputs[0]) if done else self._inputs[self._t]
        return obs, reward, done, False, {}


MEMORY_TASKS: dict[str, dict[str, Any]] = {
    "MemoryCopy-v0": {"task": "copy", "bits": 4, "min_length": 1, "max_length": 5},
    "MemoryRepeatCopy-v0": {"task": "repeat_copy", "bits": 4, "min_length": 1, "max_length": 3, "min_repeats": 1,
                            "max_repeats": 3},
    "MemoryAssociativeRecall-v0": {"task": "associative_recall", "bits": 4, "item_length": 1, "min_items": 2,
                                   "max_items": 4},
}
"""The memory tasks as RL envs, small enough for an agent: id -> :class:`MemoryTaskEnv` options."""


def register_memory_tasks() -> None:
    """Register :data:`MEMORY_TASKS` with Gymnasium (idempotent; done on import of this module)."""
    for env_id, options in MEMORY_TASKS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=MemoryTaskEnv, kwargs=options)


register_memory_tasks()
