"""Actor-critic policies: categorical (discrete) and diagonal Gaussian (continuous) heads.

Log-probabilities and entropies are written out from their formulas (and tested against
``torch.distributions``) so that sampling, evaluation and the losses cost a handful of ops.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from foundations.encoders import NatureCNN
from foundations.host_mlp import HostChain, HostMLP, HostStackedMLP
from foundations.nets import StackedMLP, layer_init, mlp

_LOG_2PI = math.log(2 * math.pi)


def categorical_log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[a]``: ``logits`` ``[B, A]``, ``actions`` ``[B]`` int -> ``[B]``."""
    return F.log_softmax(logits, dim=-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    """``-sum_a p(a) log p(a)``: ``[B, A]`` -> ``[B]``."""
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Diagonal Gaussian log-density summed over action dims: ``[B, D]`` -> ``[B]``."""
    z = (x - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std - 0.5 * _LOG_2PI).sum(-1)


def gaussian_entropy(log_std: torch.Tensor, batch: int) -> torch.Tensor:
    """Entropy of a diagonal Gaussian with state-independent ``log_std`` ``[D]``, as ``[batch]``."""
    return (0.5 + 0.5 * _LOG_2PI + log_std).sum(-1).expand(batch)


class ActorCritic(nn.Module):
    """Policy and value function for discrete or continuous actions.

    Image observations ``[C, H, W]`` use a shared :class:`NatureCNN` trunk (orthogonal init) with
    linear policy and value heads; vector observations ``[features]`` use two separate tanh MLP
    bodies, evaluated together as one :class:`foundations.nets.StackedMLP` (``bodies``: member 0
    the actor's, member 1 the critic's), or one shared MLP with ``shared=True``. Heads are initialised with gain 0.01 (policy) and 1 (value),
    the PPO convention. Continuous policies are diagonal Gaussians whose ``log_std`` ``[D]`` is a
    state-independent parameter.

    Args:
      obs_shape: one observation's shape.
      num_actions: number of discrete actions (``0`` for continuous).
      action_dim: continuous action size (ignored for discrete).
      hidden_sizes: MLP widths (vector observations).
      shared: one trunk for policy and value (always true for images).
      log_std_init: initial ``log_std`` of a Gaussian policy.
    """

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int = 0, action_dim: int = 0,
                 hidden_sizes: tuple[int, ...] = (64, 64), shared: bool = False, log_std_init: float = 0.0) -> None:
        super().__init__()
        if (num_actions > 0) == (action_dim > 0):
            raise ValueError(f"give either num_actions (discrete) or action_dim (continuous), got {num_actions}, {action_dim}")
        self.discrete = num_actions > 0
        out = num_actions if self.discrete else action_dim
        self.image = len(obs_shape) == 3
        if self.image:
            self.trunk: nn.Module | None = NatureCNN(obs_shape, orthogonal_init=True)
            features = actor_features = self.trunk.out_features
        elif len(obs_shape) == 1:
            if shared:
                self.trunk = mlp(obs_shape[0], hidden_sizes, activation=nn.Tanh, hidden_gain=math.sqrt(2))
                features = actor_features = self.trunk.out_features
            else:  # the actor's and the critic's bodies as one stacked pair: [2, B, hidden]
                self.trunk = None
                self.bodies = StackedMLP(2, obs_shape[0], hidden_sizes, "tanh", hidden_gain=math.sqrt(2))
                actor_features = features = self.bodies.out_features
        else:
            raise ValueError(f"ActorCritic needs [C, H, W] image or [features] vector observations, got {list(obs_shape)}")
        self.stacked = self.trunk is None
        self.policy_head = layer_init(nn.Linear(actor_features, out), gain=0.01)
        self.value_head = layer_init(nn.Linear(features, 1), gain=1.0)
        self.log_std = None if self.discrete else nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        self.register_buffer("action_low", None)  # Box bounds, set by for_space
        self.register_buffer("action_high", None)
        self._build_host()

    def _build_host(self) -> None:
        """NumPy mirrors for sampling on the CPU (see :meth:`sample`): ``_host`` (bodies, policy
        head, value head) and ``_actor`` (the actor's body and head as one chain); ``None``
        where the parameters are not float CPU tensors."""
        self._host = self._actor = None
        if self.stacked:
            bodies = HostStackedMLP.build(self.bodies)
            heads = HostMLP.build([self.policy_head]), HostMLP.build([self.value_head])
            if bodies is not None and None not in heads:
                self._host = (bodies, *heads)
                act = self.bodies.activation
                self._actor = HostChain.build(
                    [(w, b, act, 0) for w, b in zip(self.bodies.weights, self.bodies.biases, strict=True)]
                    + [(self.policy_head.weight, self.policy_head.bias, None, None)])

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> ActorCritic:
        """``to``, ``cuda``, ``double``...: the mirrors follow the parameters (or are dropped)."""
        out = super()._apply(fn, recurse)
        self._build_host()
        return out

    @classmethod
    def for_space(cls, obs_shape: tuple[int, ...], action_space: gym.Space, hidden_sizes: tuple[int, ...] = (64, 64),
                  shared: bool = False, log_std_init: float = 0.0) -> ActorCritic:
        """The policy for a Gymnasium ``Discrete`` or 1-D ``Box`` action space (Box bounds kept for :meth:`clip`)."""
        if isinstance(action_space, gym.spaces.Discrete):
            return cls(obs_shape, num_actions=int(action_space.n), hidden_sizes=hidden_sizes, shared=shared)
        if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            policy = cls(obs_shape, action_dim=action_space.shape[0], hidden_sizes=hidden_sizes, shared=shared,
                         log_std_init=log_std_init)
            policy.action_low = torch.as_tensor(action_space.low, dtype=torch.float32)
            policy.action_high = torch.as_tensor(action_space.high, dtype=torch.float32)
            return policy
        raise ValueError(f"policy-gradient agents support Discrete or 1-D Box action spaces, got {action_space}")

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        """Continuous actions clipped to the action space's bounds (discrete: unchanged)."""
        if self.action_low is None:
            return actions
        return torch.maximum(torch.minimum(actions, self.action_high), self.action_low)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` ``[B, *obs_shape]`` -> (logits ``[B, A]`` or means ``[B, D]``, values ``[B]``)."""
        if self.stacked:  # actor and critic bodies in one batched pass
            h = self.bodies(obs.float())
            head, value = self.policy_head, self.value_head
            return F.linear(h[0], head.weight, head.bias), F.linear(h[1], value.weight, value.bias).squeeze(-1)
        h = self.trunk(obs if self.image else obs.float())  # one shared trunk
        return self.policy_head(h), self.value_head(h).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """Values ``[B]``."""
        return self.forward(obs)[1]

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None,
               deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions ``[B]`` int64 or ``[B, D]`` unclipped, log-probs ``[B]``, values ``[B]``).

        Without gradients, separate MLPs on the CPU sample through NumPy mirrors of their
        parameters (:mod:`foundations.host_mlp`): the same draws from ``generator``, the same
        formulas, a fifth of the cost per environment step.
        """
        if self._host is not None and obs.is_cpu and not torch.is_grad_enabled():
            return self._sample_host(obs, generator, deterministic)
        params, values = self.forward(obs)
        if self.discrete:
            if deterministic:
                actions = params.argmax(-1)
            else:  # Gumbel-max: one uniform draw per logit
                u = torch.rand(params.shape, device=params.device, generator=generator).clamp_(min=1e-12)
                actions = (params - torch.log(-torch.log(u))).argmax(-1)
            return actions, categorical_log_prob(params, actions), values
        if deterministic:
            actions = params
        else:
            noise = torch.randn(params.shape, device=params.device, generator=generator)
            actions = params + noise * self.log_std.exp()
        return actions, gaussian_log_prob(actions, params, self.log_std), values

    def sample_actions(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions ``[B]`` or ``[B, D]`` (unclipped), drawn as :meth:`sample` draws them (the same
        random numbers from ``generator``) without the log-probs and values; for stacked bodies
        on the CPU only the actor's half of the network runs, in NumPy."""
        if self._actor is None or not obs.is_cpu or torch.is_grad_enabled():
            return self.sample(obs, generator)[0]
        params = self._actor(obs.numpy())  # [B, A] logits or [B, D] means, a new array
        if self.discrete:  # Gumbel-max as in sample, in place: params - log(-log(max(u, 1e-12)))
            g = torch.rand(params.shape, generator=generator).numpy()
            np.maximum(g, np.float32(1e-12), out=g)
            np.log(g, out=g)
            np.negative(g, out=g)
            np.log(g, out=g)
            return torch.from_numpy(np.subtract(params, g, out=params).argmax(-1))
        noise = torch.randn(params.shape, generator=generator).numpy()
        return torch.from_numpy(params + noise * np.exp(self.log_std.detach().numpy()))

    def _sample_host(self, obs: torch.Tensor, generator: torch.Generator | None,
                     deterministic: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`sample` computed with NumPy (CPU, separate MLPs, no gradients)."""
        bodies, actor, critic = self._host
        h = bodies(obs.numpy())  # [2, B, hidden]
        params = actor(h[0])  # [B, A] logits or [B, D] means, float32
        values = critic(h[1])[:, 0]
        if self.discrete:
            if deterministic:
                actions = params.argmax(-1)
            else:
                u = np.maximum(torch.rand(params.shape, generator=generator).numpy(), np.float32(1e-12))
                actions = (params - np.log(-np.log(u))).argmax(-1)
            z = params - params.max(-1, keepdims=True)
            log_probs = z[np.arange(len(z)), actions] - np.log(np.exp(z).sum(-1))
            return torch.from_numpy(actions), torch.from_numpy(log_probs), torch.from_numpy(values)
        log_std = self.log_std.detach().numpy()
        noise = np.zeros_like(params) if deterministic else torch.randn(params.shape, generator=generator).numpy()
        actions = params + noise * np.exp(log_std)
        z = (actions - params) * np.exp(-log_std)  # gaussian_log_prob's formula, on the sample
        log_probs = (-0.5 * np.square(z) - log_std - np.float32(0.5 * _LOG_2PI)).sum(-1)
        return torch.from_numpy(actions), torch.from_numpy(log_probs), torch.from_numpy(values)

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log-probs ``[B]``, entropies ``[B]``, values ``[B]``) of ``actions`` taken at ``obs``."""
        params, values = self.forward(obs)
        if self.discrete:  # one log-softmax serves both
            logp = F.log_softmax(params, dim=-1)
            log_prob = logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
            return log_prob, -(logp.exp() * logp).sum(-1), values
        return gaussian_log_prob(actions, params, self.log_std), gaussian_entropy(self.log_std, obs.shape[0]), values
