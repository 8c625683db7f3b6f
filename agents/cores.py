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
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from foundations.checks import positive_int
from memory_nets.dnc import DNC, DNCConfig
from memory_nets.ntm import NTM, NTMConfig
from memory_nets.transformer import GatedTransformer, GatedTransformerConfig

State = tuple[torch.Tensor, ...]


# ------------------------------------------------------------------------------ the adapters
@dataclasses.dataclass(frozen=True)
class CoreAdapter:
    """How the agents use one kind of core: everything :class:`AgentCore` needs to know about it.

    Attributes:
      build: ``build(input_size, spec) -> module``.
      options: the :class:`CoreSpec` fields it reads (any other must stay at its default).
      batch_dims: ``batch_dims(module) -> (dim, ...)``: the env dimension of each state tensor.
      initial_state: ``initial_state(module, spec, batch_size, like) -> State``, a tuple of
        tensors on ``like``'s device and dtype.
      run: ``run(module, x [T, B, in], state) -> (y [T, B, out], state)`` over steps with no
        episode start after the first (:class:`AgentCore` cuts sequences there); ``None`` when
        the module takes ``starts`` itself (``module(x, state, starts)``).
      output_size: ``output_size(input_size, spec)``.
      compiles_step: ``compile`` compiles the module's step (``compile_step()``: NTM, DNC).
      weightings: its state has read/write weightings to draw (``memory_figure``: NTM, DNC).
    """

    build: Callable[[int, CoreSpec], nn.Module]
    options: tuple[str, ...]
    batch_dims: Callable[[nn.Module], tuple[int, ...]]
    initial_state: Callable[[nn.Module, CoreSpec, int, torch.Tensor], State]
    run: Callable[[nn.Module, torch.Tensor, State], tuple[torch.Tensor, State]] | None
    output_size: Callable[[int, CoreSpec], int] = lambda input_size, spec: spec.size
    compiles_step: bool = False
    weightings: bool = False


def _rnn_state(layers: int) -> Callable[[nn.Module, CoreSpec, int, torch.Tensor], State]:
    """Zero ``(h[, c])`` ``[1, B, size]`` of ``nn.LSTM`` (``layers=2``) or ``nn.GRU`` (1)."""

    def initial(module: nn.Module, spec: CoreSpec, batch_size: int, like: torch.Tensor) -> State:
        zeros = torch.zeros(1, batch_size, spec.size, device=like.device, dtype=like.dtype)
        return (zeros, *(zeros.clone() for _ in range(layers - 1)))

    return initial


def _run_lstm(module: nn.Module, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    y, (h, c) = module(x, state)
    return y, (h, c)


def _run_gru(module: nn.Module, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    y, h = module(x, state[0])
    return y, (h,)


def _memory_state(module: nn.Module, spec: CoreSpec, batch_size: int, like: torch.Tensor) -> State:
    """The flat tuple of a memory module's own (NamedTuple) initial state."""
    return tuple(module.initial_state(batch_size))


def _run_memory(module: nn.Module, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    y, new = module(x, type(module.initial_state(1))(*state))
    return y, tuple(new)


def _memory_config(cls: type, config: type) -> Callable[[int, CoreSpec], nn.Module]:
    def build(input_size: int, spec: CoreSpec) -> nn.Module:
        return cls(input_size, spec.size, config=config(controller_size=spec.size, memory_slots=spec.memory_slots,
                                                        word_size=spec.word_size, read_heads=spec.read_heads))

    return build


ADAPTERS: dict[str, CoreAdapter] = {
    "none": CoreAdapter(build=lambda input_size, spec: nn.Identity(), options=("size",), batch_dims=lambda m: (),
                        initial_state=lambda m, spec, b, like: (), run=None,
                        output_size=lambda input_size, spec: input_size),
    "lstm": CoreAdapter(build=lambda input_size, spec: nn.LSTM(input_size, spec.size), options=("size",),
                        batch_dims=lambda m: (1, 1), initial_state=_rnn_state(2), run=_run_lstm),
    "gru": CoreAdapter(build=lambda input_size, spec: nn.GRU(input_size, spec.size), options=("size",),
                       batch_dims=lambda m: (1,), initial_state=_rnn_state(1), run=_run_gru),
    "ntm": CoreAdapter(build=_memory_config(NTM, NTMConfig), options=("size", "memory_slots", "word_size", "read_heads"),
                       batch_dims=lambda m: (0,) * len(m.initial_state(1)), initial_state=_memory_state,
                       run=_run_memory, compiles_step=True, weightings=True),
    "dnc": CoreAdapter(build=_memory_config(DNC, DNCConfig), options=("size", "memory_slots", "word_size", "read_heads"),
                       batch_dims=lambda m: (0,) * len(m.initial_state(1)), initial_state=_memory_state,
                       run=_run_memory, compiles_step=True, weightings=True),
    "transformer": CoreAdapter(
        build=lambda input_size, spec: GatedTransformer(input_size, GatedTransformerConfig(
            model_size=spec.size, heads=spec.heads, layers=spec.layers, window=spec.window, ff_size=2 * spec.size)),
        options=("size", "heads", "layers", "window"), batch_dims=lambda m: (2, 1, 0), initial_state=_memory_state,
        run=None),
}
"""Every core the agents know, by kind: a new core is one entry here plus its module."""

CORES: tuple[str, ...] = tuple(ADAPTERS)
CoreKind = Literal[CORES]  # type: ignore[valid-type]  # the --core choices, read from the table
OPTIONS: dict[str, tuple[str, ...]] = {kind: adapter.options for kind, adapter in ADAPTERS.items()}
"""The options each core reads."""


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
        if self.kind not in ADAPTERS:
            raise ValueError(f"unknown core {self.kind!r}; allowed: {', '.join(ADAPTERS)}")
        for name in ("size", "memory_slots", "word_size", "read_heads", "heads", "layers", "window"):
            positive_int(name, getattr(self, name))
        defaults = CoreSpec.__dataclass_fields__
        wrong = [name for name in ("memory_slots", "word_size", "read_heads", "heads", "layers", "window")
                 if getattr(self, name) != defaults[name].default and name not in ADAPTERS[self.kind].options]
        if wrong:
            owners = {name: [k for k, a in ADAPTERS.items() if name in a.options] for name in wrong}
            raise ValueError("; ".join(f"--core-{n.replace('_', '-')} is an option of the {'/'.join(owners[n])} "
                                       f"core{'s' if len(owners[n]) > 1 else ''}, not of --core {self.kind}"
                                       for n in wrong))

    @property
    def adapter(self) -> CoreAdapter:
        return ADAPTERS[self.kind]


class AgentCore(nn.Module):
    """``forward(x [T, B, input_size], state, starts [T, B]) -> (y [T, B, output_size], state)``
    (see the module docstring); what each kind does is its :class:`CoreAdapter` in :data:`ADAPTERS`."""

    def __init__(self, input_size: int, spec: CoreSpec) -> None:
        super().__init__()
        self.spec, self.input_size = spec, positive_int("input_size", input_size)
        self.adapter = spec.adapter
        self.output_size = self.adapter.output_size(input_size, spec)
        self.net: nn.Module = self.adapter.build(input_size, spec)
        self._state_type = type(self.net.initial_state(1)) if hasattr(self.net, "initial_state") else tuple

    @property
    def recurrent(self) -> bool:
        return self.spec.kind != "none"

    @property
    def batch_dims(self) -> tuple[int, ...]:
        """The env dimension of each state tensor."""
        return self.adapter.batch_dims(self.net)

    def initial_state(self, batch_size: int) -> State:
        """The state before any step: a tuple of tensors (empty for ``none``)."""
        like = next(iter(self.parameters()), torch.zeros(()))
        return self.adapter.initial_state(self.net, self.spec, batch_size, like)

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
        if not self.recurrent:
            return x, state
        run = self.adapter.run
        if run is None:  # the module resets at episode starts itself
            y, new = self.net(x, self.net_state(state), starts)
            return y, tuple(new)
        starts = starts.to(torch.bool)
        outputs, at = [], 0
        # Run the steps between episode starts as one call (one nn.LSTM kernel per segment).
        cuts = [t for t in range(1, x.shape[0]) if bool(starts[t].any())]
        for end in [*cuts, x.shape[0]]:
            state = self.reset(state, starts[at])
            y, state = run(self.net, x[at:end], state)
            outputs.append(y)
            at = end
        return torch.cat(outputs), state

    def net_state(self, state: State) -> tuple:
        """The wrapped module's own state type (a NamedTuple) from the flat tuple."""
        return self._state_type(*state)
