"""Argument checks shared by configs and constructors: one wording for one kind of mistake."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int >= 1 (not a bool), else ``ValueError`` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def choose(kind: str, name: str, options: Mapping[str, T]) -> T:
    """``options[name]``, or ``ValueError`` listing the known names of this ``kind`` (e.g. "preset")."""
    try:
        return options[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {sorted(options)}") from None


def unit_interval(name: str, value: float) -> float:
    """``value`` if ``0 <= value <= 1``, else ``ValueError`` naming ``name``."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def one_line(error: BaseException) -> str:
    """An exception as one line for the user: an ``OSError``'s reason and path
    ("No such file or directory: runs/x/checkpoint.pt"), otherwise the first line of its text."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror if error.filename is None else f"{error.strerror}: {error.filename}"
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
