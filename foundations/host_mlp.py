"""NumPy forward passes of small CPU MLPs, for acting one environment step at a time.

Acting in a vector-observation env runs a network of a few thousand weights on a handful of
observations per step. PyTorch spends 5-10 us of dispatch per operator on that (plus the
``inference_mode`` context and ``nn.Module`` calls), NumPy about 1 us: a 3-layer MLP costs
~60 us through torch and ~10 us through :class:`HostMLP`. The mirror holds *views* of the
module's CPU parameters (``Tensor.numpy()`` shares memory), so in-place optimizer steps,
``load_state_dict`` and Polyak updates show up without copying; if a parameter is replaced
(``module.to(...)``, reassignment) the views are rebuilt on the next call.

It computes the same function as the module in the same precision; results agree to float
rounding (tested within 1e-5), not bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Identity: None}


class _Mirror:
    @classmethod
    def build(cls, *args: object) -> _Mirror | None:
        """A mirror, or ``None`` where this class cannot serve the module(s)."""
        try:
            return cls(*args)
        except ValueError:
            return None


_Op = tuple[np.ndarray, np.ndarray | None] | str  # (weight^T [in, out], bias [out] or None), "relu", "tanh"


class _Chain(_Mirror):
    """A NumPy forward through ``_ops`` built from views of ``_watched()`` parameters, rebuilt
    when one of those moves to new storage (subclasses say which parameters and which ops)."""

    dtype: type[np.floating]

    def _watched(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def _build_ops(self) -> list[_Op]:
        raise NotImplementedError

    def _check(self, name: str) -> None:
        params = self._watched()
        for p in params:
            if p.device.type != "cpu" or p.dtype not in (torch.float32, torch.float64):
                raise ValueError(f"{name} needs float32/float64 CPU parameters, got {p.dtype} on {p.device}")
        self.dtype = np.float32 if params[0].dtype == torch.float32 else np.float64
        self._refresh()

    def _refresh(self) -> None:
        self._ptrs = [p.data_ptr() for p in self._watched()]
        self._ops = self._build_ops()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``[batch, in_features]`` -> ``[batch, out_features]`` in the parameters' dtype (a new array)."""
        if [p.data_ptr() for p in self._watched()] != self._ptrs:
            self._refresh()
        h = np.asarray(x, dtype=self.dtype)
        owned = False  # activations work in place on arrays made here, never on the caller's
        for op in self._ops:
            if op == "relu":
                h = np.maximum(h, 0.0, out=h if owned else None)
            elif op == "tanh":
                h = np.tanh(h, out=h if owned else None)
            else:
                w, b = op
                h = h @ w
                if b is not None:
                    h += b
            owned = True
        return h


class HostMLP(_Chain):
    """``x [batch, in_features] -> [batch, out_features]`` with NumPy, for a chain of ``nn.Linear``/``ReLU``/``Tanh``.

    Args:
      modules: the layers in order (e.g. an ``nn.Sequential``'s children and a head).

    Raises:
      ValueError: a layer other than Linear / ReLU / Tanh / Identity, or parameters that are not
        float32/float64 CPU tensors (``HostMLP.build`` gives ``None`` instead).
    """

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        self._steps: list[nn.Linear | str] = []
        for m in modules:
            if isinstance(m, nn.Linear):
                self._steps.append(m)
            elif type(m) in _ACTIVATIONS:
                if _ACTIVATIONS[type(m)] is not None:
                    self._steps.append(_ACTIVATIONS[type(m)])
            else:
                raise ValueError(f"HostMLP supports Linear, ReLU, Tanh and Identity layers, got {type(m).__name__}")
        self._linears = [s for s in self._steps if isinstance(s, nn.Linear)]
        if not self._linears:
            raise ValueError("HostMLP needs at least one Linear layer")
        self._check("HostMLP")

    def _watched(self) -> list[torch.Tensor]:
        # the modules' own parameter dicts: a reassigned parameter is seen at once
        return [p for lin in self._linears for p in lin._parameters.values() if p is not None]

    def _build_ops(self) -> list[_Op]:
        return [s if isinstance(s, str) else
                (s.weight.detach().numpy().T, None if s.bias is None else s.bias.detach().numpy())  # [in, out] view
                for s in self._steps]


class HostStackedMLP(_Mirror):
    """NumPy forward of a :class:`foundations.nets.StackedMLP` on CPU, through views of its parameters.

    ``x [batch, in]`` -> ``[members, batch, out]``, the activation after every layer, as the module.
    (One member alone: :class:`HostChain`.)

    Raises:
      ValueError: parameters that are not float32/float64 CPU tensors.
    """

    def __init__(self, module: nn.Module) -> None:
        self._params = [*module.weights, *module.biases]
        for p in self._params:
            if p.device.type != "cpu" or p.dtype not in (torch.float32, torch.float64):
                raise ValueError(f"HostStackedMLP needs float32/float64 CPU parameters, got {p.dtype} on {p.device}")
        self._layers = len(module.weights)
        self._tanh = module.activation == "tanh"
        self.dtype = np.float32 if self._params[0].dtype == torch.float32 else np.float64
        self._refresh()

    def _refresh(self) -> None:
        self._ptrs = [p.data_ptr() for p in self._params]
        views = [p.detach().numpy() for p in self._params]
        weights, biases = views[: self._layers], views[self._layers:]
        self._ops = [(w.transpose(0, 2, 1), b[:, None, :]) for w, b in zip(weights, biases, strict=True)]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``[batch, in]`` -> ``[members, batch, out]``."""
        if [p.data_ptr() for p in self._params] != self._ptrs:
            self._refresh()
        h = np.asarray(x, dtype=self.dtype)
        for w, b in self._ops:
            h = np.matmul(h, w)  # [batch, in] broadcasts over the members: [members, batch, out]
            h += b
            if self._tanh:
                np.tanh(h, out=h)
            else:
                np.maximum(h, 0.0, out=h)
        return h


class HostChain(_Chain):
    """``x [batch, in] -> [batch, out]``: a chain of affine layers over (members of) parameters, in NumPy.

    ``h_k = act_k(h_{k-1} W_k^T + b_k)``; for example member ``m`` of a
    :class:`foundations.nets.StackedMLP` followed by a head, without indexing the stack at
    every call: each layer costs one matmul, one add and one activation in place, which is what
    one environment step of a small actor is made of.

    Args:
      layers: ``(weight, bias, activation, member)`` per layer: ``weight`` ``[out, in]`` and
        ``bias`` ``[out]`` (or ``None``) parameters, or stacks ``[members, out, in]`` /
        ``[members, out]`` of which ``member`` is taken (``None``: the parameter as it is);
        ``activation`` ``"tanh"``, ``"relu"`` or ``None``.

    Raises:
      ValueError: an unknown activation, or parameters that are not float32/float64 CPU tensors.
    """

    def __init__(self, layers: Sequence[tuple[torch.Tensor, torch.Tensor | None, str | None, int | None]]) -> None:
        self._layers = list(layers)
        for _, _, act, _ in self._layers:
            if act not in ("tanh", "relu", None):
                raise ValueError(f"HostChain activations are 'tanh', 'relu' or None, got {act!r}")
        self._params = [p for w, b, _, _ in self._layers for p in (w, b) if p is not None]
        self._check("HostChain")

    def _watched(self) -> list[torch.Tensor]:
        return self._params

    def _build_ops(self) -> list[_Op]:
        ops: list[_Op] = []
        for w, b, act, m in self._layers:
            w_np = w.detach().numpy() if m is None else w.detach().numpy()[m]
            b_np = None if b is None else (b.detach().numpy() if m is None else b.detach().numpy()[m])
            ops.append((w_np.T, b_np))
            if act is not None:
                ops.append(act)
        return ops
