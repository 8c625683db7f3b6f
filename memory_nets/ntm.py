"""Neural Turing Machine (Graves, Wayne & Danihelka 2014, arXiv:1410.5401).

Each step: the controller reads ``[x_t, reads_{t-1}]``; one linear layer emits every head's
addressing parameters; all heads (reads first, then writes) address the previous memory at
once (content -> interpolation -> circular shift -> sharpening, section 3.3); the write heads
erase and add; the read heads read the new memory; the output is a linear map of the
controller output and the read vectors.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import torch.nn.functional as F

from memory_nets import addressing as A
from memory_nets.core import CoreConfig, MemoryCore, detach_state, make_config


class NTMState(NamedTuple):
    """NTM state; ``R`` read heads come first in ``weights``, then the ``Hw`` write heads.

    Attributes:
      memory: ``[B, N, W]``.
      weights: ``[B, R + Hw, N]``, every head's weighting at the last step.
      reads: ``[B, R, W]``, the last read vectors.
      h, c: ``[B, C]`` LSTM controller state (``[B, 0]`` for a feedforward controller).
    """

    memory: torch.Tensor
    weights: torch.Tensor
    reads: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor

    @property
    def read_weights(self) -> torch.Tensor:
        """``[B, R, N]``."""
        return self.weights[:, : self.reads.shape[1]]

    @property
    def write_weights(self) -> torch.Tensor:
        """``[B, Hw, N]``."""
        return self.weights[:, self.reads.shape[1] :]

    def detach(self) -> NTMState:
        """The same state cut from the autograd graph (truncated BPTT)."""
        return detach_state(self)


@dataclasses.dataclass(frozen=True)
class NTMConfig(CoreConfig):
    """NTM options (:class:`CoreConfig`'s plus the shift range).

    Attributes:
      shift_range: ``k``; heads may shift by ``-k .. k`` slots per step (paper: 1).
    """

    shift_range: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.shift_range, int) or self.shift_range < 0 or 2 * self.shift_range + 1 > self.memory_slots:
            raise ValueError(
                f"shift_range must be an integer in [0, (memory_slots - 1) // 2], got {self.shift_range!r}"
            )


class NTM(MemoryCore):
    """Neural Turing Machine core, a drop-in recurrent module (see :mod:`memory_nets.core`).

    Args:
      input_size: features of ``x_t``.
      output_size: logits of ``y_t``.
      device, dtype: where the parameters live.
      **options: :class:`NTMConfig` fields, e.g. ``controller_size=100, memory_slots=128``.

    Example::

        ntm = NTM(9, 8, memory_slots=128, word_size=20)
        y, state = ntm(x)  # x [time, batch, 9] -> y [time, batch, 8]
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **options: object,
    ) -> None:
        config = make_config(NTMConfig, options)
        heads = config.read_heads + config.write_heads
        width = 2 * config.shift_range + 1
        interface = heads * (config.word_size + 3 + width) + 2 * config.write_heads * config.word_size
        super().__init__(input_size, output_size, config, interface, device=device, dtype=dtype)
        self.register_buffer(
            "shift_index", A.shift_indices(config.memory_slots, config.shift_range, self.w_x.device), persistent=False
        )

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> NTMState:
        """State at ``t = 0``: the initial memory, every head on slot 0, reads of slot 0."""
        cfg = self.config
        memory = self.initial_memory(batch_size, generator)
        weights = torch.zeros(batch_size, cfg.read_heads + cfg.write_heads, cfg.memory_slots, **self._device_dtype)
        weights[:, :, 0] = 1.0
        reads = A.read(memory, weights[:, : cfg.read_heads])
        h, c = self.initial_controller(batch_size)
        return NTMState(memory, weights, reads, h, c)

    def step(self, projected: torch.Tensor, state: NTMState) -> tuple[torch.Tensor, NTMState]:
        """One NTM step from the projected input ``[B, gates]``; returns ``(y [B, output_size], state)``."""
        cfg = self.config
        b = projected.shape[0]
        heads, r, hw, w = cfg.read_heads + cfg.write_heads, cfg.read_heads, cfg.write_heads, cfg.word_size
        width = 2 * cfg.shift_range + 1
        out, h, c = self.controller_step(projected, state.reads, state.h, state.c)
        iface = self.interface(out)

        keys, strength, gate, gamma, shift, erase, add = iface.split(
            [heads * w, heads, heads, heads, heads * width, hw * w, hw * w], dim=1
        )
        keys = keys.view(b, heads, w)
        strength = F.softplus(strength)
        gate = torch.sigmoid(gate)
        gamma = A.oneplus(gamma)
        shift = torch.softmax(shift.view(b, heads, width), dim=2)
        erase = torch.sigmoid(erase).view(b, hw, w)
        add = torch.tanh(add).view(b, hw, w)

        weights = A.content_weighting(state.memory, keys, strength)
        weights = A.interpolate(weights, state.weights, gate)
        weights = A.circular_shift(weights, shift, self.shift_index)
        weights = A.sharpen(weights, gamma)

        memory = A.erase_and_add(state.memory, weights[:, r:], erase, add)
        reads = A.read(memory, weights[:, :r])
        return self.emit(out, reads), NTMState(memory, weights, reads, h, c)
