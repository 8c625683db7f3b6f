"""A gated transformer over a sliding window of past steps, as an agent's memory (GTrXL).

Parisotto et al. 2020, "Stabilizing Transformers for Reinforcement Learning": each layer is a
Transformer-XL layer with (1) the identity-map reordering (layer norm on the inputs of the
attention and of the position-wise MLP, never on the residual stream, plus a ReLU on each
sub-layer's output) and (2) a GRU-type gate in place of each residual sum:

    r = sigmoid(W_r y + U_r x)
    z = sigmoid(W_z y + U_z x - b_g)          # b_g > 0: the layer starts close to the identity
    h = tanh(W_g y + U_g (r * x))
    g(x, y) = (1 - z) * x + z * h

``b_g`` is learned per unit, starting from ``gate_bias`` (2, the paper's value; RLlib's GTrXL
learns it too).

The memory is a window of the last ``window`` steps' inputs to every layer (``[layers, window,
batch, model_size]``) with their positions in the episode (``[window, batch]``, -1 for an empty
slot); a step attends to the stored steps of its own episode and to itself. Where a key lies in
time enters as a learned bias per head and lag (``lag = query time - key time``, 0..window,
added to the attention logits; zero at the start, learned at :data:`LAG_BIAS_GAIN` times the
step size), a relative position as in Transformer-XL and T5, not as a code added to the
residual stream: the stream is the core's output, and an
absolute episode position added to it (as this core once did, with a norm larger than the
embedding's) swamps the observation in what the heads read.

``core(x, state, starts)`` runs ``x`` ``[time, batch, input_size]`` at once, causally, with
``starts`` ``[time, batch]`` marking the steps that begin an episode (nothing before them is
attended to); running the steps one at a time gives the same outputs (tested).

Position encodings (``GatedTransformerConfig.position``): ``"learned"`` is the per-lag bias
above (the agents' core); ``"alibi"`` a fixed bias ``-m_h * lag`` per head with the geometric
slopes ``m_h = 2^(-8 h / heads)`` of ALiBi (Press et al. 2022), relative and defined at every
lag, so a model can run on sequences longer than any it was trained on; ``"sinusoid"`` the
absolute code of Vaswani et al. 2017 added to the embedding (positions counted from the start
of the episode or sequence; it cannot reach positions never trained on, and in an RL core it
swamps the observation, as said above); ``"none"``: no position information but the causal
mask. :class:`TransformerSequenceModel` puts the same layers behind the memory tasks' interface.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

import torch
from torch import nn

from foundations.checks import choose, positive_int

Position = Literal["learned", "alibi", "sinusoid", "none"]
POSITIONS: dict[str, str] = {
    "learned": "a learned bias per head and lag in the attention logits",
    "alibi": "ALiBi: a fixed bias -m_h * lag per head (extrapolates to unseen lengths)",
    "sinusoid": "absolute sinusoidal positions added to the embedding",
    "none": "no position information beyond the causal mask",
}

LAG_BIAS_GAIN = 10.0
"""The lag bias is stored divided by this (``bias = LAG_BIAS_GAIN * lag_bias``), so Adam, whose
steps are about the learning rate whatever the gradient's size, moves it this many times faster
than the other weights. Picking one step out of a 16-step window takes a bias of several nats,
which at a PPO learning rate of 1e-3 over a few thousand updates a bias learned at the common
rate barely reaches: on POPGym RepeatPrevious-Easy (60k steps) the best MMER over seeds 1-5 was
0.75 / 0.08 / 0.85 / 0.35 / 0.91 with a gain of 1, and 0.90 / 1.00 / 1.00 / 0.99 / 0.95 with
10 (``python -m benchmarks.learning --suite memory --tasks ppo-transformer-repeatprevious``)."""


class TransformerState(NamedTuple):
    """memory: ``[layers, window, batch, model_size]`` (oldest first); positions: ``[window,
    batch]`` episode positions of the stored steps (-1: empty); next_position: ``[batch]``."""

    memory: torch.Tensor
    positions: torch.Tensor
    next_position: torch.Tensor


@dataclasses.dataclass(frozen=True)
class GatedTransformerConfig:
    """Sizes of :class:`GatedTransformer`.

    Attributes:
      model_size: width of the residual stream (``d``).
      heads: attention heads (``model_size`` must divide by it).
      layers: transformer layers.
      window: past steps kept per layer (``K``; Transformer-XL's memory length).
      ff_size: hidden units of each layer's position-wise MLP.
      gate_bias: ``b_g``; 2 in the paper.
      position: how positions enter (module docstring): ``"learned"``, ``"alibi"``,
        ``"sinusoid"`` or ``"none"``.
    """

    model_size: int = 64
    heads: int = 4
    layers: int = 2
    window: int = 16
    ff_size: int = 128
    gate_bias: float = 2.0
    position: Position = "learned"

    def __post_init__(self) -> None:
        for name in ("model_size", "heads", "layers", "window", "ff_size"):
            positive_int(name, getattr(self, name))
        choose("position", self.position, POSITIONS)
        if self.model_size % self.heads:
            raise ValueError(f"model_size ({self.model_size}) must be a multiple of heads ({self.heads})")


class GRUGate(nn.Module):
    """``g(x, y)`` of the module docstring; ``x``, ``y``: ``[..., d]``."""

    def __init__(self, size: int, bias: float) -> None:
        super().__init__()
        self.w = nn.Linear(size, 3 * size, bias=False)  # W_r, W_z, W_g applied to y
        self.u = nn.Linear(size, 2 * size, bias=False)  # U_r, U_z applied to x
        self.u_g = nn.Linear(size, size, bias=False)
        self.bias = nn.Parameter(torch.full((size,), float(bias)))  # b_g, learned from its start value

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        wr, wz, wg = self.w(y).chunk(3, dim=-1)
        ur, uz = self.u(x).chunk(2, dim=-1)
        r = torch.sigmoid(wr + ur)
        z = torch.sigmoid(wz + uz - self.bias)
        h = torch.tanh(wg + self.u_g(r * x))
        return (1 - z) * x + z * h


class GatedLayer(nn.Module):
    """One GTrXL layer: gated attention over [memory; sequence], then a gated MLP."""

    def __init__(self, cfg: GatedTransformerConfig) -> None:
        super().__init__()
        d = cfg.model_size
        self.norm_attention = nn.LayerNorm(d)
        self.attention = nn.MultiheadAttention(d, cfg.heads)
        self.gate_attention = GRUGate(d, cfg.gate_bias)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.ff_size), nn.ReLU(), nn.Linear(cfg.ff_size, d))
        self.gate_mlp = GRUGate(d, cfg.gate_bias)
        self.heads = cfg.heads
        self.position = cfg.position
        if cfg.position == "learned":
            self.lag_bias = nn.Parameter(torch.zeros(cfg.heads, cfg.window + 1))  # [heads, lag 0..K]
        elif cfg.position == "alibi":
            slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / cfg.heads) for h in range(cfg.heads)])
            self.register_buffer("slopes", slopes, persistent=False)

    def lag_logits(self, lags: torch.Tensor) -> torch.Tensor | None:
        """The attention-logit bias of each head at ``lags`` ``[T, K + T]`` -> ``[heads, T, K + T]``
        (``None`` when positions do not enter the attention)."""
        if self.position == "learned":
            return LAG_BIAS_GAIN * self.lag_bias[:, lags]
        if self.position == "alibi":
            return -self.slopes[:, None, None] * lags.to(self.slopes.dtype)
        return None

    def forward(self, x: torch.Tensor, memory: torch.Tensor, blocked: torch.Tensor,
                lags: torch.Tensor) -> torch.Tensor:
        """x: ``[T, B, d]``; memory: ``[K, B, d]``; blocked: ``[B, T, K + T]`` (True: not
        attended); lags: ``[T, K + T]`` query time minus key time, clamped to 0..K -> ``[T, B, d]``."""
        keys = self.norm_attention(torch.cat([memory, x], dim=0))
        query = keys[memory.shape[0]:]
        batch = blocked.shape[0]
        bias = self.lag_logits(lags)  # [heads, T, K + T]
        if bias is None:
            bias = keys.new_zeros(self.heads, *lags.shape)
        mask = bias.unsqueeze(0).masked_fill(blocked.unsqueeze(1), float("-inf"))  # [B, heads, T, K + T]
        mask = mask.reshape(batch * self.heads, *mask.shape[2:])  # row b * heads + h, as attention expects
        y, _ = self.attention(query, keys, keys, attn_mask=mask, need_weights=False)
        x = self.gate_attention(x, torch.relu(y))
        return self.gate_mlp(x, torch.relu(self.mlp(self.norm_mlp(x))))


class GatedTransformer(nn.Module):
    """GTrXL over a sliding window (module docstring): ``[T, B, input_size] -> [T, B, model_size]``."""

    def __init__(self, input_size: int, config: GatedTransformerConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or GatedTransformerConfig()
        positive_int("input_size", input_size)
        self.embed = nn.Linear(input_size, cfg.model_size)
        self.layers = nn.ModuleList(GatedLayer(cfg) for _ in range(cfg.layers))
        self.output_size = cfg.model_size

    def initial_state(self, batch_size: int) -> TransformerState:
        cfg, p = self.config, self.embed.weight
        return TransformerState(
            memory=p.new_zeros(cfg.layers, cfg.window, batch_size, cfg.model_size),
            positions=torch.full((cfg.window, batch_size), -1, dtype=torch.long, device=p.device),
            next_position=torch.zeros(batch_size, dtype=torch.long, device=p.device),
        )

    def forward(self, x: torch.Tensor, state: TransformerState,
                starts: torch.Tensor | None = None) -> tuple[torch.Tensor, TransformerState]:
        """x: ``[T, B, input_size]``; starts: ``[T, B]`` bool (a step that begins an episode)
        -> (``[T, B, model_size]``, the state after the last step)."""
        steps, batch = x.shape[:2]
        window = self.config.window
        if starts is None:
            starts = torch.zeros(steps, batch, dtype=torch.bool, device=x.device)
        starts = starts.to(torch.bool)
        # Episode index of each step (0 = the episode the memory belongs to) and its position.
        episode = torch.cumsum(starts.long(), dim=0)  # [T, B]
        t = torch.arange(steps, device=x.device).unsqueeze(1)  # [T, 1]
        last_start = torch.cummax(torch.where(starts, t, torch.full_like(t, -1)).expand(steps, batch), dim=0).values
        positions = torch.where(last_start >= 0, t - last_start, state.next_position + t)  # [T, B]
        # Keys: K memory slots (times -K..-1), then the sequence (times 0..T-1).
        key_time = torch.arange(-window, steps, device=x.device)  # [K + T]
        key_episode = torch.cat([torch.where(state.positions >= 0, 0, -1), episode], dim=0)  # [K + T, B]
        query_time = t.squeeze(1)
        allowed = ((key_time[None, :] <= query_time[:, None]) & (key_time[None, :] >= query_time[:, None] - window))
        same = key_episode.T[:, None, :] == episode.T[:, :, None]  # [B, T, K + T]
        blocked = ~(allowed[None] & same)
        lags = (query_time[:, None] - key_time[None, :]).clamp(0, window)  # [T, K + T]; blocked beyond
        h = self.embed(x)
        if self.config.position == "sinusoid":
            h = h + sinusoid(positions, self.config.model_size).to(h.dtype)
        memories = []
        for layer, memory in zip(self.layers, state.memory, strict=True):
            memories.append(torch.cat([memory, h], dim=0)[-window:])
            h = layer(h, memory, blocked, lags)
        kept = torch.cat([torch.where(key_episode[:window] == 0, state.positions, -1), positions], dim=0)
        valid = torch.cat([key_episode[:window], episode], dim=0) == episode[-1:]  # the last step's episode
        new_positions = torch.where(valid, kept, -1)[-window:]
        return h, TransformerState(torch.stack(memories), new_positions, positions[-1] + 1)


def sinusoid(positions: torch.Tensor, size: int) -> torch.Tensor:
    """Vaswani et al.'s absolute code: ``positions`` ``[...]`` (int) -> ``[..., size]``, sines on
    even and cosines on odd channels at wavelengths from 2 pi to 10000 * 2 pi."""
    half = torch.arange(0, size, 2, device=positions.device, dtype=torch.float32)
    angles = positions.unsqueeze(-1).float() * torch.exp(-math.log(10_000.0) * half / size)  # [..., ceil(size / 2)]
    code = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)
    return code[..., :size]


class TransformerSequenceModel(nn.Module):
    """A causal decoder over a task's input sequence, the memory tasks' interface:
    ``forward(x [T, B, in], state=None) -> (logits [T, B, out], state)``.

    :class:`GatedTransformer` (its gated layers, window and position options) then a linear
    read-out; each output sees its own input and the ``window`` before it. A call without a state
    starts a fresh sequence (nothing of an earlier call is attended to); passing the returned state
    continues it, so stepping one input at a time gives the whole-sequence outputs (tested).
    The window must cover the longest sequence for every output to see the sequence's start
    (copy of length ``L``: ``2 L + 2`` steps).
    """

    def __init__(self, input_size: int, output_size: int, config: GatedTransformerConfig | None = None) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.transformer = GatedTransformer(input_size, config)
        self.config = self.transformer.config
        self.output = nn.Linear(self.config.model_size, positive_int("output_size", output_size))

    def initial_state(self, batch_size: int) -> TransformerState:
        return self.transformer.initial_state(batch_size)

    def forward(self, x: torch.Tensor, state: TransformerState | None = None) -> tuple[torch.Tensor, TransformerState]:
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"a sequence must be [time, batch, {self.input_size}], got {list(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[1])
        h, state = self.transformer(x, state)
        return self.output(h), state
