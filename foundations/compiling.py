"""``torch.compile`` for the agents' ``compile`` option: one definition, compiled.

An agent with ``compile=True`` passes its own readable methods (the loss of an update, the
acting forward) through :func:`compile_function`; nothing is rewritten by hand, so an edit to
the method is an edit to what the compiled code computes (Dynamo re-traces it). On CUDA the
compiled function runs under CUDA graphs (``mode="reduce-overhead"``), as LeanRL does for
CleanRL's scripts; elsewhere with Inductor's default mode.

Before the first compile, :func:`check_compile` compiles and runs a one-line function on the
device, so a torch without a working backend (no C++ compiler for Inductor's CPU code, a
Python that Dynamo does not support) fails at start with one clear line instead of deep
inside the first update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class CompileUnavailableError(ValueError):
    """``compile=True`` asked for on a torch / device where ``torch.compile`` does not work."""


_CHECKED: dict[str, str | None] = {}  # device type -> None (works) or the reason it does not


def check_compile(device: str | torch.device) -> None:
    """Raise :class:`CompileUnavailableError` (one line, with torch's reason) if ``torch.compile``
    cannot compile and run a trivial function on ``device``; cached per device type."""
    kind = torch.device(device).type
    if kind not in _CHECKED:
        try:
            probe = torch.compile(lambda x: x * 2.0 + 1.0, dynamic=False)
            ok = bool(probe(torch.ones(2, device=device)).eq(3.0).all())
            _CHECKED[kind] = None if ok else "a compiled probe returned wrong values"
        except Exception as e:  # any backend failure: missing compiler, unsupported Python, ...
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            _CHECKED[kind] = f"{type(e).__name__}: {first}"
    reason = _CHECKED[kind]
    if reason is not None:
        raise CompileUnavailableError(
            f"--compile needs a working torch.compile backend on {kind} (torch {torch.__version__}); "
            f"it failed with {reason}. Run without --compile, or install a C++ compiler (CPU) / a CUDA build of torch"
        )


def compiled_if(enabled: bool, fn: Callable[..., Any], device: str | torch.device) -> Callable[..., Any]:
    """:func:`compile_function` of ``fn`` when ``enabled`` (an agent's ``compile`` option), else ``fn``."""
    return compile_function(fn, device) if enabled else fn


def compile_function(fn: Callable[..., Any], device: str | torch.device, **options: Any) -> Callable[..., Any]:
    """``torch.compile(fn)`` for tensors on ``device`` (checked first with :func:`check_compile`).

    On CUDA: ``mode="reduce-overhead"`` (CUDA graphs). Each call then starts a new graph step
    and returns copies of the output tensors, because CUDA-graph outputs live in memory the next
    replay overwrites and callers here keep metrics across steps. ``options`` go to
    ``torch.compile`` (and replace the mode).
    """
    check_compile(device)
    if torch.device(device).type != "cuda":
        return torch.compile(fn, **options)
    compiled = torch.compile(fn, **{"mode": "reduce-overhead", **options})

    def run(*args: Any, **kwargs: Any) -> Any:
        torch.compiler.cudagraph_mark_step_begin()
        out = compiled(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            return out.clone()
        if isinstance(out, tuple):
            return tuple(o.clone() if isinstance(o, torch.Tensor) else o for o in out)
        return out

    return run
