"""The RL math as pure functions of tensors: Q-learning targets and TD errors.

Names follow the time-index convention: ``q_tm1`` are values at the step the action was taken,
``a_tm1`` that action, ``r_t`` the (n-step discounted) reward that followed, ``discount_t`` the
factor that multiplies the bootstrap value (``gamma^m``, 0 where the episode terminated: the
caller's replay handles termination vs truncation, once), and ``q_t`` values at the
bootstrap observation.
"""

from __future__ import annotations

import torch

from foundations.checks import unit_interval


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
    return torch.addcmul(r_t, discount_t, q_t_target.amax(dim=1)).detach()


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


def munchausen_q_learning_target(
    r_t: torch.Tensor, discount_t: torch.Tensor, q_tm1_target: torch.Tensor, a_tm1: torch.Tensor,
    q_t_target: torch.Tensor, temperature: float = 0.03, alpha: float = 0.9, log_policy_min: float = -1.0,
    q_t_selector: torch.Tensor | None = None,
) -> torch.Tensor:
    """Munchausen Q-learning target (Vieillard et al. 2020, M-DQN).

    With ``pi = softmax(q_target / temperature)`` (the target network's softmax policy) and
    ``s = temperature * log pi``:

        r_t + alpha * clip(s(a_tm1 | x_tm1), log_policy_min, 0)
            + discount_t * sum_a pi(a | x_t) * (q_t_target[a] - s(a | x_t))

    The first bonus rewards the agent for the action it took in proportion to how likely its own
    policy found it, which widens the gap between the best action and the rest (the action gap,
    whose smallness lets a few updates reorder the greedy action); the second is soft
    (entropy-regularised) bootstrapping. ``temperature -> 0`` with ``alpha = 0`` is Q-learning.

    Two extensions beyond the paper, so M-DQN composes with the other DQN options: with n-step
    returns (``r_t`` a discounted n-step sum, ``discount_t = gamma^n``) the bonus is that of the
    first action only; with ``q_t_selector`` (the online network's values, as double Q-learning
    uses them) the bootstrap policy ``pi(. | x_t)`` is the selector's softmax while the values
    stay the target network's.

    Args:
      r_t, discount_t: ``[batch]`` rewards and bootstrap discounts (0 after termination).
      q_tm1_target: ``[batch, num_actions]`` target-network values at the observation acted on.
      a_tm1: ``[batch]`` int64 actions taken.
      q_t_target: ``[batch, num_actions]`` target-network values at the bootstrap observation.
      temperature, alpha, log_policy_min: ``tau``, ``alpha`` and ``l_0`` of the paper (0.03, 0.9, -1).
      q_t_selector: ``[batch, num_actions]`` values whose softmax weights the bootstrap (default
        ``q_t_target``).

    Returns:
      ``[batch]`` targets (detached).
    """
    _check(r_t, discount_t, q_t_target)
    selector = q_t_target if q_t_selector is None else q_t_selector
    for name, q in (("q_tm1_target", q_tm1_target), ("q_t_selector", selector)):
        if q.shape != q_t_target.shape:
            raise ValueError(f"{name} {list(q.shape)} and q_t_target {list(q_t_target.shape)} differ")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scaled_log_pi_tm1 = temperature * torch.log_softmax(q_tm1_target / temperature, dim=1)
    bonus = scaled_log_pi_tm1.gather(1, a_tm1.long().unsqueeze(1)).squeeze(1).clamp(log_policy_min, 0.0)
    pi_t = torch.softmax(selector / temperature, dim=1)
    soft_value = (pi_t * (q_t_target - temperature * torch.log_softmax(selector / temperature, dim=1))).sum(dim=1)
    return (r_t + alpha * bonus + discount_t * soft_value).detach()


def categorical_projection(
    r_t: torch.Tensor, discount_t: torch.Tensor, probs_t: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """Project the distribution of ``r_t + discount_t * Z`` onto ``support`` (Bellemare et al. 2017).

    ``Z`` puts mass ``probs_t[:, j]`` on ``support[j]``. Each shifted atom
    ``Tz_j = clip(r_t + discount_t * support[j], v_min, v_max)`` gives its mass to its two
    neighbouring atoms of the (evenly spaced) support in proportion to closeness: atom ``i``
    receives ``probs_t[:, j] * max(0, 1 - |Tz_j - support[i]| / delta)``, which is the
    C51 algorithm's ``l``/``u`` split written as one weight matrix.

    Args:
      r_t, discount_t: ``[batch]`` (n-step) rewards and bootstrap discounts (0 after termination).
      probs_t: ``[batch, atoms]`` probabilities at the bootstrap observation (rows sum to 1).
      support: ``[atoms]`` evenly spaced atoms ``v_min .. v_max`` (``atoms >= 2``).

    Returns:
      ``[batch, atoms]`` target probabilities (rows sum to 1; detached).
    """
    if support.ndim != 1 or support.numel() < 2:
        raise ValueError(f"support must be [atoms] with atoms >= 2, got {list(support.shape)}")
    if probs_t.ndim != 2 or probs_t.shape[1] != support.numel():
        raise ValueError(f"probs_t must be [batch, {support.numel()}], got {list(probs_t.shape)}")
    if r_t.shape != probs_t.shape[:1] or discount_t.shape != probs_t.shape[:1]:
        raise ValueError(f"expected r_t, discount_t [batch]; got {list(r_t.shape)}, {list(discount_t.shape)}")
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (support.numel() - 1)
    shifted = (r_t[:, None] + discount_t[:, None] * support[None, :]).clamp(v_min, v_max)  # Tz [batch, atoms_j]
    # weight[b, i, j]: share of source atom j's mass that lands on target atom i
    weight = (1 - (shifted[:, None, :] - support[None, :, None]).abs() / delta).clamp(min=0)
    return (weight * probs_t[:, None, :]).sum(dim=2).detach()


def categorical_q_learning_target(
    r_t: torch.Tensor, discount_t: torch.Tensor, logits_t_target: torch.Tensor, q_t_selector: torch.Tensor,
    support: torch.Tensor,
) -> torch.Tensor:
    """C51's target distribution (Bellemare et al. 2017): the target network's return distribution
    at the action that ``q_t_selector`` rates best, shifted by ``r_t + discount_t * z`` and
    projected back onto ``support`` (:func:`categorical_projection`).

    Args:
      r_t, discount_t: ``[batch]``.
      logits_t_target: ``[batch, num_actions, atoms]`` target-network logits at the bootstrap
        observation.
      q_t_selector: ``[batch, num_actions]`` values that pick the bootstrap action: the target
        network's own (C51) or the online network's (double Q, as in Rainbow).
      support: ``[atoms]``.

    Returns:
      ``[batch, atoms]`` target probabilities (detached).
    """
    if logits_t_target.ndim != 3 or q_t_selector.shape != logits_t_target.shape[:2]:
        raise ValueError(f"expected logits_t_target [batch, actions, atoms] and q_t_selector [batch, actions]; got "
                         f"{list(logits_t_target.shape)}, {list(q_t_selector.shape)}")
    best = q_t_selector.argmax(dim=1)
    probs_t = logits_t_target[torch.arange(best.shape[0], device=best.device), best].softmax(dim=-1)
    return categorical_projection(r_t, discount_t, probs_t, support)


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


def generalized_advantages(
    r_t: torch.Tensor,
    discount_t: torch.Tensor,
    v_tm1: torch.Tensor,
    v_t: torch.Tensor,
    cut_t: torch.Tensor,
    lambda_: float,
) -> torch.Tensor:
    """GAE(lambda) advantages (Schulman et al. 2016) over a rollout of ``T`` steps of ``N`` envs.

    ``delta_t = r_t + discount_t * v_t - v_tm1`` and
    ``A_t = delta_t + discount_t * lambda * (1 - cut_t) * A_{t+1}``.

    Args:
      r_t: ``[T, N]`` rewards.
      discount_t: ``[T, N]`` ``gamma``, or 0 where the step terminated the episode.
      v_tm1: ``[T, N]`` values of the observations acted on.
      v_t: ``[T, N]`` values of each step's true successor: the next observation acted on, or,
        where the episode was truncated, the value of its final observation (so truncation
        bootstraps and termination, through ``discount_t = 0``, does not).
      cut_t: ``[T, N]`` bool, the episode ended at this step (terminated or truncated): the
        lambda-trace stops there so advantages never mix two episodes.
      lambda_: trace decay in [0, 1]; 1 gives Monte Carlo returns minus the baseline, 0 the
        one-step TD error.

    Returns:
      ``[T, N]`` advantages (detached); ``advantages + v_tm1`` are the lambda-returns.
    """
    shapes = {t.shape for t in (r_t, discount_t, v_tm1, v_t, cut_t)}
    if len(shapes) != 1 or r_t.ndim != 2:
        raise ValueError(f"r_t, discount_t, v_tm1, v_t and cut_t must all be [T, N]; got {sorted(map(list, shapes))}")
    unit_interval("lambda_", lambda_)
    with torch.no_grad():
        delta = r_t + discount_t * v_t - v_tm1
        trace = discount_t * lambda_ * (~cut_t).to(r_t.dtype)
        return _backward_recursion(delta, trace)


def _backward_recursion(x: torch.Tensor, decay: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
    """``y_t = x_t + decay_t * y_{t+1}`` for t = T-1 .. 0 over ``[T, N]``, from ``y_T = start`` (default 0)."""
    running = torch.zeros_like(x[0]) if start is None else start.to(x.dtype)
    out = torch.empty_like(x)
    for t in range(x.shape[0] - 1, -1, -1):
        running = x[t] + decay[t] * running
        out[t] = running
    return out


def discounted_returns(r_t: torch.Tensor, discount_t: torch.Tensor, cut_t: torch.Tensor,
                       bootstrap: torch.Tensor | None = None) -> torch.Tensor:
    """Reward-to-go ``G_t = r_t + discount_t * (1 - cut_t) * G_{t+1}`` over ``[T, N]`` (REINFORCE).

    Args:
      r_t, discount_t, cut_t: ``[T, N]`` as in :func:`generalized_advantages`.
      bootstrap: ``[N]`` value to continue from after the last step (default 0: complete episodes).

    Returns:
      ``[T, N]`` returns (detached).
    """
    if r_t.shape != discount_t.shape or r_t.shape != cut_t.shape or r_t.ndim != 2:
        raise ValueError(f"r_t, discount_t and cut_t must all be [T, N]; got {list(r_t.shape)}, "
                         f"{list(discount_t.shape)}, {list(cut_t.shape)}")
    with torch.no_grad():
        return _backward_recursion(r_t, discount_t * (~cut_t).to(r_t.dtype), bootstrap)


def q_lambda_returns(r_t: torch.Tensor, discount_t: torch.Tensor, v_t: torch.Tensor, cut_t: torch.Tensor,
                     lambda_: float) -> torch.Tensor:
    """Q(lambda) returns over a rollout of ``T`` steps of ``N`` envs (Peng and Williams 1996, as PQN
    computes them: Gallici et al. 2024), backwards from the last step:

        G_t = r_t + discount_t * ((1 - lambda_t) * v_t + lambda_t * G_{t+1}),
        lambda_t = lambda * (1 - cut_t),

    and ``G_{T-1} = r_{T-1} + discount_{T-1} * v_{T-1}`` (the rollout's end bootstraps).
    ``lambda = 0`` gives one-step Q-learning targets; ``lambda = 1`` discounted rewards to the
    episode's end or the rollout's, bootstrapped there (Monte Carlo within the rollout).

    Args:
      r_t: ``[T, N]`` rewards.
      discount_t: ``[T, N]`` ``gamma``, or 0 where the step terminated the episode.
      v_t: ``[T, N]`` ``max_a Q(x_{t+1}, a)``: values of each step's true successor (the next
        observation acted on, or where the episode was truncated its final observation).
      cut_t: ``[T, N]`` bool, the episode ended at this step (terminated or truncated): the trace
        stops there, so returns never mix two episodes.
      lambda_: trace decay in [0, 1].

    Returns:
      ``[T, N]`` returns (detached).
    """
    shapes = {t.shape for t in (r_t, discount_t, v_t, cut_t)}
    if len(shapes) != 1 or r_t.ndim != 2:
        raise ValueError(f"r_t, discount_t, v_t and cut_t must all be [T, N]; got {sorted(map(list, shapes))}")
    unit_interval("lambda_", lambda_)
    with torch.no_grad():
        trace = lambda_ * (~cut_t).to(r_t.dtype)
        # y_t = x_t + decay_t * y_{t+1} with x_t = r_t + discount_t * (1 - trace_t) * v_t and
        # decay_t = discount_t * trace_t; starting from y_T = v_{T-1} ends the rollout at r + discount * v
        x = r_t + discount_t * (1 - trace) * v_t
        return _backward_recursion(x, discount_t * trace, start=v_t[-1])


def ppo_losses(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip_coef: float,
    clip_vloss: bool,
) -> dict[str, torch.Tensor]:
    """PPO's clipped surrogate and value losses (Schulman et al. 2017) for a minibatch ``[B]``.

    ``ratio = exp(log_prob - old_log_prob)``;
    ``policy_loss = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))``;
    ``value_loss = 0.5 * mean((V - R)^2)``, or with ``clip_vloss`` the elementwise max of that and
    ``(old_V + clip(V - old_V, -eps, eps) - R)^2``. Also returns ``approx_kl`` (the
    ``mean((ratio - 1) - log ratio)`` estimator) and ``clipfrac`` (share of clipped ratios), detached.
    """
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    policy_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean()
    unclipped = (values - returns).square()
    if clip_vloss:
        clipped = (old_values + (values - old_values).clamp(-clip_coef, clip_coef) - returns).square()
        value_loss = 0.5 * torch.max(unclipped, clipped).mean()
    else:
        value_loss = 0.5 * unclipped.mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clipfrac = ((ratio - 1).abs() > clip_coef).float().mean()
    return {"policy_loss": policy_loss, "value_loss": value_loss, "approx_kl": approx_kl, "clipfrac": clipfrac}
