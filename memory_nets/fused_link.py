"""The DNC's temporal-link step, fused: link update and forward / backward weightings in one.

:func:`link_step` equals :func:`memory_nets.addressing.update_link` followed by
:func:`memory_nets.addressing.directional_weightings` (same arguments, same results, same
gradients). On CPU in float32 / float64 it runs a C kernel (``csrc/dnc_link.c``, built on first
use by :mod:`foundations.cbuild`) that walks each ``N x N`` link matrix once per step forward and
once backward. The link matrix is the DNC's only ``O(N^2)`` state; written with torch ops its
update and reads take four to ten passes over it per step, with autograd, which made them more
than half of a batch-16 training step on 2 CPU cores (``benchmarks/memory_nets.py``).

Everywhere else (CUDA, other dtypes, no C compiler, ``DRLS_NO_C_KERNELS=1``) it is the torch
code, which ``torch.compile`` can fuse on GPU. Eager code calls the kernel through an autograd
Function; a compiled step calls it as the opaque torch op ``drls::dnc_link_v1``, whose backward
is another op (see :func:`_register_ops`).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from foundations.cbuild import load_c_library
from memory_nets import addressing as A

_SOURCE = Path(__file__).with_name("csrc") / "dnc_link.c"
_REAL = {torch.float32: "float", torch.float64: "double"}
_LIBRARIES: dict[torch.dtype, ctypes.CDLL | None] = {}


def library(dtype: torch.dtype) -> ctypes.CDLL | None:
    """The kernel library for ``dtype`` (built and loaded on the first call), or None.

    :class:`memory_nets.DNC` calls this outside its step, so a compiled step only looks the
    library up (compilation never traces the build).
    """
    if dtype not in _LIBRARIES:
        lib = load_c_library(_SOURCE, {"REAL": _REAL[dtype]}) if dtype in _REAL else None
        if lib is not None:
            ptr, n = ctypes.c_void_p, ctypes.c_long
            lib.dnc_link_forward.argtypes = [n, n, n, ctypes.c_int] + [ptr] * 7
            lib.dnc_link_forward.restype = None
            lib.dnc_link_backward.argtypes = [n, n, n, ctypes.c_int] + [ptr] * 11
            lib.dnc_link_backward.restype = ctypes.c_int
        _LIBRARIES[dtype] = lib
    return _LIBRARIES[dtype]


def _threads(slots: int) -> int:
    """torch's intra-op thread count, but no more threads than link matrices to share out."""
    return max(1, min(torch.get_num_threads(), slots))


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _kernel_forward(
    link: torch.Tensor, precedence: torch.Tensor, write: torch.Tensor, reads: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Kernel call. ``link [S, N, N]``, ``precedence, write [S, N]``, ``reads [S, R, N]``."""
    link, precedence, write, reads = (t.contiguous() for t in (link, precedence, write, reads))
    s, r, n = reads.shape
    new = torch.empty_like(link)
    forward = torch.empty_like(reads)
    backward = torch.empty_like(reads)
    lib = _LIBRARIES[link.dtype]
    assert lib is not None
    lib.dnc_link_forward(
        s,
        n,
        r,
        _threads(s),
        *map(_ptr, (link, precedence, write, reads, new, forward, backward)),
    )
    return new, forward, backward


def _kernel_backward(
    grad_new: torch.Tensor | None,
    grad_forward: torch.Tensor | None,
    grad_backward: torch.Tensor | None,
    link: torch.Tensor,
    precedence: torch.Tensor,
    write: torch.Tensor,
    reads: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients with respect to ``(link, precedence, write, reads)`` (``None`` grads are zeros)."""
    link, precedence, write, reads = (t.contiguous() for t in (link, precedence, write, reads))
    s, r, n = reads.shape
    grad_forward = torch.zeros_like(reads) if grad_forward is None else grad_forward.contiguous()
    grad_backward = torch.zeros_like(reads) if grad_backward is None else grad_backward.contiguous()
    grad_new = None if grad_new is None else grad_new.contiguous()
    grads = (
        torch.empty_like(link),
        torch.empty_like(precedence),
        torch.empty_like(write),
        torch.empty_like(reads),
    )
    lib = _LIBRARIES[link.dtype]
    assert lib is not None
    args = (grad_new, link, precedence, write, reads, grad_forward, grad_backward, *grads)
    if lib.dnc_link_backward(s, n, r, _threads(s), *map(_ptr, args)) != 0:
        raise MemoryError("dnc_link_backward could not allocate its scratch rows")
    return grads


class _LinkFunction(torch.autograd.Function):
    """The kernel under autograd, for eager mode (an autograd Function costs least per call)."""

    @staticmethod
    def forward(ctx, link, precedence, write, reads):
        ctx.save_for_backward(link, precedence, write, reads)
        return _kernel_forward(link, precedence, write, reads)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_new, grad_forward, grad_backward):
        return _kernel_backward(grad_new, grad_forward, grad_backward, *ctx.saved_tensors)


def _register_ops() -> object | None:
    """The kernel as torch ops ``drls::dnc_link_v1`` and ``drls::dnc_link_v1_backward``, or None.

    ``torch.compile`` cannot trace into a ctypes call, so a compiled step calls these opaque ops
    (through :class:`_LinkOps`, whose forward and backward Dynamo traces). The name carries a
    version: AOTAutograd caches compiled backward graphs by the forward graph, so a change to
    the backward's signature needs a new name. Needs ``torch.library.register_fake`` (torch >=
    2.4); without it a compiled step graph-breaks around :class:`_LinkFunction` instead.
    """
    if not hasattr(torch.library, "register_fake"):
        return None
    lib = torch.library.Library("drls", "FRAGMENT")
    lib.define(
        "dnc_link_v1(Tensor link, Tensor precedence, Tensor write, Tensor reads) -> (Tensor, Tensor, Tensor)"
    )
    lib.define(
        "dnc_link_v1_backward(Tensor? grad_new, Tensor? grad_forward, Tensor? grad_backward, Tensor link, "
        "Tensor precedence, Tensor write, Tensor reads) -> (Tensor, Tensor, Tensor, Tensor)"
    )
    lib.impl("dnc_link_v1", _kernel_forward, "CPU")
    lib.impl("dnc_link_v1_backward", _kernel_backward, "CPU")

    def fake_forward(link, precedence, write, reads):
        return torch.empty_like(link), torch.empty_like(reads), torch.empty_like(reads)

    def fake_backward(grad_new, grad_forward, grad_backward, link, precedence, write, reads):
        return (
            torch.empty_like(link),
            torch.empty_like(precedence),
            torch.empty_like(write),
            torch.empty_like(reads),
        )

    torch.library.register_fake("drls::dnc_link_v1", fake_forward, lib=lib)
    torch.library.register_fake("drls::dnc_link_v1_backward", fake_backward, lib=lib)
    return lib  # kept alive: the registrations last as long as this object


class _LinkOps(torch.autograd.Function):
    """The kernel ops under autograd, for compiled steps (no Python autograd kernel on the op)."""

    @staticmethod
    def forward(ctx, link, precedence, write, reads):
        ctx.save_for_backward(link, precedence, write, reads)
        return torch.ops.drls.dnc_link_v1(link, precedence, write, reads)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_new, grad_forward, grad_backward):
        return torch.ops.drls.dnc_link_v1_backward(
            grad_new, grad_forward, grad_backward, *ctx.saved_tensors
        )


_OPS = _register_ops()


def uses_kernel(link: torch.Tensor) -> bool:
    """Whether :func:`link_step` runs the C kernel for a link tensor like this one."""
    return link.device.type == "cpu" and _LIBRARIES.get(link.dtype) is not None


def link_step(
    link: torch.Tensor,
    precedence: torch.Tensor,
    write_weights: torch.Tensor,
    read_weights: torch.Tensor,
    off_diagonal: torch.Tensor | None = None,
    kernel: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """New temporal links and the read heads' forward / backward weightings along them.

    Args:
      link: ``[B, Hw, N, N]``, the previous link matrices.
      precedence: ``[B, Hw, N]``, the *previous* step's precedence.
      write_weights: ``[B, Hw, N]``, this step's write weightings.
      read_weights: ``[B, R, N]``, the previous step's read weightings.
      off_diagonal: optional ``[N, N]`` mask ``1 - I`` for the torch path.
      kernel: False runs the torch code even where the kernel could run.

    Returns:
      ``(link, forward, backward)``: ``[B, Hw, N, N]`` and ``[B, R, Hw, N]`` twice, equal to
      ``update_link(link, precedence, write_weights)`` and ``directional_weightings`` of it.
      The C kernel runs when :func:`library` has been loaded for this dtype and the tensors
      are on the CPU (see the module docstring).
    """
    if not (kernel and uses_kernel(link)):
        new = A.update_link(link, precedence, write_weights, off_diagonal)
        forward, backward = A.directional_weightings(new, read_weights)
        return new, forward, backward
    b, hw, n, _ = link.shape
    r = read_weights.shape[1]
    if hw == 1:
        reads = read_weights
    else:  # each write head's links are read by every read head
        reads = read_weights.unsqueeze(1).expand(b, hw, r, n).reshape(b * hw, r, n)
    fused = (
        _LinkOps.apply
        if _OPS is not None and torch.compiler.is_compiling()
        else _LinkFunction.apply
    )
    new, forward, backward = fused(
        link.reshape(b * hw, n, n),
        precedence.reshape(b * hw, n),
        write_weights.reshape(b * hw, n),
        reads,
    )
    new = new.view(b, hw, n, n)
    forward = forward.view(b, hw, r, n).transpose(1, 2)
    backward = backward.view(b, hw, r, n).transpose(1, 2)
    return new, forward, backward
