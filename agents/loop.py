"""The training loop shared by every agent: collect, store, update, log, evaluate, checkpoint.

The loop is agent-agnostic. An agent provides:

- ``explore(obs, step) -> actions``: actions to send to the env (epsilon-greedy for DQN, a
  policy sample for PPO), recording what it needs;
- ``observe(obs, actions, result)``: the env's answer (an ``envs.StepResult``);
- ``train(step, steps_collected) -> dict | None``: whatever updates are due; returns
  ``{tag: tensor}`` metrics (logged as their mean every ``log_interval`` steps) or ``None``;
- ``scalars(step) -> dict``: schedule values to log (``charts/epsilon``, ``charts/learning_rate``);
- ``state_dict()`` / ``load_state_dict()``.

Exact resumption. An env's internal state cannot be saved portably (the ALE C++ vector env
exposes none), but the envs are deterministic given their seed and the actions taken. The loop
therefore logs every action (one byte per env step for up to 256 actions) and, on resume,
rebuilds the envs from the same seed and replays the logged actions before training goes on:
the run continues exactly as if it had never stopped (given the agent's and the replay's saved
state). Replaying is env-only work (no network), so it is fast next to the run itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from envs.vector import TensorVecEnv
from foundations.interrupts import StopRequests
from foundations.runlog import RunLogger, Tags


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """When the off-policy loop evaluates, checkpoints and logs (in environment steps)."""

    eval_interval: int | None = None
    """environment steps between evaluations (default: a tenth of the run, so a report's curves
    have ten points per run; 0: only at the end)."""
    eval_episodes: int = 10
    """episodes per evaluation."""
    checkpoint_interval: int | None = None
    """environment steps between checkpoints (default: a tenth of the run; 0: only at the end;
    there is always one at the end, and one when the run is interrupted)."""
    log_interval: int = 1_000
    """environment steps between logs of losses, epsilon and SPS."""

    def __post_init__(self) -> None:
        for name in ("eval_interval", "checkpoint_interval"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"LoopConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("eval_episodes", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"LoopConfig.{name} must be >= 1, got {getattr(self, name)}")


class ActionLog:
    """Every action sent to the env, ``[vector steps, num_envs, *action_shape]``, grown by doubling.

    Held in a NumPy array on the host (an append is one slice assignment, a microsecond) and
    handed out as a tensor by :meth:`state`.

    Args:
      num_actions: size of a discrete action space (0 for continuous actions); up to 256
        actions are stored in one byte each.
    """

    def __init__(self, num_actions: int = 0) -> None:
        self.actions: np.ndarray | None = None
        self.length = 0
        self._bytes = 0 < num_actions <= 256

    def append(self, actions: torch.Tensor) -> None:
        """Log one vector step's actions ``[num_envs, *action_shape]`` (any device)."""
        a = actions.numpy() if actions.is_cpu else actions.cpu().numpy()
        if self.actions is None:
            self.actions = np.zeros((1024, *a.shape), dtype=np.uint8 if self._bytes else a.dtype)
        if self.length == self.actions.shape[0]:
            grown = np.zeros((2 * self.length, *self.actions.shape[1:]), dtype=self.actions.dtype)
            grown[: self.length] = self.actions
            self.actions = grown
        self.actions[self.length] = a
        self.length += 1

    def state(self) -> torch.Tensor:
        """The actions so far, ``[steps, num_envs, *action_shape]`` (a copy)."""
        return torch.from_numpy(self.actions[: self.length].copy()) if self.actions is not None else torch.zeros(0)

    def load(self, actions: torch.Tensor) -> None:
        self.actions = actions.numpy().copy() if len(actions) else None
        self.length = len(actions)


@dataclasses.dataclass
class LoopResult:
    """Attributes:
    step: environment steps done.
    evaluations: ``[(step, mean return)]`` of every evaluation, in order.
    interrupted: the signal (SIGINT, SIGTERM) that stopped the run early, after its checkpoint;
      ``None`` when it ran to its end.
    already_finished: a resumed run that had reached its end before: nothing ran.
    """

    step: int
    evaluations: list[tuple[int, float]]
    interrupted: int | None = None
    already_finished: bool = False


def fast_forward(env: TensorVecEnv, actions: torch.Tensor) -> torch.Tensor:
    """Reset ``env`` (its default seed) and replay ``actions`` ``[steps, num_envs]``; the current obs."""
    obs = env.reset()
    for row in actions:
        obs = env.step(row if row.is_floating_point() else row.long()).obs
    return obs


def run_training(
    agent: Any,
    env: TensorVecEnv,
    logger: RunLogger,
    total_steps: int,
    config: LoopConfig,
    evaluate: Callable[[int], torch.Tensor] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
    stop_step: int | None = None,
    stop: StopRequests | None = None,
) -> LoopResult:
    """Train ``agent`` on ``env`` for ``total_steps`` environment steps.

    Args:
      agent: any agent with the interface in the module docstring.
      env: training envs, not yet reset (their seed was given to ``make_env``).
      logger: the run's logger (episodes, losses, epsilon, SPS, evaluations).
      evaluate: ``evaluate(step) -> returns [episodes]`` raw evaluation returns.
      checkpoint: called with the loop's state (step, action log, evaluations) every
        ``checkpoint_interval`` steps and at the end; it saves the agent alongside.
      resume: a loop state from ``checkpoint``: envs are fast-forwarded and counting goes on.
      stop_step: stop early at this step (checkpointing there) while schedules still run to
        ``total_steps`` (for tests and budgeted sessions).
      stop: a :class:`foundations.interrupts.StopRequests` in force: on SIGINT / SIGTERM the loop
        finishes the current step, checkpoints and returns with ``interrupted`` set.
    """
    n = env.num_envs
    log = ActionLog(env.num_actions)
    step, evaluations = 0, []
    latest: dict[str, torch.Tensor] | None = None
    if resume is not None:
        obs = fast_forward(env, resume["actions"])
        log.load(resume["actions"])
        step = int(resume["step"])
        evaluations = [(int(s), float(r)) for s, r in resume["evaluations"].tolist()]
    else:
        obs = env.reset()
    end = total_steps if stop_step is None else min(stop_step, total_steps)
    ckpt_interval = config.checkpoint_interval
    if ckpt_interval is None:
        ckpt_interval = max(1, total_steps // 10)
    eval_interval = config.eval_interval
    if eval_interval is None:
        eval_interval = max(1, total_steps // 10)

    def due(interval: int) -> bool:
        """Whether the last vector step reached a multiple of ``interval`` (so logs, evaluations
        and checkpoints fall on the same steps whether or not the run was interrupted and resumed)."""
        return bool(interval) and step // interval != (step - n) // interval

    def state() -> dict[str, Any]:
        ev = torch.tensor(evaluations, dtype=torch.float64).reshape(-1, 2)
        return {"step": step, "actions": log.state(), "evaluations": ev}

    def run_eval() -> None:
        returns = evaluate(step)
        mean = float(returns.double().mean())
        evaluations.append((step, mean))
        logger.log_scalar(Tags.EVAL_RETURN, mean, step)

    # An interrupt that landed on an evaluation step stopped before evaluating: evaluate now, as
    # the uninterrupted run did at this step (evaluations draw from their own (seed, step) RNG).
    if (resume is not None and evaluate is not None and step < total_steps and due(eval_interval)
            and (not evaluations or evaluations[-1][0] != step)):
        run_eval()
    while step < end:
        actions = agent.explore(obs, step)
        log.append(actions)
        result = env.step(actions)
        agent.observe(obs, actions, result)
        obs = result.obs
        step += n
        if len(result.episodes):
            logger.log_episodes(step, result.episodes.returns, result.episodes.lengths)
        metrics = agent.train(step, n)
        if metrics is not None:
            latest = metrics
        if due(config.log_interval):
            if latest is not None:
                values = {tag: float(v.float().mean()) for tag, v in latest.items()}
                bad = {tag: v for tag, v in values.items() if not math.isfinite(v)}
                if bad:
                    raise FloatingPointError(f"non-finite training metrics at step {step}: {bad}; lower the "
                                             "learning rate or clip gradients")
                logger.log_scalars(values, step)
            logger.log_scalars(agent.scalars(step), step)
            logger.log_sps(step)
            logger.progress(step)
        if stop is not None and stop.requested:
            break
        if evaluate is not None and due(eval_interval):
            run_eval()
        if checkpoint is not None and due(ckpt_interval) and step < end:
            checkpoint(state())
    interrupted = stop.signal if stop is not None else None
    if (evaluate is not None and interrupted is None and step >= total_steps
            and (not evaluations or evaluations[-1][0] != step)):
        run_eval()
    logger.progress(step)
    if checkpoint is not None:
        checkpoint(state())
    return LoopResult(step=step, evaluations=evaluations, interrupted=interrupted)
