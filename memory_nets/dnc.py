"""Differentiable Neural Computer (Graves et al. 2016, Nature 538:471, Methods section).

Each step: the controller reads ``[x_t, reads_{t-1}]``; one linear layer emits the whole
interface vector; usage is updated from the last write and the free gates; the write heads
address by content and by allocation (least-used slots), erase and add; the temporal link
matrix and precedence record the write order; the read heads mix content lookup on the new
memory with forward / backward steps along the links (read modes); the output is a linear map
of the controller output and the read vectors.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch

from memory_nets import addressing as A
from memory_nets.core import CoreConfig, MemoryCore, detach_state, make_config


class DNCState(NamedTuple):
    """DNC state.

    Attributes:
      memory: ``[B, N, W]``.
      usage: ``[B, N]``.
      link: ``[B, Hw, N, N]`` temporal link matrices (one per write head).
      precedence: ``[B, Hw, N]``.
      read_weights: ``[B, R, N]``.
      write_weights: ``[B, Hw, N]``.
      reads: ``[B, R, W]``, the last read vectors.
      h, c: ``[B, C]`` LSTM controller state (``[B, 0]`` for a feedforward controller).
    """

    memory: torch.Tensor
    usage: torch.Tensor
    link: torch.Tensor
    precedence: torch.Tensor
    read_weights: torch.Tensor
    write_weights: torch.Tensor
    reads: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor

    def detach(self) -> DNCState:
        """The same state cut from the autograd graph (truncated BPTT)."""
        return detach_state(self)


@dataclasses.dataclass(frozen=True)
class DNCConfig(CoreConfig):
    """DNC options: :class:`CoreConfig`'s, with the paper's sizes as defaults.

    Attributes:
      read_heads: ``R`` (paper: 4 for the graph tasks).
      controller_size: LSTM units (64 here: the benchmark setting).
    """

    controller_size: int = 64
    read_heads: int = 4


class DNC(MemoryCore):
    """Differentiable Neural Computer core, a drop-in recurrent module (see :mod:`memory_nets.core`).

    Args:
      input_size: features of ``x_t``.
      output_size: logits of ``y_t``.
      device, dtype: where the parameters live.
      **options: :class:`DNCConfig` fields, e.g. ``memory_slots=128, read_heads=4``.

    Example::

        dnc = DNC(9, 8, memory_slots=128, word_size=20, read_heads=4)
        y, state = dnc(x)  # x [time, batch, 9] -> y [time, batch, 8]
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
        config = make_config(DNCConfig, options)
        r, hw, w = config.read_heads, config.write_heads, config.word_size
        # read keys + strengths, write keys + strengths, erase, write vectors, free gates,
        # allocation gates, write gates, read modes.
        interface = r * (w + 1) + hw * (w + 1) + 2 * hw * w + r + 2 * hw + r * (2 * hw + 1)
        super().__init__(input_size, output_size, config, interface, device=device, dtype=dtype)
        self.register_buffer(
            "off_diagonal",
            1.0 - torch.eye(config.memory_slots, device=self.w_x.device, dtype=self.w_x.dtype),
            persistent=False,
        )

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> DNCState:
        """State at ``t = 0``: initial memory, zero usage, links, precedence, weightings and reads."""
        cfg = self.config
        b, n, r, hw = batch_size, cfg.memory_slots, cfg.read_heads, cfg.write_heads
        z = dict(self._device_dtype)
        memory = self.initial_memory(b, generator)
        h, c = self.initial_controller(b)
        return DNCState(
            memory=memory,
            usage=torch.zeros(b, n, **z),
            link=torch.zeros(b, hw, n, n, **z),
            precedence=torch.zeros(b, hw, n, **z),
            read_weights=torch.zeros(b, r, n, **z),
            write_weights=torch.zeros(b, hw, n, **z),
            reads=torch.zeros(b, r, cfg.word_size, **z),
            h=h,
            c=c,
        )

    def step(self, projected: torch.Tensor, state: DNCState) -> tuple[torch.Tensor, DNCState]:
        """One DNC step from the projected input ``[B, gates]``; returns ``(y [B, output_size], state)``."""
        cfg = self.config
        b, r, hw, w = projected.shape[0], cfg.read_heads, cfg.write_heads, cfg.word_size
        out, h, c = self.controller_step(projected, state.reads, state.h, state.c)
        iface = self.interface(out)

        # Split the interface vector: [keys (R + Hw) x W | strengths R + Hw | erase, write
        # vectors Hw x W each | free R, allocation Hw, write Hw gates | read modes R x (2Hw + 1)].
        heads = r + hw
        keys, strengths, erase, vectors, gates, modes = iface.split(
            [heads * w, heads, hw * w, hw * w, r + 2 * hw, r * (2 * hw + 1)], dim=1
        )
        read_keys, write_keys = keys.view(b, heads, w).split([r, hw], dim=1)
        read_strengths, write_strengths = A.oneplus(strengths).split([r, hw], dim=1)
        erase = torch.sigmoid(erase).view(b, hw, w)
        vectors = vectors.view(b, hw, w)
        free, alloc_gate, write_gate = torch.sigmoid(gates).split([r, hw, hw], dim=1)
        modes = torch.softmax(modes.view(b, r, 2 * hw + 1), dim=2)

        # Write: usage from the last step's writes and reads, then content + allocation.
        psi = A.retention(free, state.read_weights)
        usage = A.update_usage(state.usage, state.write_weights, psi)
        write_content = A.content_weighting(state.memory, write_keys, write_strengths)
        allocation = A.write_allocations(usage, alloc_gate * write_gate)
        write_weights = A.write_weighting(write_content, allocation, alloc_gate, write_gate)
        memory = A.erase_and_add(state.memory, write_weights, erase, vectors)

        # Temporal links (from the previous precedence), the read heads' forward/backward
        # weightings along them (from the previous read weightings), then the new precedence.
        link = A.update_link(state.link, state.precedence, write_weights, self.off_diagonal)
        forward, backward = A.directional_weightings(link, state.read_weights)
        precedence = A.update_precedence(state.precedence, write_weights)

        # Read: content on the new memory, forward/backward along the links, mixed by the modes.
        read_content = A.content_weighting(memory, read_keys, read_strengths)
        read_weights = A.read_weighting(read_content, forward, backward, modes)
        reads = A.read(memory, read_weights)
        new = DNCState(memory, usage, link, precedence, read_weights, write_weights, reads, h, c)
        return self.emit(out, reads), new
