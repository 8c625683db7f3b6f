"""Helpers shared by the experiment scripts: device choice and rebuilding saved configurations."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import tyro

A = TypeVar("A")
R = TypeVar("R")


def rebuild(template: Any, saved: dict[str, Any]) -> Any:
    """A dataclass like ``template`` with the values of ``saved`` (``dataclasses.asdict`` output).

    Fields that ``saved`` lacks (options added after it was written, e.g. ``compile``) keep
    ``template``'s value.
    """
    values = {}
    for f in dataclasses.fields(template):
        if f.name not in saved:
            continue
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


def parse_and_run(
    args_class: type[A],
    run: Callable[[A], R],
    argv: Sequence[str] | None,
    doc: str | None,
    default: A | None = None,
) -> tuple[A, R]:
    """Parse flags into ``args_class`` (over ``default``) with tyro and call ``run`` on them.

    The help text is ``doc``'s first paragraph. A ``ValueError`` (a bad flag value, missing or
    corrupted data) becomes one ``error: ...`` line on stderr and exit status 2, not a traceback.
    """
    description = (doc or "").split("\n\n")[0]
    try:
        args = tyro.cli(args_class, args=argv, default=default, description=description)
        return args, run(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
