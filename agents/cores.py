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
from typing import Annotated, Any, Literal

import torch
import tyro
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


def choices() -> str:
    """The ``--core`` choices in words: ``none, lstm, ... or transformer``."""
    *first, last = ADAPTERS
    return f"{', '.join(first)} or {last}"


def flag(option: str) -> str:
    """The command-line flag of a :class:`CoreSpec` field (``kind`` -> ``--core``, ``size`` ->
    ``--core-size``); without the dashes and with underscores, also the agent configuration's
    flat field that held it before the options were nested (``core``, ``core_size``)."""
    return "--core" if option == "kind" else f"--core-{option.replace('_', '-')}"


def _cli(option: str) -> Any:
    """tyro's marker naming the field's flag (with ``OmitArgPrefixes``, as the experiments parse)."""
    return tyro.conf.arg(name=flag(option)[2:])


@dataclasses.dataclass(frozen=True)
class CoreSpec:
    """Which core and its sizes: one nested option of an agent's configuration
    (``PPOConfig(core=CoreSpec("lstm", size=64))``), on the command line as the flat flags of
    :func:`flag` (``--core lstm --core-size 64``). Options that belong to another core (or
    any, with no core) must stay at their defaults (:data:`OPTIONS`), so a typo'd experiment
    fails instead of silently ignoring one.

    Attributes:
      kind: one of :data:`CORES`; ``None`` (the default): no core, the feed-forward agent.
      size: hidden units of the LSTM / GRU, the NTM / DNC controller, and the transformer's
        residual stream (``model_size``); also the core's output size.
      memory_slots, word_size, read_heads: the NTM / DNC memory (``N``, ``W``, ``R``).
      heads, layers, window: the transformer's attention heads, layers and memory length ``K``.
    """

    kind: Annotated[CoreKind | None, _cli("kind")] = None
    size: Annotated[int, _cli("size")] = 128
    memory_slots: Annotated[int, _cli("memory_slots")] = 16
    word_size: Annotated[int, _cli("word_size")] = 16
    read_heads: Annotated[int, _cli("read_heads")] = 1
    heads: Annotated[int, _cli("heads")] = 4
    layers: Annotated[int, _cli("layers")] = 1
    window: Annotated[int, _cli("window")] = 16

    def __post_init__(self) -> None:
        options = [f.name for f in dataclasses.fields(self) if f.name != "kind"]
        defaults = CoreSpec.__dataclass_fields__
        if self.kind is None:
            changed = [flag(name) for name in options if getattr(self, name) != defaults[name].default]
            if changed:
                raise ValueError(f"{', '.join(changed)} configure a memory core; give --core ({choices()}) too")
            return
        if self.kind not in ADAPTERS:
            raise ValueError(f"unknown core {self.kind!r}; allowed: {', '.join(ADAPTERS)}")
        for name in options:
            positive_int(flag(name), getattr(self, name))
        wrong = [name for name in options
                 if getattr(self, name) != defaults[name].default and name not in ADAPTERS[self.kind].options]
        if wrong:
            owners = {name: [k for k, a in ADAPTERS.items() if name in a.options] for name in wrong}
            raise ValueError("; ".join(f"{flag(n)} is an option of the {'/'.join(owners[n])} "
                                       f"core{'s' if len(owners[n]) > 1 else ''}, not of --core {self.kind}"
                                       for n in wrong))

    @staticmethod
    def nest(saved: dict[str, Any]) -> dict[str, Any]:
        """A saved agent configuration (``dataclasses.asdict``) with the core options of the
        layout before they were nested (flat ``core``, ``core_size``, ... fields) gathered into
        one ``core`` dict; one already nested is returned as it is."""
        if not saved or isinstance(saved.get("core"), dict):
            return dict(saved)
        out = {k: v for k, v in saved.items() if k not in FLAT_FIELDS}
        spec = {FLAT_FIELDS[k]: v for k, v in saved.items() if k in FLAT_FIELDS}
        if spec:
            out["core"] = spec
        return out

    @property
    def adapter(self) -> CoreAdapter:
        return ADAPTERS[self.kind]


#: Each :class:`CoreSpec` field by the flat agent-configuration field that held it before the
#: options were nested (``core_size`` -> ``size``): the flag's name with underscores.
FLAT_FIELDS: dict[str, str] = {flag(f.name)[2:].replace("-", "_"): f.name for f in dataclasses.fields(CoreSpec)}


class AgentCore(nn.Module):
    """``forward(x [T, B, input_size], state, starts [T, B]) -> (y [T, B, output_size], state)``
    (see the module docstring); what each kind does is its :class:`CoreAdapter` in :data:`ADAPTERS`."""

    def __init__(self, input_size: int, spec: CoreSpec) -> None:
        super().__init__()
        if spec.kind is None:
            raise ValueError(f"AgentCore needs a core kind ({', '.join(ADAPTERS)}); CoreSpec(kind=None) is the "
                             "feed-forward agent, which has no core")
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
