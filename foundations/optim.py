"""Optimizers written from their update equations: SGD, AdaGrad, RMSProp, Adam, AdamW.

Each is a :class:`torch.optim.Optimizer` subclass, so it works with ``zero_grad``,
``torch.optim.lr_scheduler``, gradient clipping and checkpoints like any PyTorch optimizer, and
follows ``torch.optim``'s arithmetic operation for operation: swapping ``foundations.optim.Adam``
for ``torch.optim.Adam`` gives the same parameter trajectory (tests check every option over 200
steps in float64). State uses ``torch.optim``'s key names (``step``, ``exp_avg``,
``exp_avg_sq``, ``max_exp_avg_sq``, ``sum``, ``square_avg``, ``grad_avg``,
``momentum_buffer``), so ``state_dict()`` round-trips and resumes a run exactly.

Notation (per parameter ``theta`` with gradient ``g_t`` at step ``t = 1, 2, ...``):

- SGD: ``g <- g + wd theta``; ``b_t = mu b_{t-1} + (1 - dampening) g`` (``b_1 = g``);
  ``d = g + mu b_t`` (Nesterov) or ``b_t``; ``theta <- theta - lr d``.
- AdaGrad (Duchi et al. 2011): ``s_t = s_{t-1} + g^2``;
  ``theta <- theta - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s_t) + eps)``.
- RMSProp (Tieleman & Hinton 2012; centered: Graves 2013): ``v_t = a v_{t-1} + (1 - a) g^2``;
  centered: ``m_t = a m_{t-1} + (1 - a) g``, ``v~ = v_t - m_t^2``; ``d = g / (sqrt(v~) + eps)``;
  with momentum ``b_t = mu b_{t-1} + d`` and ``theta <- theta - lr b_t``, else ``theta <- theta - lr d``.
- Adam (Kingma & Ba 2015): ``m_t = b1 m + (1 - b1) g``, ``v_t = b2 v + (1 - b2) g^2``
  (AMSGrad, Reddi et al. 2018: ``v^_t = max(v^_{t-1}, v_t)``);
  ``theta <- theta - lr / (1 - b1^t) * m_t / (sqrt(v_t) / sqrt(1 - b2^t) + eps)``;
  weight decay is L2 (added to ``g``).
- AdamW (Loshchilov & Hutter 2019): Adam with decoupled decay ``theta <- theta (1 - lr wd)``
  applied before the Adam step.

``maximize=True`` ascends (uses ``-g``). Sparse gradients are refused with a clear error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

Params = Iterable[Tensor] | Iterable[dict[str, Any]]

__all__ = ["SGD", "AdaGrad", "Adam", "AdamW", "RMSProp"]


def _non_negative(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _beta(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


class _FromScratch(torch.optim.Optimizer):
    """Shared step loop: for every parameter with a gradient, create its state on first use and
    apply :meth:`_update` under ``no_grad``. Subclasses validate their hyperparameters."""

    def _check_group(self, group: dict[str, Any]) -> None:  # overridden where a group can be wrong
        pass

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self._check_group(self.param_groups[-1])

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError(
                        f"{type(self).__name__} does not support sparse gradients; "
                        "use dense embeddings (sparse=False) or torch.optim.SparseAdam"
                    )
                if torch.is_complex(p):
                    raise RuntimeError(f"{type(self).__name__} supports real parameters only")
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p, group))
                if group["maximize"]:
                    grad = -grad
                self._update(p, grad, state, group)
        return loss


def _step_tensor() -> Tensor:
    # torch.optim keeps the step count as a float32 CPU tensor; matching it lets state dicts move
    # between these optimizers and torch.optim's.
    return torch.tensor(0.0, dtype=torch.float32)


def _next_step(state: dict[str, Any]) -> float:
    state["step"] += 1
    return float(state["step"])


class SGD(_FromScratch):
    """Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay.

    Args:
      params: parameters or parameter groups.
      lr: learning rate (> 0).
      momentum: momentum factor ``mu`` (>= 0).
      dampening: dampening of the gradient in the momentum buffer (>= 0).
      weight_decay: L2 penalty added to the gradient (>= 0).
      nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
      maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        _positive("lr", group["lr"])
        for name in ("momentum", "dampening", "weight_decay"):
            _non_negative(name, group[name])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening = 0, got momentum={group['momentum']}, "
                f"dampening={group['dampening']}"
            )

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        p.add_(grad, alpha=-group["lr"])


class AdaGrad(_FromScratch):
    """AdaGrad: per-coordinate steps scaled by the root of the summed squared gradients.

    Args:
      lr: learning rate (> 0); at step ``t`` it is ``lr / (1 + (t - 1) lr_decay)``.
      lr_decay: learning-rate decay (>= 0).
      weight_decay: L2 penalty added to the gradient (>= 0).
      initial_accumulator_value: starting value of the sum of squares (>= 0).
      eps: added to the root for stability (>= 0).
      maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        _positive("lr", group["lr"])
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            _non_negative(name, group[name])

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": _step_tensor(),
            "sum": torch.full_like(p, group["initial_accumulator_value"], memory_format=torch.preserve_format),
        }

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        step = _next_step(state)
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        state["sum"].addcmul_(grad, grad, value=1)
        std = state["sum"].sqrt().add_(group["eps"])
        p.addcdiv_(grad, std, value=-clr)


class RMSProp(_FromScratch):
    """RMSProp, optionally centered (divide by the gradient's estimated std, not its RMS) and with
    momentum on the scaled step.

    Args:
      lr: learning rate (> 0).
      alpha: smoothing constant of the running averages, in [0, 1).
      eps: added to the root for stability (>= 0).
      weight_decay: L2 penalty added to the gradient (>= 0).
      momentum: momentum factor (>= 0).
      centered: subtract the squared running mean of the gradient (Graves 2013).
      maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered, maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        _positive("lr", group["lr"])
        _beta("alpha", group["alpha"])
        for name in ("eps", "weight_decay", "momentum"):
            _non_negative(name, group[name])

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        zeros = lambda: torch.zeros_like(p, memory_format=torch.preserve_format)  # noqa: E731
        state: dict[str, Any] = {"step": _step_tensor(), "square_avg": zeros()}
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros()
        if group["centered"]:
            state["grad_avg"] = zeros()
        return state

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        _next_step(state)
        alpha = group["alpha"]
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(grad, 1 - alpha)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).addcdiv_(grad, avg)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.addcdiv_(grad, avg, value=-group["lr"])


class Adam(_FromScratch):
    """Adam with bias-corrected moment estimates, optional AMSGrad and L2 weight decay.

    Args:
      lr: learning rate (> 0).
      betas: decay rates ``(b1, b2)`` of the first and second moment estimates, each in [0, 1).
      eps: added to the denominator (>= 0).
      weight_decay: L2 penalty added to the gradient (>= 0). (Decoupled decay: :class:`AdamW`.)
      amsgrad: use the running maximum of the second moment (Reddi et al. 2018).
      maximize: ascend instead of descend.
    """

    _decoupled = False

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        _positive("lr", group["lr"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _beta("betas[0]", betas[0])
        _beta("betas[1]", betas[1])
        _non_negative("eps", group["eps"])
        _non_negative("weight_decay", group["weight_decay"])

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        zeros = lambda: torch.zeros_like(p, memory_format=torch.preserve_format)  # noqa: E731
        state: dict[str, Any] = {"step": _step_tensor(), "exp_avg": zeros(), "exp_avg_sq": zeros()}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros()
        return state

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        step = _next_step(state)
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if wd != 0:
            if self._decoupled:
                p.mul_(1 - lr * wd)
            else:
                grad = grad.add(p, alpha=wd)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        if group["amsgrad"]:
            second = state["max_exp_avg_sq"]
            torch.maximum(second, exp_avg_sq, out=second)
        else:
            second = exp_avg_sq
        denom = (second.sqrt() / bias_correction2_sqrt).add_(group["eps"])
        p.addcdiv_(exp_avg, denom, value=-step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``theta <- theta (1 - lr wd)`` before each Adam step.

    Same arguments as :class:`Adam`; ``weight_decay`` defaults to 0.01 as in ``torch.optim.AdamW``.
    """

    _decoupled = True

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": SGD,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
    "adamw": AdamW,
}
"""Name -> class, for experiment flags (``--optimizer adam``)."""
