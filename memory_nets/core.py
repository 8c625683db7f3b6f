"""What the NTM and the DNC share: controller, memory initialisation, input checks, the time loop.

A memory core is an ``nn.Module`` used like ``nn.LSTM``:

* ``core.initial_state(batch_size)`` gives the state at ``t = 0`` (a NamedTuple of tensors);
* ``core(x_t, state)`` with ``x_t`` ``[batch, input_size]`` runs one step -> ``(y_t, state)``;
* ``core(x, state=None)`` with ``x`` ``[time, batch, input_size]`` (or ``[batch, time, ...]``
  with ``batch_first=True``) runs the sequence -> ``(y [time, batch, output_size], state)``.

Outputs are logits (apply ``sigmoid`` for bit probabilities; train with
``binary_cross_entropy_with_logits``, which cannot overflow). ``state.detach()`` cuts the graph
for truncated backpropagation through time.

Speed: the controller's input projection does not depend on the recurrence, so a sequence's
projection is one matrix product before the loop; each step then does one fused product for
the controller gates, one for the whole interface vector (all heads) and one for the output.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, NamedTuple, TypeVar

import torch
from torch import nn

from foundations.checks import choose, positive_int

MemoryInit = Literal["constant", "learned", "random"]
Controller = Literal["lstm", "feedforward"]
CONSTANT_MEMORY = 1e-6  # Collier & Beel 2018: a small constant converges fastest

S = TypeVar("S", bound=NamedTuple)


def detach_state(state: S) -> S:
    """A copy of a state NamedTuple with every tensor detached from the graph."""
    return type(state)(*(t.detach() for t in state))


@dataclasses.dataclass(frozen=True)
class CoreConfig:
    """Options every memory core has.

    Attributes:
      controller: ``"lstm"`` or ``"feedforward"`` (one ReLU layer).
      controller_size: controller hidden units.
      memory_slots: ``N``, rows of memory.
      word_size: ``W``, width of a memory row.
      read_heads: ``R``.
      write_heads: ``Hw``.
      memory_init: ``"constant"`` (1e-6 everywhere), ``"learned"`` (a trained ``[N, W]``
        parameter) or ``"random"`` (fresh ``N(0, 0.5^2)`` for every sequence).
      clip: controller outputs are clipped to ``[-clip, clip]`` (0 disables).
      bypass_dropout: dropout probability on the controller output where it goes straight to the
        output layer (not where it addresses memory), in training only: "bypass dropout" (Franke et
        al. 2018, ADNC), which pushes the model to answer from what it read instead of what the
        controller alone memorised. 0 (the papers' DNC and NTM) disables it.
      layer_norm: layer normalisation inside the LSTM controller: each gate's pre-activation
        normalised over its units (with its own gain and shift; the forget gate's shift starts at
        1) and the cell normalised before its ``tanh`` (Ba et al. 2016's LN-LSTM, which ADNC,
        Franke et al. 2018, found the largest single gain for the DNC on bAbI). Off in the papers.
      batch_first: sequences are ``[batch, time, features]`` instead of ``[time, batch, features]``.
    """

    controller: Controller = "lstm"
    controller_size: int = 100
    memory_slots: int = 128
    word_size: int = 20
    read_heads: int = 1
    write_heads: int = 1
    memory_init: MemoryInit = "constant"
    clip: float = 20.0
    bypass_dropout: float = 0.0
    layer_norm: bool = False
    batch_first: bool = False

    def __post_init__(self) -> None:
        choose("controller", self.controller, {"lstm": 0, "feedforward": 0})
        choose("memory_init", self.memory_init, {"constant": 0, "learned": 0, "random": 0})
        for name in ("controller_size", "memory_slots", "word_size", "read_heads", "write_heads"):
            positive_int(name, getattr(self, name))
        if not self.clip >= 0:
            raise ValueError(f"clip must be >= 0 (0 disables clipping), got {self.clip}")
        if not 0.0 <= self.bypass_dropout < 1.0:
            raise ValueError(f"bypass_dropout must be in [0, 1), got {self.bypass_dropout}")
        if self.layer_norm and self.controller != "lstm":
            raise ValueError("layer_norm normalises the LSTM controller's gates and cell; the feedforward "
                             "controller has none")


def make_config(cls: type, options: dict[str, Any]) -> Any:
    """The config: ``options["config"]`` if given (then alone), else ``cls(**options)``.

    An unknown keyword is a ``ValueError`` listing the known ones.
    """
    if "config" in options:
        config = options.pop("config")
        if options:
            raise ValueError(f"pass either config= or keyword options, not both (got {sorted(options)})")
        if not isinstance(config, cls):
            raise ValueError(f"config must be a {cls.__name__}, got {type(config).__name__}")
        return config
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {cls.__name__}; known: {sorted(known)}")
    return cls(**options)


class MemoryCore(nn.Module):
    """Base class: controller parameters, memory initialisation, input checks and the time loop.

    Subclasses define ``interface_size``, ``initial_state`` and ``step(projected_x, state)``.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        config: CoreConfig,
        interface_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.output_size = positive_int("output_size", output_size)
        self.config = config
        c, rw = config.controller_size, config.read_heads * config.word_size
        self.lstm = config.controller == "lstm"
        gates = 4 * c if self.lstm else c
        recurrent_in = rw + (c if self.lstm else 0)
        kw = {"device": device, "dtype": dtype}
        bound = 1.0 / math.sqrt(c)
        # Controller: x_t W_x^T + b (precomputed per sequence) + [reads_{t-1}, h_{t-1}] W_r^T.
        self.w_x = nn.Parameter(torch.empty(gates, input_size, **kw).uniform_(-bound, bound))
        self.w_r = nn.Parameter(torch.empty(gates, recurrent_in, **kw).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(gates, **kw).uniform_(-bound, bound))
        if self.lstm:
            with torch.no_grad():
                self.bias[c : 2 * c].add_(1.0)  # forget-gate bias 1 (Jozefowicz et al. 2015)
        if config.layer_norm:  # per gate (i, f, o, g) a gain and a shift after normalising; the cell's own
            self.gate_gain = nn.Parameter(torch.ones(4, c, **kw))
            self.gate_shift = nn.Parameter(torch.zeros(4, c, **kw))
            with torch.no_grad():
                self.gate_shift[1].fill_(1.0)  # the forget gate's bias 1 survives the normalisation
            self.cell_norm: nn.LayerNorm | None = nn.LayerNorm(c, **kw)
        else:
            self.register_parameter("gate_gain", None)
            self.register_parameter("gate_shift", None)
            self.cell_norm = None
        self.interface = nn.Linear(c, interface_size, **kw)
        self.output = nn.Linear(c + rw, output_size, **kw)
        n, w = config.memory_slots, config.word_size
        if config.memory_init == "learned":
            self.memory_bias = nn.Parameter(torch.empty(n, w, **kw).uniform_(-0.1, 0.1))
        else:
            self.register_parameter("memory_bias", None)

    # -- state -------------------------------------------------------------------------------

    @property
    def _device_dtype(self) -> dict[str, Any]:
        return {"device": self.w_x.device, "dtype": self.w_x.dtype}

    def initial_memory(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Memory at ``t = 0``: ``[B, N, W]``."""
        n, w = self.config.memory_slots, self.config.word_size
        if self.memory_bias is not None:
            return self.memory_bias.unsqueeze(0).expand(batch_size, n, w)
        if self.config.memory_init == "random":
            return 0.5 * torch.randn(batch_size, n, w, generator=generator, **self._device_dtype)
        return torch.full((batch_size, n, w), CONSTANT_MEMORY, **self._device_dtype)

    def initial_controller(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Controller ``(h, c)`` at ``t = 0``, each ``[B, controller_size]`` (``[B, 0]`` if feedforward)."""
        size = self.config.controller_size if self.lstm else 0
        zeros = torch.zeros(batch_size, size, **self._device_dtype)
        return zeros, zeros.clone()

    # -- one step ----------------------------------------------------------------------------

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """The controller's input projection ``x W_x^T + b``: ``[..., gates]``."""
        return torch.nn.functional.linear(x, self.w_x, self.bias)

    def controller_step(
        self, projected: torch.Tensor, reads: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Controller update.

        Args:
          projected: ``[B, gates]``, :meth:`project_input` of ``x_t``.
          reads: ``[B, R, W]``, the previous step's read vectors.
          h, c: ``[B, C]``, the previous controller state (``[B, 0]`` if feedforward).

        Returns:
          ``(output, h, c)``: the clipped controller output ``[B, C]`` and the new state.
        """
        flat = reads.flatten(1)
        if self.lstm:
            gates = torch.addmm(projected, torch.cat([flat, h], dim=1), self.w_r.t())
            size = self.config.controller_size
            if self.gate_gain is not None:
                per_gate = torch.nn.functional.layer_norm(gates.view(-1, 4, size), (size,))
                gates = (per_gate * self.gate_gain + self.gate_shift).flatten(1)
            ifo, g = gates.split([3 * size, size], dim=1)
            i, f, o = torch.sigmoid(ifo).chunk(3, dim=1)
            c = torch.addcmul(f * c, i, torch.tanh(g))
            h = o * torch.tanh(c if self.cell_norm is None else self.cell_norm(c))
            out = h
        else:
            out = torch.relu(torch.addmm(projected, flat, self.w_r.t()))
        clip = self.config.clip
        if clip > 0:
            out = out.clamp(-clip, clip)
        return out, h, c

    def emit(self, controller_out: torch.Tensor, reads: torch.Tensor) -> torch.Tensor:
        """Output logits ``[B, output_size]`` from the controller output and this step's reads."""
        if self.config.bypass_dropout > 0:
            controller_out = torch.nn.functional.dropout(controller_out, self.config.bypass_dropout, self.training)
        return self.output(torch.cat([controller_out, reads.flatten(1)], dim=1))

    def compile_step(self, **options: Any) -> MemoryCore:
        """Compile :meth:`step` with ``torch.compile`` (fixed shapes; one compile per batch size).

        The step's shapes do not depend on the sequence length, so sequences of any length reuse
        the compiled step. On 2 CPU cores this roughly doubled training throughput (see
        ``benchmarks/memory_nets.py``) after a compile of 30-60 s per batch size. ``options`` go
        to ``torch.compile``. With parameters on the CPU, Inductor's C++ wrapper is on by default
        (``options={"cpp_wrapper": True}``): a step is a few dozen small kernels, and calling them
        from C++ instead of Python made DNC training about 12% faster for 15 s more compile.
        Returns ``self``.
        """
        options.setdefault("dynamic", False)
        if self.w_x.device.type == "cpu" and options.get("backend", "inductor") == "inductor":
            options["options"] = {"cpp_wrapper": True, **options.get("options", {})}
        self.step = torch.compile(self.step, **options)  # type: ignore[method-assign]
        return self

    def step(self, projected: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:  # pragma: no cover
        raise NotImplementedError

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> Any:  # pragma: no cover
        raise NotImplementedError

    # -- public forward ----------------------------------------------------------------------

    def _check_state_batch(self, state: Any, batch: int, what: str) -> None:
        state_batch = state.memory.shape[0]
        if state_batch != batch:
            layout = "[batch, time, features]" if self.config.batch_first else "[time, batch, features]"
            raise ValueError(
                f"{what} has batch size {batch} but the state has {state_batch}; sequences must be "
                f"{layout} (batch_first={self.config.batch_first}) and steps [batch, features]"
            )

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """One step (``x`` ``[B, input_size]``) or a sequence (``x`` ``[T, B, input_size]``).

        Returns:
          ``(y, state)``: logits ``[B, output_size]`` or ``[T, B, output_size]``, and the final state.
        """
        size = self.input_size
        if x.dim() == 2:
            if x.shape[1] != size:
                raise ValueError(f"a step input must be [batch, {size}], got {list(x.shape)}")
            if state is None:
                state = self.initial_state(x.shape[0])
            else:
                self._check_state_batch(state, x.shape[0], "the step input")
            return self.step(self.project_input(x), state)
        if x.dim() != 3:
            raise ValueError(
                f"input must be a step [batch, {size}] or a sequence "
                f"{'[batch, time' if self.config.batch_first else '[time, batch'}, {size}], got {list(x.shape)}"
            )
        if self.config.batch_first:
            x = x.transpose(0, 1)
        if x.shape[2] != size:
            layout = "[batch, time, " if self.config.batch_first else "[time, batch, "
            raise ValueError(f"a sequence must be {layout}{size}], got {list(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[1])
        else:
            self._check_state_batch(state, x.shape[1], "the sequence")
        projected = self.project_input(x)  # [T, B, gates]: one product for the whole sequence
        outputs = []
        for t in range(x.shape[0]):
            y, state = self.step(projected[t], state)
            outputs.append(y)
        y = torch.stack(outputs)
        if self.config.batch_first:
            y = y.transpose(0, 1)
        return y, state
