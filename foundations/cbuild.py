"""Build a C source file into a shared library on first use, cached on disk, loaded with ctypes.

For small fused CPU kernels (see ``memory_nets/csrc``). The same idea as ``torch.compile``'s CPU
backend, without its graph capture: the system C compiler builds the library once per source,
options and machine; later processes load it from the cache in milliseconds.

* Compiler: ``$CC``, else ``cc``. Options are tried from fastest to most portable (OpenMP and
  ``-march=native``; OpenMP only; vectorisation pragmas only; plain ``-O3``), so a compiler
  without OpenMP (Apple clang) still gives a working, single-threaded library.
* Cache: ``$DRLS_CACHE_DIR``, else ``$XDG_CACHE_HOME/deep-rl-sandbox``, else
  ``~/.cache/deep-rl-sandbox``, under ``c/``. The file name hashes the source, the defines,
  the compiler's version and this CPU's feature flags, so a shared home directory on a
  heterogeneous cluster never loads a library built for another CPU. Libraries are written to a
  temporary name and renamed into place, so concurrent processes never load a half-written file.
* ``DRLS_NO_C_KERNELS=1`` turns every C kernel off (callers fall back to their torch code).

Failure to build is not an error: :func:`load_c_library` warns once, with the compiler's
message, and returns ``None``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

DISABLE_ENV = "DRLS_NO_C_KERNELS"
_BASE = ["-O3", "-shared", "-fPIC", "-std=c11"]
# Tried in order; the first that compiles wins.
_OPTION_SETS = (
    ["-fopenmp", "-march=native"],
    ["-fopenmp"],
    ["-fopenmp-simd"],
    [],
)


def c_kernels_enabled() -> bool:
    """False when ``DRLS_NO_C_KERNELS`` is set to a non-empty value other than ``0``."""
    return os.environ.get(DISABLE_ENV, "") in ("", "0")


def cache_dir() -> Path:
    """Where compiled libraries are kept (created on demand)."""
    root = os.environ.get("DRLS_CACHE_DIR")
    if root:
        return Path(root) / "c"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "deep-rl-sandbox" / "c"


@functools.cache
def _compiler() -> tuple[str, str] | None:
    """``(path, version line)`` of the C compiler, or None if there is none."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        return None
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return cc, (out.stdout.splitlines() or [""])[0]


@functools.cache
def _cpu_fingerprint() -> str:
    """The machine and its CPU feature flags (what ``-march=native`` depends on)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = line
                    break
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {flags}"


_FAILED: set[str] = set()


def load_c_library(
    source: Path | str, defines: Mapping[str, str] | None = None
) -> ctypes.CDLL | None:
    """The shared library built from ``source`` (with ``-D`` ``defines``), or None.

    Args:
      source: a ``.c`` file (it may ``#include`` headers next to it; their text is hashed too).
      defines: preprocessor macros, e.g. ``{"REAL": "float"}``.

    Returns:
      The loaded library (cached: the same source and defines compile once per machine), or
      None if C kernels are disabled, there is no compiler, or compilation failed (a warning
      says why, once per source and defines).
    """
    if not c_kernels_enabled():
        return None
    compiler = _compiler()
    if compiler is None:
        _warn_once(str(source), "no C compiler found (set $CC)")
        return None
    cc, version = compiler
    source = Path(source)
    defines = dict(defines or {})
    flags = [f"-D{k}={v}" for k, v in sorted(defines.items())]
    digest = hashlib.sha256()
    for part in (version, _cpu_fingerprint(), " ".join(_BASE + flags), repr(_OPTION_SETS)):
        digest.update(part.encode())
    for path in sorted([source, *source.parent.glob("*.h")]):
        digest.update(path.read_bytes())
    target = cache_dir() / f"{source.stem}-{digest.hexdigest()[:20]}.so"
    key = f"{source}:{flags}"
    if not target.exists():
        error = _build(cc, source, flags, target)
        if error is not None:
            _warn_once(key, error)
            return None
    try:
        return ctypes.CDLL(str(target))
    except OSError as e:
        _warn_once(key, f"built {target} but could not load it: {e}")
        return None


def _build(cc: str, source: Path, flags: list[str], target: Path) -> str | None:
    """Compile ``source`` to ``target`` atomically; None on success, else the compiler's message."""
    target.parent.mkdir(parents=True, exist_ok=True)
    message = ""
    for options in _OPTION_SETS:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".so")
        os.close(fd)
        cmd = [cc, *_BASE, *options, *flags, str(source), "-o", tmp]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            result = None
            message = str(e)
        if result is not None and result.returncode == 0:
            os.replace(tmp, target)
            return None
        if result is not None:
            message = result.stderr.strip()[-2000:]
        os.unlink(tmp)
    return f"`{cc} {source.name}` failed: {message}"


def _warn_once(key: str, why: str) -> None:
    if key not in _FAILED:
        _FAILED.add(key)
        warnings.warn(
            f"C kernel {key} unavailable, using the torch implementation: {why}",
            RuntimeWarning,
            stacklevel=3,
        )
