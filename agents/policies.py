"""Actor-critic policies: categorical (discrete) and diagonal Gaussian (continuous) heads.

Log-probabilities and entropies are written from their formulas (and tested against
``torch.distributions``), so sampling, evaluation and the losses are a handful of plain ops
that ``torch.compile`` traces as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import torch
from torch import nn
from torch.nn import functional as F

from agents.cores import AgentCore, CoreSpec, State
from foundations.encoders import NatureCNN
from foundations.nets import layer_init, mlp

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
    linear policy and value heads. Vector observations ``[features]`` use two separate MLP
    bodies (``actor_body``, ``critic_body``: ``nn.Sequential`` of ``nn.Linear`` and
    ``activation()`` modules, orthogonal init with gain sqrt(2)), or one shared ``trunk`` with
    ``shared=True``. Heads are initialised with gain 0.01 (policy) and 1 (value), the PPO
    convention. Continuous policies are diagonal Gaussians whose ``log_std`` ``[D]`` is a
    state-independent parameter. Acting (:meth:`actor`, :meth:`sample`) and learning
    (:meth:`evaluate`) run the same body modules, so replacing one of them
    (``policy.actor_body[1] = nn.ReLU()``) changes both.

    With a ``core`` (:class:`agents.cores.CoreSpec`) the policy has a memory: an ``encoder``
    (the MLP or the Nature CNN) feeds an :class:`agents.cores.AgentCore` whose output feeds both
    heads (CleanRL's ``ppo_atari_lstm`` layout). Such a policy runs on sequences:
    :meth:`sequence` and :meth:`evaluate_sequence` take ``[T, B, ...]`` observations, the core
    state before the first step and the ``[T, B]`` episode-start mask.

    Args:
      obs_shape: one observation's shape.
      num_actions: number of discrete actions (``0`` for continuous).
      action_dim: continuous action size (ignored for discrete).
      hidden_sizes: MLP widths (vector observations).
      shared: one trunk for policy and value (always true for images).
      log_std_init: initial ``log_std`` of a Gaussian policy.
      activation: factory of the MLP bodies' hidden activation (``nn.Tanh``, the PPO default).
      core: a memory core between the encoder and the heads (``None``: the feed-forward policy above).
    """

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int = 0, action_dim: int = 0,
                 hidden_sizes: tuple[int, ...] = (64, 64), shared: bool = False, log_std_init: float = 0.0,
                 activation: Callable[[], nn.Module] = nn.Tanh, core: CoreSpec | None = None) -> None:
        super().__init__()
        if (num_actions > 0) == (action_dim > 0):
            raise ValueError(f"give either num_actions (discrete) or action_dim (continuous), got {num_actions}, {action_dim}")
        self.discrete = num_actions > 0
        out = num_actions if self.discrete else action_dim
        self.image = len(obs_shape) == 3
        self.trunk: nn.Module | None = None
        self.core: AgentCore | None = None
        if core is not None:
            if self.image:
                self.encoder: nn.Module = NatureCNN(obs_shape, orthogonal_init=True)
            elif len(obs_shape) == 1:
                self.encoder = mlp(obs_shape[0], hidden_sizes, activation=activation, hidden_gain=math.sqrt(2))
            else:
                raise ValueError(f"ActorCritic needs [C, H, W] image or [features] vector observations, got {list(obs_shape)}")
            self.core = AgentCore(self.encoder.out_features, core)
            actor_features = critic_features = self.core.output_size
        elif self.image:
            self.trunk = NatureCNN(obs_shape, orthogonal_init=True)
            actor_features = critic_features = self.trunk.out_features
        elif len(obs_shape) == 1:
            body = dict(activation=activation, hidden_gain=math.sqrt(2))
            if shared:
                self.trunk = mlp(obs_shape[0], hidden_sizes, **body)
                actor_features = critic_features = self.trunk.out_features
            else:
                self.actor_body = mlp(obs_shape[0], hidden_sizes, **body)
                self.critic_body = mlp(obs_shape[0], hidden_sizes, **body)
                actor_features, critic_features = self.actor_body.out_features, self.critic_body.out_features
        else:
            raise ValueError(f"ActorCritic needs [C, H, W] image or [features] vector observations, got {list(obs_shape)}")
        self.policy_head = layer_init(nn.Linear(actor_features, out), gain=0.01)
        self.value_head = layer_init(nn.Linear(critic_features, 1), gain=1.0)
        self.log_std = None if self.discrete else nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        self.register_buffer("action_low", None)  # Box bounds, set by for_space
        self.register_buffer("action_high", None)

    @classmethod
    def for_space(cls, obs_shape: tuple[int, ...], action_space: gym.Space, hidden_sizes: tuple[int, ...] = (64, 64),
                  shared: bool = False, log_std_init: float = 0.0, core: CoreSpec | None = None) -> ActorCritic:
        """The policy for a Gymnasium ``Discrete`` or 1-D ``Box`` action space (Box bounds kept for :meth:`clip`)."""
        if isinstance(action_space, gym.spaces.Discrete):
            return cls(obs_shape, num_actions=int(action_space.n), hidden_sizes=hidden_sizes, shared=shared, core=core)
        if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            policy = cls(obs_shape, action_dim=action_space.shape[0], hidden_sizes=hidden_sizes, shared=shared,
                         log_std_init=log_std_init, core=core)
            policy.action_low = torch.as_tensor(action_space.low, dtype=torch.float32)
            policy.action_high = torch.as_tensor(action_space.high, dtype=torch.float32)
            return policy
        raise ValueError(f"policy-gradient agents support Discrete or 1-D Box action spaces, got {action_space}")

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        """Continuous actions clipped to the action space's bounds (discrete: unchanged)."""
        if self.action_low is None:
            return actions
        return torch.maximum(torch.minimum(actions, self.action_high), self.action_low)

    @property
    def separate(self) -> bool:
        """Separate actor and critic bodies (vector observations, ``shared=False``): :meth:`actor`
        alone costs half of :meth:`forward`."""
        return self.trunk is None and self.core is None

    @property
    def recurrent(self) -> bool:
        """The policy has a core: it acts and learns on sequences with a state."""
        return self.core is not None

    def initial_state(self, batch_size: int) -> State:
        """The core's state before any step, for ``batch_size`` envs."""
        assert self.core is not None, "a feed-forward policy has no state"
        return self.core.initial_state(batch_size)

    def sequence(self, obs: torch.Tensor, state: State,
                 starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, State]:
        """``obs`` ``[T, B, *obs_shape]``, the state before step 0, ``starts`` ``[T, B]`` ->
        (logits ``[T, B, A]`` or means ``[T, B, D]``, values ``[T, B]``, the state after step T-1)."""
        assert self.core is not None, "sequence() needs a policy with a core"
        steps, batch = obs.shape[:2]
        features = self.encoder(obs.flatten(0, 1) if self.image else obs.flatten(0, 1).float())
        y, state = self.core(features.view(steps, batch, -1), state, starts)
        return self.policy_head(y), self.value_head(y).squeeze(-1), state

    def evaluate_sequence(self, obs: torch.Tensor, actions: torch.Tensor, state: State, starts: torch.Tensor,
                          bptt: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log-probs, entropies, values), each ``[T, B]``, of ``actions`` ``[T, B, ...]`` taken
        at ``obs`` ``[T, B, ...]`` from ``state`` with episode starts ``starts`` ``[T, B]``.
        ``bptt``: gradients flow back at most this many steps (the state is detached between
        chunks; the values computed are the same)."""
        steps, batch = obs.shape[:2]
        chunk = steps if bptt is None else bptt
        params, values = [], []
        for at in range(0, steps, chunk):
            if at:
                state = tuple(t.detach() for t in state)
            p, v, state = self.sequence(obs[at:at + chunk], state, starts[at:at + chunk])
            params.append(p)
            values.append(v)
        flat = torch.cat(params).flatten(0, 1)
        log_prob = self.log_prob(flat, actions.flatten(0, 1)).view(steps, batch)
        if self.discrete:
            entropy = categorical_entropy(flat).view(steps, batch)
        else:
            entropy = gaussian_entropy(self.log_std, steps * batch).view(steps, batch)
        return log_prob, entropy, torch.cat(values)

    def _shared(self, obs: torch.Tensor) -> torch.Tensor:
        """The shared trunk's features ``[B, hidden]`` (images: uint8 frames, scaled inside)."""
        return self.trunk(obs if self.image else obs.float())

    def actor(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` ``[B, *obs_shape]`` -> logits ``[B, A]`` or Gaussian means ``[B, D]``."""
        if self.trunk is not None:
            return self.policy_head(self._shared(obs))
        return self.policy_head(self.actor_body(obs.float()))

    def critic(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` ``[B, *obs_shape]`` -> values ``[B]``."""
        if self.trunk is not None:
            return self.value_head(self._shared(obs)).squeeze(-1)
        return self.value_head(self.critic_body(obs.float())).squeeze(-1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` ``[B, *obs_shape]`` -> (logits ``[B, A]`` or means ``[B, D]``, values ``[B]``)."""
        if self.trunk is not None:  # one shared trunk, run once for both heads
            h = self._shared(obs)
            return self.policy_head(h), self.value_head(h).squeeze(-1)
        return self.actor(obs), self.critic(obs)

    def draw(self, params: torch.Tensor, generator: torch.Generator | None = None,
             deterministic: bool = False) -> torch.Tensor:
        """Actions ``[B]`` int64 or ``[B, D]`` (unclipped) given :meth:`actor`'s output ``params``.

        Discrete actions by Gumbel-max (``argmax(logits + Gumbel noise)``: one uniform draw per
        logit, the same law as ``Categorical(logits).sample()``); Gaussian ones as
        ``mean + std * N(0, 1)``. ``deterministic``: the mode (argmax / mean).
        """
        if self.discrete:
            if deterministic:
                return params.argmax(-1)
            u = torch.rand(params.shape, device=params.device, generator=generator).clamp_(min=1e-12)
            return (params - torch.log(-torch.log(u))).argmax(-1)
        if deterministic:
            return params
        return params + torch.randn(params.shape, device=params.device, generator=generator) * self.log_std.exp()

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``[B]`` of ``actions`` under :meth:`actor`'s output ``params``."""
        if self.discrete:
            return categorical_log_prob(params, actions)
        return gaussian_log_prob(actions, params, self.log_std)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None,
               deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions ``[B]`` int64 or ``[B, D]`` unclipped, log-probs ``[B]``, values ``[B]``)."""
        params, values = self.forward(obs)
        actions = self.draw(params, generator, deterministic)
        return actions, self.log_prob(params, actions), values

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log-probs ``[B]``, entropies ``[B]``, values ``[B]``) of ``actions`` taken at ``obs``."""
        params, values = self.forward(obs)
        if self.discrete:
            return self.log_prob(params, actions), categorical_entropy(params), values
        return self.log_prob(params, actions), gaussian_entropy(self.log_std, obs.shape[0]), values

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """``nn.Module.load_state_dict``, also reading checkpoints written before the MLP bodies
        were two ``nn.Sequential`` modules (``bodies.weights.L`` / ``bodies.biases.L``
        ``[2, out, in]``: member 0 the actor's layer ``L``, member 1 the critic's)."""
        if any(k.startswith("bodies.") for k in state_dict):
            state_dict = dict(state_dict)
            for key in [k for k in state_dict if k.startswith("bodies.")]:
                _, kind, layer = key.split(".")
                value = state_dict.pop(key)
                name = "weight" if kind == "weights" else "bias"
                for member, body in enumerate(("actor_body", "critic_body")):
                    state_dict[f"{body}.{2 * int(layer)}.{name}"] = value[member]
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
