"""Helpers shared by the experiment scripts: device choice and rebuilding saved configurations."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch


def rebuild(template: Any, saved: dict[str, Any]) -> Any:
    """A dataclass like ``template`` with the values of ``saved`` (``dataclasses.asdict`` output)."""
    values = {}
    for f in dataclasses.fields(template):
        current, value = getattr(template, f.name), saved[f.name]
        if dataclasses.is_dataclass(current):
            value = rebuild(current, value)
        elif isinstance(current, tuple):
            value = tuple(value)
        values[f.name] = value
    return dataclasses.replace(template, **values)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; a CUDA device asked for without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available; use --device cpu")
    return device
