"""Small network builders and the initialisation helpers used across agents."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn


def layer_init(layer: nn.Module, gain: float = math.sqrt(2.0), bias: float = 0.0) -> nn.Module:
    """Orthogonal weight init with ``gain`` and constant bias, in place; returns ``layer``.

    The PPO defaults (Huang et al., "The 37 implementation details of PPO"): gain sqrt(2) for
    hidden layers, 0.01 for the policy head and 1.0 for the value head.
    Works on ``nn.Linear`` and ``nn.Conv*`` (any module with ``weight`` and ``bias``).
    """
    if not hasattr(layer, "weight"):
        raise ValueError(f"layer_init needs a module with a weight, got {type(layer).__name__}")
    nn.init.orthogonal_(layer.weight, gain)
    if getattr(layer, "bias", None) is not None:
        nn.init.constant_(layer.bias, bias)
    return layer


def mlp(
    in_features: int,
    hidden_sizes: Sequence[int],
    out_features: int | None = None,
    activation: Callable[[], nn.Module] = nn.ReLU,
    output_activation: Callable[[], nn.Module] | None = None,
    layer_norm: bool = False,
    hidden_gain: float | None = None,
    output_gain: float | None = None,
    linear: Callable[[int, int], nn.Module] = nn.Linear,
) -> nn.Sequential:
    """A multi-layer perceptron ``[batch, in_features] -> [batch, out_features]``.

    Args:
      in_features: input width.
      hidden_sizes: widths of the hidden layers (may be empty: a single linear layer).
      out_features: output width; ``None`` ends after the last hidden layer's activation.
      activation: factory of the hidden activation module (``nn.ReLU``, ``nn.Tanh``...).
      output_activation: optional factory applied after the output layer.
      layer_norm: LayerNorm after each hidden linear layer (before the activation).
      hidden_gain / output_gain: when given, orthogonal init with that gain (see
        :func:`layer_init`); otherwise PyTorch's default init.
      linear: factory ``linear(in, out)`` of the layers (e.g. :class:`NoisyLinear`).

    The module exposes ``out_features`` (the width of its output).
    """
    if in_features < 1:
        raise ValueError(f"in_features must be >= 1, got {in_features}")
    if any(h < 1 for h in hidden_sizes):
        raise ValueError(f"hidden_sizes must all be >= 1, got {list(hidden_sizes)}")
    if out_features is None and not hidden_sizes:
        raise ValueError("mlp needs hidden_sizes or out_features (got neither)")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden_sizes:
        layer = linear(width, h)
        if hidden_gain is not None:
            layer_init(layer, hidden_gain)
        layers.append(layer)
        if layer_norm:
            layers.append(nn.LayerNorm(h))
        layers.append(activation())
        width = h
    if out_features is not None:
        if out_features < 1:
            raise ValueError(f"out_features must be >= 1, got {out_features}")
        layer = linear(width, out_features)
        if output_gain is not None:
            layer_init(layer, output_gain)
        layers.append(layer)
        if output_activation is not None:
            layers.append(output_activation())
        width = out_features
    net = nn.Sequential(*layers)
    net.out_features = width  # type: ignore[attr-defined]
    return net


class NoisyLinear(nn.Module):
    """A linear layer with learned factorised Gaussian noise on its weights (Fortunato et al. 2018).

    ``y = (mu_w + sigma_w * eps_w) x + mu_b + sigma_b * eps_b`` with ``eps_w = f(eps_out) f(eps_in)^T``,
    ``eps_b = f(eps_out)``, ``f(u) = sign(u) sqrt(|u|)``, ``u ~ N(0, 1)``. Initialisation as in
    the paper: ``mu ~ U(-1/sqrt(in), 1/sqrt(in))``, ``sigma = sigma0 / sqrt(in)``.

    The noise ``eps_in [in_features]``, ``eps_out [out_features]`` is a buffer (saved with the
    state, so a resumed run continues with the same draw): :meth:`reset_noise` draws a new one
    (:func:`reset_noise` does it for every such layer of a network). In training mode
    ``forward`` uses the current noise; in eval mode only the means, so evaluation is
    deterministic. ``[batch, in_features] -> [batch, out_features]``.
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"NoisyLinear needs in_features, out_features >= 1, got {in_features}, {out_features}")
        if not sigma0 > 0:
            raise ValueError(f"NoisyLinear sigma0 must be > 0, got {sigma0}")
        self.in_features, self.out_features, self.sigma0 = in_features, out_features, sigma0
        bound = 1.0 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_features))
        self.register_buffer("eps_out", torch.zeros(out_features))
        self.reset_noise()

    @staticmethod
    def _scaled_noise(n: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        u = torch.randn(n, generator=generator, device=like.device if generator is None else generator.device)
        return (u.sign() * u.abs().sqrt()).to(like.device)

    @torch.no_grad()
    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw new ``eps_in``, ``eps_out`` (from ``generator``, default torch's global one)."""
        self.eps_in.copy_(self._scaled_noise(self.in_features, self.eps_in, generator))
        self.eps_out.copy_(self._scaled_noise(self.out_features, self.eps_out, generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return nn.functional.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        bias = self.bias_mu + self.bias_sigma * self.eps_out
        return nn.functional.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, sigma0={self.sigma0}"


def reset_noise(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """:meth:`NoisyLinear.reset_noise` on every noisy layer of ``module`` (none: nothing happens)."""
    for m in module.modules():
        if isinstance(m, NoisyLinear):
            m.reset_noise(generator)


def num_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def polyak_update_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target <- tau * online + (1 - tau) * target`` in place, parameters and buffers.

    ``tau = 1`` is a hard copy.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {tau}")
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            if tau == 1.0:
                t.copy_(o)
            else:
                t.lerp_(o, tau)
        for tb, ob in zip(target.buffers(), online.buffers(), strict=True):
            tb.copy_(ob)


def fused_optimizers(device: str | torch.device) -> bool | None:
    """``fused=`` to give ``torch.optim.Adam``/``AdamW``/``SGD`` for parameters on ``device``.

    ``True`` where torch has fused kernels for that device type (CUDA; CPU since torch 2.4): one
    kernel for all parameters instead of a dozen ops per tensor, which is most of a small
    network's optimizer step. ``None`` (torch's default choice) elsewhere.
    """
    kind = torch.device(device).type
    if kind == "cuda":
        return True
    if kind == "cpu" and tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4):
        return True
    return None


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Within the block ``module`` is in eval mode (dropout off, batch norm on its running
    statistics, noisy layers on their means); its train/eval mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
