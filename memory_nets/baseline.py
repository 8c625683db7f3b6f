"""An LSTM with a linear read-out and the memory cores' interface: the baseline of the tasks."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from foundations.checks import positive_int


class LSTMState(NamedTuple):
    """``h``, ``c``: ``[layers, B, hidden]``."""

    h: torch.Tensor
    c: torch.Tensor

    def detach(self) -> LSTMState:
        return LSTMState(self.h.detach(), self.c.detach())


class LSTMBaseline(nn.Module):
    """``nn.LSTM`` + linear output; ``forward(x [T, B, in], state) -> (logits [T, B, out], state)``."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.lstm = nn.LSTM(input_size, positive_int("hidden_size", hidden_size),
                            positive_int("num_layers", num_layers), device=device, dtype=dtype)
        self.output = nn.Linear(hidden_size, positive_int("output_size", output_size), device=device, dtype=dtype)

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> LSTMState:
        p = self.output.weight
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return LSTMState(torch.zeros(shape, device=p.device, dtype=p.dtype), torch.zeros(shape, device=p.device, dtype=p.dtype))

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"a sequence must be [time, batch, {self.input_size}], got {list(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[1])
        y, (h, c) = self.lstm(x, tuple(state))
        return self.output(y), LSTMState(h, c)
