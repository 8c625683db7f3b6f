"""PPO's minibatch loss and its gradient written out, for stacked-MLP actor-critics.

For the vector-observation policy (:class:`agents.policies.ActorCritic` with ``bodies``, a
:class:`foundations.nets.StackedMLP` of tanh layers, and linear heads) the loss of
:func:`agents.targets.ppo_losses` minus the entropy bonus plus the weighted value loss has a
gradient that takes a dozen matrix products and elementwise ops to write down; autograd
records and replays ~70 graph nodes for it. :func:`ppo_minibatch_grads` computes the forward
pass without a graph, the loss terms (the same values as the autograd path) and sets every
parameter's ``.grad`` to what ``loss.backward()`` would give (tested equal), ties included:
``torch.max`` splits the gradient of equal arguments in half, so at ``ratio == 1`` (the first
minibatch of each rollout) both surrogate branches carry half of it, as here.

Derivatives used (per sample ``i``, batch ``B``):

- surrogate ``L = max(-A r, -A clip(r))``, ``r = exp(logp - logp_old)``:
  ``dL/dlogp = r (-A) (w_u + w_c [1-eps <= r <= 1+eps])`` with ``w_u, w_c`` the max's weights;
- categorical: ``dlogp/dz = onehot(a) - p``; entropy ``dH/dz = -p (log p + H)``;
- Gaussian: ``dlogp/dmu = (x - mu) / sigma^2``, ``dlogp/dlog_sigma = z^2 - 1``, ``dH/dlog_sigma = 1``;
- value ``0.5 max((v - R)^2, (v_old + clip(v - v_old, -eps, eps) - R)^2)``: the same max weights,
  the clipped branch passing gradient only inside the clip range;
- tanh layers: ``dz = dh (1 - h^2)``, ``dW = dz^T h_prev``, ``db = sum dz``, ``dh_prev = dz W``.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _max_share(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sign(a - b)``: how ``torch.max(a, b)``'s backward shares the gradient. ``a`` gets
    ``(1 + s) / 2`` of it and ``b`` ``(1 - s) / 2``: all, none, or half each on ties."""
    return torch.sign(a - b)


def ppo_minibatch_grads(
    policy: torch.nn.Module,
    obs: torch.Tensor,
    actions: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip_coef: float,
    clip_vloss: bool,
    ent_coef: float,
    vf_coef: float,
) -> dict[str, torch.Tensor]:
    """Set ``.grad`` of every parameter of ``policy`` to the gradient of
    ``policy_loss - ent_coef * entropy + vf_coef * value_loss`` on this minibatch.

    Args:
      policy: an ``ActorCritic`` with ``stacked`` bodies (vector observations, separate MLPs).
      obs: ``[B, features]``; actions: ``[B]`` int64 or ``[B, D]`` float (unclipped samples).
      old_log_prob, advantages (already normalised if wanted), old_values, returns: ``[B]``.

    Returns:
      ``{"policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"}``: 0-d tensors equal to
      what :func:`agents.targets.ppo_losses` and the policy's mean entropy give.
    """
    bodies, head, vhead = policy.bodies, policy.policy_head, policy.value_head
    n = obs.shape[0]
    with torch.no_grad():
        # ---- forward, keeping each layer's output
        x = obs.float()
        hs = [x.expand(2, *x.shape)]
        for w, b in zip(bodies.weights, bodies.biases, strict=True):
            hs.append(torch.baddbmm(b.unsqueeze(1), hs[-1], w.transpose(1, 2)).tanh_())
        h_pi, h_v = hs[-1][0], hs[-1][1]
        params = torch.addmm(head.bias, h_pi, head.weight.t())  # [B, A] logits or [B, D] means
        values = torch.addmm(vhead.bias, h_v, vhead.weight.t()).squeeze(-1)

        if policy.discrete:
            logp_all = F.log_softmax(params, dim=-1)
            p = logp_all.exp()
            a = actions.long().unsqueeze(-1)
            log_prob = logp_all.gather(-1, a).squeeze(-1)
            ent = -(p * logp_all).sum(-1)  # [B]
        else:
            log_std = policy.log_std
            inv_std = torch.exp(-log_std)
            z = (actions - params) * inv_std
            log_prob = (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(-1)
            ent = (0.5 + _HALF_LOG_2PI + log_std).sum(-1).expand(n)

        # ---- loss terms (as ppo_losses computes them)
        log_ratio = log_prob - old_log_prob
        ratio = log_ratio.exp()
        clipped_ratio = ratio.clamp(1 - clip_coef, 1 + clip_coef)
        surr_u, surr_c = -advantages * ratio, -advantages * clipped_ratio
        policy_loss = torch.max(surr_u, surr_c).mean()
        err_u = values - returns
        if clip_vloss:
            dv = values - old_values
            dv_clipped = dv.clamp(-clip_coef, clip_coef)
            err_c = old_values + dv_clipped - returns
            sq_u, sq_c = err_u.square(), err_c.square()
            value_loss = 0.5 * torch.max(sq_u, sq_c).mean()
        else:
            value_loss = 0.5 * err_u.square().mean()
        entropy = ent.mean()
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clipfrac = ((ratio - 1).abs() > clip_coef).float().mean()

        # ---- gradient of the total loss w.r.t. the heads' outputs
        # d max(su, sc) / d logp = su * (w_u + w_c * inside) with w_u = (1 + s) / 2, w_c = (1 - s) / 2
        s = _max_share(surr_u, surr_c)
        inside = (clipped_ratio == ratio).to(ratio.dtype)  # the clamp passes the gradient
        g_logp = surr_u * ((1 + s) + (1 - s) * inside) * (0.5 / n)  # [B]
        if clip_vloss:
            s = _max_share(sq_u, sq_c)
            v_inside = (dv_clipped == dv).to(dv.dtype)
            g_values = ((1 + s) * err_u + (1 - s) * v_inside * err_c) * (0.5 * vf_coef / n)
        else:
            g_values = err_u * (vf_coef / n)
        if policy.discrete:
            g_params = -p * g_logp.unsqueeze(-1)
            g_params.scatter_add_(-1, a, g_logp.unsqueeze(-1))  # onehot(a) - p
            g_params += (ent_coef / n) * p * (logp_all + ent.unsqueeze(-1))
            g_log_std = None
        else:
            g_params = g_logp.unsqueeze(-1) * z * inv_std
            g_log_std = (g_logp.unsqueeze(-1) * (z.square() - 1)).sum(0) - ent_coef

        # ---- backward through the heads and the stacked tanh bodies
        head.weight.grad = g_params.t().mm(h_pi)
        head.bias.grad = g_params.sum(0)
        vhead.weight.grad = g_values.unsqueeze(0).mm(h_v)
        vhead.bias.grad = g_values.sum(0, keepdim=True)
        if g_log_std is not None:
            log_std.grad = g_log_std
        g_h = hs[-1].new_empty(hs[-1].shape)  # [2, B, hidden]
        torch.mm(g_params, head.weight, out=g_h[0])
        torch.mul(g_values.unsqueeze(-1), vhead.weight, out=g_h[1])
        for layer in range(len(bodies.weights) - 1, -1, -1):
            h, h_prev = hs[layer + 1], hs[layer]
            g_z = torch.ops.aten.tanh_backward(g_h, h)  # g_h * (1 - h^2), autograd's own kernel
            w = bodies.weights[layer]
            w.grad = torch.bmm(g_z.transpose(1, 2), h_prev)
            bodies.biases[layer].grad = g_z.sum(1)
            if layer > 0:
                g_h = torch.bmm(g_z, w)
    return {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
            "approx_kl": approx_kl, "clipfrac": clipfrac}
