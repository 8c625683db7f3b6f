"""Shared helpers for benchmark scripts: timing and the what / ours / peer / ratio table."""

from __future__ import annotations

import importlib.util
import statistics
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


def print_table(title: str, rows: list[tuple[str, float | None, float | None]], unit: str,
                notes: list[str] | None = None, missing_peer: str | None = None) -> None:
    """Print a markdown table; ``None`` shows as ``n/a`` (no peer, or one that is not
    installed), then ``notes`` as a list, then, when ``missing_peer`` names a peer library that
    is not installed, how to install it (the ``bench`` extra)."""
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
    for note in notes or []:
        print(f"- {note}")
    if missing_peer is not None:
        print(f"peer: {missing_peer} is not installed (pip install -e '.[bench]'); its column is n/a")


def eager_and_compiled_rows(label: str, runs: dict[str, list[float]], first: dict[str, list[float]],
                            first_what: str) -> tuple[list[tuple[str, float | None, float | None]], list[str]]:
    """Table rows (medians) for ``runs["eager"]``, ``runs["compiled"]`` (if measured) against
    ``runs["peer"]``, and a note comparing the first round's ``first_what`` times (the round in
    which ``--compile`` compiles; later rounds in the process reuse torch.compile's caches)."""
    med = {k: statistics.median(v) if v else None for k, v in runs.items()}
    rows = [(f"{label}, eager (default)", med["eager"], med["peer"])]
    if med.get("compiled") is None:
        return rows, []
    rows.append((f"{label}, --compile", med["compiled"], med["peer"]))
    return rows, [f"{label}: {first_what} {first['eager'][0]:.3f} s eager, {first['compiled'][0]:.1f} s with "
                  "--compile (first round: it compiles)"]


def missing(module: str, name: str) -> str | None:
    """``name`` when the peer's ``module`` cannot be imported here, else ``None`` (for ``missing_peer``)."""
    return name if importlib.util.find_spec(module) is None else None
