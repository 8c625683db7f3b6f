"""Ctrl-C and SIGTERM as requests to stop cleanly, for training loops.

Inside ``with StopRequests() as stop:`` the first SIGINT or SIGTERM only records itself
(``stop.signal``); the loop checks ``stop.requested`` after each step, writes its checkpoint and
returns. A second signal raises :class:`Interrupted` at once (the user insists), unless it comes
within :data:`REPEAT_WINDOW` seconds of the first: the kernel may deliver one parent-death
signal several times (once per thread of a dying parent), and a key held down repeats. The
previous handlers come back on exit. Outside the main thread (where Python cannot install handlers) it
does nothing.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_WINDOW = 1.0
"""seconds after the first signal during which further ones count as the same request."""


class Interrupted(Exception):
    """A second SIGINT/SIGTERM arrived while a stop was already requested.

    Attributes:
      signum: the signal number (exit status convention: ``128 + signum``).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted again by {signal.Signals(signum).name}")
        self.signum = signum


class StopRequests:
    """Context manager that turns SIGINT / SIGTERM into a stop request (see the module docstring)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._at = 0.0
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_status(self) -> int:
        """``128 + signal`` (130 for SIGINT, 143 for SIGTERM), 0 when no stop was requested."""
        return 0 if self.signal is None else 128 + self.signal

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal, self._at = signum, time.monotonic()
        elif time.monotonic() - self._at > REPEAT_WINDOW:
            raise Interrupted(signum)

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
