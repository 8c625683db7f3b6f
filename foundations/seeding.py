"""One call to seed Python, NumPy and torch; RNG state capture for exact resumption.

The captured state holds only tensors and plain Python values, so it can be saved inside a
checkpoint and loaded back with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    Args:
      seed: a non-negative integer below 2**32.
      deterministic: also ask torch for deterministic kernels (slower on GPU; CPU ops are
        already deterministic for a fixed thread count).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds all CUDA devices
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def get_rng_state() -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """Capture the global RNG states of Python, NumPy and torch as tensors.

    Returns:
      dict with ``python`` ([626] int64: Mersenne state, position, gauss flag), ``numpy`` ([626] int64: keys, position, gauss flag),
      ``torch`` (the CPU generator's byte state) and ``cuda`` (a list, one per visible device).
    """
    _, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    assert kind == "MT19937"
    return {
        "python": torch.tensor([*internal, 0 if gauss is None else 1], dtype=torch.int64),
        "python_gauss": torch.tensor([0.0 if gauss is None else gauss], dtype=torch.float64),
        "numpy": torch.tensor([*keys.tolist(), pos, has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor([cached], dtype=torch.float64),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, torch.Tensor | list[torch.Tensor]]) -> None:
    """Restore the states captured by :func:`get_rng_state`."""
    missing = {"python", "python_gauss", "numpy", "numpy_gauss", "torch"} - set(state)
    if missing:
        raise ValueError(f"RNG state is missing keys {sorted(missing)}")
    py = state["python"].tolist()
    gauss = state["python_gauss"].item() if py[-1] else None
    random.setstate((3, tuple(py[:-1]), gauss))
    np_state = state["numpy"].tolist()
    keys = np.array(np_state[:624], dtype=np.uint32)
    np.random.set_state(("MT19937", keys, np_state[624], np_state[625], state["numpy_gauss"].item()))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda", [])
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
