"""Helpers shared by the experiment scripts: device choice and rebuilding saved configurations."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
import tyro

import memory_nets.rl_tasks  # noqa: F401 - registers the memory tasks' env ids (MemoryCopy-v0 ...)
from foundations.checks import one_line
from foundations.interrupts import Interrupted

A = TypeVar("A")
R = TypeVar("R")


def rebuild(template: Any, saved: dict[str, Any]) -> Any:
    """A dataclass like ``template`` with the values of ``saved`` (``dataclasses.asdict`` output).

    Fields that ``saved`` lacks (options added after it was written, e.g. ``compile``) keep
    ``template``'s value. A class whose fields were since rearranged brings an
    ``upgrade_saved(saved) -> saved`` static method that maps an earlier layout onto today's
    (e.g. :meth:`agents.actor_critic.ActorCriticConfig.upgrade_saved`).
    """
    upgrade = getattr(type(template), "upgrade_saved", None)
    if upgrade is not None:
        saved = upgrade(saved)
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


_TYRO_TAIL = ("Argument helptext", "For full helptext", "Similar arguments", "Perhaps you meant", "Arguments similar")


def tyro_one_line(text: str) -> str:
    """tyro's error panel (a title, the message, then help) as one line: ``title: message``."""
    rule = re.compile(r"^[\u2500\-\s]+$")
    kept: list[str] = []
    for raw in text.splitlines():
        line = raw.strip().strip("\u2502\u256d\u256e\u2570\u256f").strip()
        if not line:
            continue
        if rule.match(line):
            if len(kept) > 1:
                break  # the rule under the message: what follows is help
            continue
        if line.startswith(_TYRO_TAIL):
            break
        kept.append(line.strip("\u2500 "))
    if not kept:
        return "invalid command line (see --help)"
    title, message = kept[0], " ".join(kept[1:])
    # "Error parsing agent: <the config's own ValueError>": the message alone says it
    message = re.sub(r"^Error parsing [A-Za-z_.]+: ", "", message)
    if not message:
        return title
    if message.lower().startswith(title.lower()) or title.lower() == "value error":
        return message
    return f"{title.lower()}: {message}"


def cli(args_class: type[A], **kwargs: Any) -> A:
    """``tyro.cli`` whose parse errors (an unknown flag or choice, a value of the wrong type, a
    configuration's ``ValueError``) come out as one ``error: ...`` line with exit status 2,
    instead of a multi-line panel; ``--help`` prints as usual."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            out = tyro.cli(args_class, **kwargs)
    except SystemExit as e:
        if e.code in (0, None):  # --help
            sys.stdout.write(captured.getvalue())
            raise
        print(f"error: {tyro_one_line(captured.getvalue())}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.stderr.write(captured.getvalue())  # tyro's warnings, if any
    return out


def parse_and_run(
    args_class: type[A],
    run: Callable[[A], R],
    argv: Sequence[str] | None,
    doc: str | None,
    default: A | None = None,
) -> tuple[A, R]:
    """Parse flags into ``args_class`` (over ``default``) with tyro and call ``run`` on them,
    under :func:`one_line_errors`. The help text is ``doc``'s first paragraph."""
    description = (doc or "").split("\n\n")[0]
    with one_line_errors():
        args = cli(args_class, args=argv, default=default, description=description)
        return args, run(args)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """What every experiment CLI does with errors and signals, as one line on stderr.

    A ``ValueError`` or ``OSError`` (a bad flag value, missing or corrupted data, a path that
    cannot be written) exits with status 2, not a traceback (``DRLS_DEBUG=1``: the traceback).
    SIGINT / SIGTERM that the experiment does not handle itself (experiments with checkpoints
    stop cleanly on their own, see :mod:`foundations.interrupts`, and a second signal there
    raises ``Interrupted``) exit with 130 / 143; loggers close on the way out, so the event
    files written so far are complete.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupted) if main_thread else None
    try:
        yield
    except (ValueError, OSError) as e:
        if os.environ.get("DRLS_DEBUG"):
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted (SIGINT): stopped; what the run wrote so far (logs, checkpoints) is kept", file=sys.stderr)
        raise SystemExit(130) from None
    except Interrupted as e:
        print(f"interrupted ({signal.Signals(e.signum).name}): stopped at once; what the run wrote so far (logs, "
              "complete checkpoints) is kept", file=sys.stderr)
        raise SystemExit(128 + e.signum) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)
