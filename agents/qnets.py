"""Q-networks shared by the value-based agents (:mod:`agents.dqn`, :mod:`agents.pqn`).

``QNetwork`` maps observations to action values: a Nature CNN trunk for image observations, an MLP
for vector ones, with the options the DQN family and PQN need (dueling head, C51 atoms, noisy
layers, LayerNorm).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from foundations.encoders import NatureCNN
from foundations.nets import NoisyLinear, mlp


class QNetwork(nn.Module):
    """``[batch, *obs_shape] -> [batch, num_actions]`` action values.

    The trunk is :class:`NatureCNN` for image observations ``[C, H, W]`` (uint8 frames are
    scaled by 1/255 inside) and an MLP for vector observations ``[features]``. The dueling head
    (Wang et al. 2016) computes ``V(s) + A(s, a) - mean_a A(s, a)`` from the trunk's features,
    so the advantages it adds are mean-zero over actions.

    With ``num_atoms > 1`` the heads give, per action, logits over the ``atoms`` of ``support``
    (C51, Bellemare et al. 2017; dueling combines logits as in Rainbow) and the action values are
    the distributions' means. With ``noisy_sigma`` the fully connected layers (trunk and heads)
    are :class:`NoisyLinear` with that ``sigma0`` (Fortunato et al. 2018).
    """

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, dueling: bool = False,
                 hidden_sizes: tuple[int, ...] = (120, 84), channels_last: bool = False, num_atoms: int = 1,
                 v_min: float = -10.0, v_max: float = 10.0, noisy_sigma: float | None = None,
                 cnn_features: int = 512, layer_norm: bool = False) -> None:
        super().__init__()
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        if num_atoms < 1 or (num_atoms > 1 and not v_min < v_max):
            raise ValueError(f"num_atoms must be >= 1 (and v_min < v_max when > 1), got {num_atoms}, [{v_min}, {v_max}]")
        linear: Callable[[int, int], nn.Module] = nn.Linear
        if noisy_sigma is not None:
            linear = functools.partial(NoisyLinear, sigma0=noisy_sigma)
        if len(obs_shape) == 3:
            self.trunk: nn.Module = NatureCNN(obs_shape, features_dim=cnn_features, linear=linear, layer_norm=layer_norm)
        elif len(obs_shape) == 1:
            self.trunk = mlp(obs_shape[0], hidden_sizes, linear=linear, layer_norm=layer_norm)
        else:
            raise ValueError(f"QNetwork needs [C, H, W] image or [features] vector observations, got {list(obs_shape)}")
        features = self.trunk.out_features
        self.num_actions, self.num_atoms = num_actions, num_atoms
        self.dueling = dueling
        if dueling:
            self.value = linear(features, num_atoms)
            self.advantage = linear(features, num_actions * num_atoms)
        else:
            self.head = linear(features, num_actions * num_atoms)
        if num_atoms > 1:
            self.register_buffer("support", torch.linspace(v_min, v_max, num_atoms))
        self.image = len(obs_shape) == 3
        # channels-last (NHWC) convolutions are faster on CPU (oneDNN) and on tensor-core GPUs
        self.channels_last = channels_last and self.image
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` ``[batch, *obs_shape]`` -> ``[batch, num_actions, num_atoms]``: per action, the
        value itself (``num_atoms == 1``) or the logits of its return distribution."""
        if self.channels_last:
            obs = obs.contiguous(memory_format=torch.channels_last)
        h = self.trunk(obs if self.image else obs.float())
        if not self.dueling:
            return self.head(h).view(-1, self.num_actions, self.num_atoms)
        adv = self.advantage(h).view(-1, self.num_actions, self.num_atoms)
        return self.value(h).view(-1, 1, self.num_atoms) + adv - adv.mean(dim=1, keepdim=True)

    def values(self, logits: torch.Tensor) -> torch.Tensor:
        """Means of return distributions given by their logits ``[..., num_atoms]`` -> ``[...]``
        (C51's action values)."""
        return (logits.softmax(dim=-1) * self.support).sum(dim=-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs`` ``[batch, *obs_shape]`` -> ``[batch, num_actions]`` action values (C51: the
        means of the return distributions, :meth:`values`)."""
        logits = self.logits(obs)
        return logits.squeeze(2) if self.num_atoms == 1 else self.values(logits)
