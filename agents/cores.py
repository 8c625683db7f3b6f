"""Memory cores for agents: one interface over ``nn.LSTM``, ``nn.GRU``, the NTM, the DNC, the
gated transformer (GTrXL) and ``none`` (feed-forward).

    core = AgentCore(input_size=64, spec=CoreSpec(kind="dnc", memory_slots=16))
    state = core.initial_state(num_envs)                        # a tuple of tensors
    y, state = core(x, state, starts)                           # x [T, B, 64], starts [T, B]
    y: [T, B, core.output_size]

``starts[t, b]`` marks a step that begins an episode of env ``b``: the core's state for that env
is reset to its initial value before the step, so nothing of the previous episode leaks into it
(the way CleanRL's ``ppo_atari_lstm`` and SB3-contrib's RecurrentPPO do it). A rollout keeps
the state at its start and PPO re-runs the core over the same steps with the same ``starts``.

States are tuples of tensors whose batch (env) dimension :attr:`AgentCore.batch_dims` names, so
a rollout can store them and minibatches can pick envs with :meth:`AgentCore.select`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from foundations.checks import positive_int
from memory_nets.dnc import DNC, DNCConfig
from memory_nets.ntm import NTM, NTMConfig
from memory_nets.transformer import GatedTransformer, GatedTransformerConfig

CoreKind = Literal["none", "lstm", "gru", "ntm", "dnc", "transformer"]
CORES: tuple[str, ...] = ("none", "lstm", "gru", "ntm", "dnc", "transformer")

State = tuple[torch.Tensor, ...]


@dataclasses.dataclass(frozen=True)
class CoreSpec:
    """Which core and its sizes. Options that belong to another core must stay at their
    defaults (:data:`OPTIONS`), so a typo'd experiment fails instead of silently ignoring one.

    Attributes:
      kind: one of :data:`CORES`.
      size: hidden units of the LSTM / GRU, the NTM / DNC controller, and the transformer's
        residual stream (``model_size``); also the core's output size.
      memory_slots, word_size, read_heads: the NTM / DNC memory (``N``, ``W``, ``R``).
      heads, layers, window: the transformer's attention heads, layers and memory length ``K``.
    """

    kind: CoreKind = "none"
    size: int = 128
    memory_slots: int = 16
    word_size: int = 16
    read_heads: int = 1
    heads: int = 4
    layers: int = 1
    window: int = 16

    def __post_init__(self) -> None:
        if self.kind not in CORES:
            raise ValueError(f"unknown core {self.kind!r}; allowed: {', '.join(CORES)}")
        for name in ("size", "memory_slots", "word_size", "read_heads", "heads", "layers", "window"):
            positive_int(name, getattr(self, name))
        defaults = CoreSpec.__dataclass_fields__
        wrong = [name for name in ("memory_slots", "word_size", "read_heads", "heads", "layers", "window")
                 if getattr(self, name) != defaults[name].default and name not in OPTIONS[self.kind]]
        if wrong:
            owners = {name: [k for k, v in OPTIONS.items() if name in v] for name in wrong}
            raise ValueError("; ".join(f"--core-{n.replace('_', '-')} is an option of the {'/'.join(owners[n])} "
                                       f"core{'s' if len(owners[n]) > 1 else ''}, not of --core {self.kind}"
                                       for n in wrong))


OPTIONS: dict[str, tuple[str, ...]] = {
    "none": ("size",), "lstm": ("size",), "gru": ("size",),
    "ntm": ("size", "memory_slots", "word_size", "read_heads"),
    "dnc": ("size", "memory_slots", "word_size", "read_heads"),
    "transformer": ("size", "heads", "layers", "window"),
}
"""The options each core reads."""


class AgentCore(nn.Module):
    """``forward(x [T, B, input_size], state, starts [T, B]) -> (y [T, B, output_size], state)``
    (see the module docstring)."""

    def __init__(self, input_size: int, spec: CoreSpec) -> None:
        super().__init__()
        self.spec, self.input_size = spec, positive_int("input_size", input_size)
        self.output_size = input_size if spec.kind == "none" else spec.size
        kind = spec.kind
        if kind == "lstm":
            self.net: nn.Module = nn.LSTM(input_size, spec.size)
        elif kind == "gru":
            self.net = nn.GRU(input_size, spec.size)
        elif kind in ("ntm", "dnc"):
            cls, cfg = (NTM, NTMConfig) if kind == "ntm" else (DNC, DNCConfig)
            self.net = cls(input_size, spec.size, config=cfg(controller_size=spec.size, memory_slots=spec.memory_slots,
                                                            word_size=spec.word_size, read_heads=spec.read_heads))
        elif kind == "transformer":
            self.net = GatedTransformer(input_size, GatedTransformerConfig(
                model_size=spec.size, heads=spec.heads, layers=spec.layers, window=spec.window, ff_size=2 * spec.size))
        else:
            self.net = nn.Identity()
        self._state_type = type(self.net.initial_state(1)) if kind in ("ntm", "dnc", "transformer") else tuple

    @property
    def recurrent(self) -> bool:
        return self.spec.kind != "none"

    @property
    def batch_dims(self) -> tuple[int, ...]:
        """The env dimension of each state tensor."""
        kind = self.spec.kind
        if kind == "lstm":
            return (1, 1)
        if kind == "gru":
            return (1,)
        if kind == "transformer":
            return (2, 1, 0)
        if kind in ("ntm", "dnc"):
            return (0,) * len(self.net.initial_state(1))
        return ()

    def initial_state(self, batch_size: int) -> State:
        """The state before any step: a tuple of tensors (empty for ``none``)."""
        kind, p = self.spec.kind, next(iter(self.parameters()), torch.zeros(()))
        if kind in ("lstm", "gru"):
            zeros = torch.zeros(1, batch_size, self.spec.size, device=p.device, dtype=p.dtype)
            return (zeros, zeros.clone()) if kind == "lstm" else (zeros,)
        if kind == "none":
            return ()
        return tuple(self.net.initial_state(batch_size))

    def select(self, state: State, envs: torch.Tensor) -> State:
        """The state of the envs ``envs`` (indices ``[b]``)."""
        return tuple(t.index_select(d, envs) for t, d in zip(state, self.batch_dims, strict=True))

    def reset(self, state: State, mask: torch.Tensor) -> State:
        """``state`` with the envs where ``mask`` ``[B]`` is set back at the initial state."""
        initial = self.initial_state(mask.shape[0])
        out = []
        for t, init, d in zip(state, initial, self.batch_dims, strict=True):
            shape = [1] * t.dim()
            shape[d] = -1
            out.append(torch.where(mask.view(shape), init.to(t.dtype), t))
        return tuple(out)

    def forward(self, x: torch.Tensor, state: State, starts: torch.Tensor) -> tuple[torch.Tensor, State]:
        kind = self.spec.kind
        if kind == "none":
            return x, state
        if kind == "transformer":
            y, new = self.net(x, self.net_state(state), starts)
            return y, tuple(new)
        starts = starts.to(torch.bool)
        outputs, at = [], 0
        # Run the steps between episode starts as one call (one nn.LSTM kernel per segment).
        cuts = [t for t in range(1, x.shape[0]) if bool(starts[t].any())]
        for end in [*cuts, x.shape[0]]:
            state = self.reset(state, starts[at])
            y, state = self._run(x[at:end], state)
            outputs.append(y)
            at = end
        return torch.cat(outputs), state

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if self.spec.kind == "lstm":
            y, (h, c) = self.net(x, state)
            return y, (h, c)
        if self.spec.kind == "gru":
            y, h = self.net(x, state[0])
            return y, (h,)
        y, new = self.net(x, self.net_state(state))
        return y, tuple(new)

    def net_state(self, state: State) -> tuple:
        """The wrapped module's own state type (a NamedTuple) from the flat tuple."""
        return self._state_type(*state)
