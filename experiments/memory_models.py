"""The sequence models the memory experiments train (NTM, DNC, LSTM, transformer), built from
one set of options, so ``experiments.memory_task`` and ``experiments.babi`` offer the same models
with the same flags.

An experiment's options dataclass carries the fields named in :data:`MODEL_OPTIONS` (with the
defaults it chooses); :func:`check_model_options` refuses an option of another model that was
changed, and :func:`make_model` builds ``args.model`` for given input and output widths.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from agents.schedules import linear_schedule, set_learning_rate  # noqa: F401 (the experiments call it from here)
from memory_nets import DNC, NTM
from memory_nets.baseline import LSTMBaseline
from memory_nets.transformer import GatedTransformerConfig, TransformerSequenceModel

#: Options added after checkpoints of the memory experiments were first written, with the value
#: those runs trained with: a resumed run continues as it started, whatever today's default.
OPTIONS_BEFORE_THEY_EXISTED: dict[str, Any] = {"anneal_lr": False, "bypass_dropout": 0.0,
                                               "controller_layer_norm": False}

#: The options each model reads; another model's option changed from its default is refused.
MODEL_OPTIONS: dict[str, frozenset[str]] = {
    "ntm": frozenset({"controller", "controller_size", "memory_slots", "word_size", "read_heads", "write_heads",
                      "shift_range", "memory_init", "bypass_dropout", "controller_layer_norm", "compile"}),
    "dnc": frozenset({"controller", "controller_size", "memory_slots", "word_size", "read_heads", "write_heads",
                      "memory_init", "bypass_dropout", "controller_layer_norm", "compile"}),
    "lstm": frozenset({"controller_size"}),
    "transformer": frozenset({"model_size", "heads", "layers", "ff_size", "window", "position"}),
}


def check_model_options(args: Any) -> None:
    """``ValueError`` naming an option that ``args.model`` does not read and that was set (differs
    from the dataclass's default): ``--position alibi`` with ``--model dnc`` would otherwise be
    silently ignored."""
    if not 0.0 <= getattr(args, "bypass_dropout", 0.0) < 1.0:
        raise ValueError(f"--bypass-dropout must be in [0, 1), got {args.bypass_dropout}")
    defaults = {f.name: f.default for f in dataclasses.fields(args)}
    own = MODEL_OPTIONS[args.model]
    for name in sorted(set().union(*MODEL_OPTIONS.values()) - own):
        if name in defaults and getattr(args, name) != defaults[name]:
            users = [m for m, names in MODEL_OPTIONS.items() if name in names]
            raise ValueError(f"--{name.replace('_', '-')} is an option of --model {'/'.join(users)}, "
                             f"not of --model {args.model}")


def transformer_config(args: Any) -> GatedTransformerConfig:
    """The transformer's sizes from ``args``."""
    return GatedTransformerConfig(model_size=args.model_size, heads=args.heads, layers=args.layers,
                                  window=args.window, ff_size=args.ff_size, position=args.position)


def make_model(args: Any, input_size: int, output_size: int, device: torch.device) -> nn.Module:
    """``args.model`` for inputs ``[T, B, input_size]`` and logits ``[T, B, output_size]``."""
    if args.model in ("ntm", "dnc"):
        shared = dict(controller=args.controller, controller_size=args.controller_size, memory_slots=args.memory_slots,
                      word_size=args.word_size, read_heads=args.read_heads, write_heads=args.write_heads,
                      memory_init=args.memory_init, bypass_dropout=getattr(args, "bypass_dropout", 0.0),
                      layer_norm=getattr(args, "controller_layer_norm", False))
        if args.model == "ntm":
            model: nn.Module = NTM(input_size, output_size, device=device, shift_range=args.shift_range, **shared)
        else:
            model = DNC(input_size, output_size, device=device, **shared)
        if args.compile:
            model.compile_step()
        return model
    if args.model == "transformer":
        return TransformerSequenceModel(input_size, output_size, transformer_config(args)).to(device)
    if args.model == "lstm":
        return LSTMBaseline(input_size, output_size, args.controller_size, device=device)
    raise ValueError(f"unknown model {args.model!r}; choose one of {sorted(MODEL_OPTIONS)}")


def make_optimizer(args: Any, model: nn.Module) -> torch.optim.Optimizer:
    """``args.optimizer``: RMSProp with ``args.momentum`` (the NTM and DNC papers': decay 0.95,
    epsilon 1e-10) or Adam, at ``args.learning_rate``."""
    if args.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=args.learning_rate, momentum=args.momentum, alpha=0.95,
                                   eps=1e-10)
    return torch.optim.Adam(model.parameters(), lr=args.learning_rate)


def annealed_learning_rate(args: Any, seen: int, total: int) -> float:
    """The step size after ``seen`` of ``total`` training sequences: ``args.learning_rate``, or
    with ``args.anneal_lr`` that rate scaled down linearly to 0 at ``total``. A function of the
    count only, so a resumed run continues the same schedule with no scheduler state to save."""
    if not getattr(args, "anneal_lr", False):
        return args.learning_rate
    return linear_schedule(args.learning_rate, 0.0, total, seen)

