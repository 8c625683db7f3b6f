"""Waiting in a test for another process: on a condition, never on a clock reading that a
loaded machine could miss. The limit only turns a hang into a failure that names what was
awaited (pytest-timeout's 900 s per test is the outer bound)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HANG_S = 600.0


def wait_until(condition: Callable[[], T], what: str, proc: subprocess.Popen | None = None,
               poll_s: float = 0.1, limit_s: float = HANG_S) -> T:
    """Poll ``condition`` until it returns something true and return that; fails at once if
    ``proc`` ends first (with its output), and after ``limit_s`` seconds as a hang."""
    deadline = time.monotonic() + limit_s
    while True:
        result = condition()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (status {proc.returncode}) while waiting for {what}: "
                                 f"{(err or '')[-2000:] or (out or '')[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {limit_s:.0f} s: a hang")
        time.sleep(poll_s)
