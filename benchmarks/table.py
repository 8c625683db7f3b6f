"""Shared helpers for benchmark scripts: timing and the what / ours / peer / ratio table."""

from __future__ import annotations

import time
from collections.abc import Callable


def rate(fn: Callable[[], int], seconds: float, warmup: int = 3) -> float:
    """Call ``fn`` (which returns how many items it processed) for about ``seconds``; items/s."""
    for _ in range(warmup):
        fn()
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += fn()
    return done / elapsed


def print_table(title: str, rows: list[tuple[str, float | None, float | None]], unit: str) -> None:
    """Print a markdown table; ``None`` shows as ``n/a`` (a peer that is not installed)."""
    def fmt(v: float | None) -> str:
        if v is None:
            return "n/a"
        return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"

    print(f"\n### {title}\n")
    suffix = f" ({unit})" if unit else ""
    print(f"| what | ours{suffix} | peer{suffix} | ratio |")
    print("|---|---:|---:|---:|")
    for what, ours, peer in rows:
        ratio = f"{ours / peer:.2f}x" if ours is not None and peer else "n/a"
        print(f"| {what} | {fmt(ours)} | {fmt(peer)} | {ratio} |")
