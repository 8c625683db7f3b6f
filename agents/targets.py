"""The RL math as pure functions of tensors: Q-learning targets and TD errors.

Names follow the time-index convention: ``q_tm1`` are values at the step the action was taken,
``a_tm1`` that action, ``r_t`` the (n-step discounted) reward that followed, ``discount_t`` the
factor that multiplies the bootstrap value (``gamma^m``, 0 where the episode terminated: the
caller's replay handles termination vs truncation, once), and ``q_t`` values at the
bootstrap observation.
"""

from __future__ import annotations

import torch


def q_learning_target(r_t: torch.Tensor, discount_t: torch.Tensor, q_t_target: torch.Tensor) -> torch.Tensor:
    """Q-learning target ``r_t + discount_t * max_a q_t_target[a]`` (Mnih et al. 2015).

    Args:
      r_t: ``[batch]`` rewards (n-step discounted sums for n-step learning).
      discount_t: ``[batch]`` bootstrap discounts (0 after termination).
      q_t_target: ``[batch, num_actions]`` target-network values at the bootstrap observation.

    Returns:
      ``[batch]`` targets (no gradient flows through them).
    """
    _check(r_t, discount_t, q_t_target)
    return (r_t + discount_t * q_t_target.max(dim=1).values).detach()


def double_q_learning_target(
    r_t: torch.Tensor, discount_t: torch.Tensor, q_t_target: torch.Tensor, q_t_online: torch.Tensor
) -> torch.Tensor:
    """Double Q-learning target (van Hasselt et al. 2016): the online net picks, the target net rates.

    ``r_t + discount_t * q_t_target[argmax_a q_t_online[a]]``.

    Args:
      r_t, discount_t: ``[batch]``.
      q_t_target, q_t_online: ``[batch, num_actions]`` target- and online-network values at
        the bootstrap observation.

    Returns:
      ``[batch]`` targets (detached).
    """
    _check(r_t, discount_t, q_t_target)
    if q_t_online.shape != q_t_target.shape:
        raise ValueError(f"q_t_online {list(q_t_online.shape)} and q_t_target {list(q_t_target.shape)} differ")
    best = q_t_online.argmax(dim=1, keepdim=True)
    return (r_t + discount_t * q_t_target.gather(1, best).squeeze(1)).detach()


def action_values(q_tm1: torch.Tensor, a_tm1: torch.Tensor) -> torch.Tensor:
    """``q_tm1[a_tm1]``: ``[batch]`` values of the actions taken (gradient flows through ``q_tm1``).

    Args:
      q_tm1: ``[batch, num_actions]``; a_tm1: ``[batch]`` int64.
    """
    if q_tm1.ndim != 2 or a_tm1.shape != q_tm1.shape[:1]:
        raise ValueError(f"expected q_tm1 [batch, actions] and a_tm1 [batch]; got {list(q_tm1.shape)}, {list(a_tm1.shape)}")
    return q_tm1.gather(1, a_tm1.long().unsqueeze(1)).squeeze(1)


def td_error(q_tm1: torch.Tensor, a_tm1: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``target - q_tm1[a_tm1]``: ``[batch]`` TD errors (gradient flows through ``q_tm1``).

    Args:
      q_tm1: ``[batch, num_actions]`` online values at the observation acted on.
      a_tm1: ``[batch]`` int64 actions taken.
      target: ``[batch]`` bootstrap targets.
    """
    if q_tm1.ndim != 2 or a_tm1.shape != q_tm1.shape[:1] or target.shape != q_tm1.shape[:1]:
        raise ValueError(
            f"expected q_tm1 [batch, actions], a_tm1 [batch], target [batch]; got {list(q_tm1.shape)}, "
            f"{list(a_tm1.shape)}, {list(target.shape)}"
        )
    return target - q_tm1.gather(1, a_tm1.long().unsqueeze(1)).squeeze(1)


def _check(r_t: torch.Tensor, discount_t: torch.Tensor, q_t: torch.Tensor) -> None:
    if q_t.ndim != 2 or r_t.shape != q_t.shape[:1] or discount_t.shape != q_t.shape[:1]:
        raise ValueError(
            f"expected r_t [batch], discount_t [batch], q_t [batch, actions]; got {list(r_t.shape)}, "
            f"{list(discount_t.shape)}, {list(q_t.shape)}"
        )
