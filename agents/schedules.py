"""Step schedules for exploration rates, importance-sampling exponents and learning rates."""

from __future__ import annotations

import torch


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """``start`` at step 0, linearly to ``end`` at ``duration``, then ``end`` (``duration <= 0``: ``end``).

    The epsilon-greedy schedule of Mnih et al. 2015 (1.0 -> 0.1 over the first million frames)
    and the beta annealing of prioritized replay (Schaul et al. 2016) are both this.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if duration <= 0 or step >= duration:
        return float(end)
    return float(start + (end - start) * step / duration)


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    """Every parameter group of ``optimizer`` at step size ``rate`` (a schedule's value, applied
    before the next step; no scheduler state, so a resumed run recomputes it from its step)."""
    for group in optimizer.param_groups:
        group["lr"] = rate
