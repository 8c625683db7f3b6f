"""Generated datasets: regression and classification problems with known answers, a 10-class
image task shaped like MNIST, and a text corpus for character language models.

Every generator takes a seed (or a ``torch.Generator``) and gives the same data on every
machine, so tests and examples run without downloads.
"""

from __future__ import annotations

import torch
from torch import Tensor

from foundations.batches import Labelled
from foundations.checks import positive_int

__all__ = ["glyphs", "linear_data", "sentences", "separable_data"]


def _gen(seed: int | torch.Generator) -> torch.Generator:
    return seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)


def linear_data(
    n: int, features: int, noise: float = 0.1, seed: int | torch.Generator = 0, dtype: torch.dtype = torch.float64
) -> tuple[Labelled, Tensor, Tensor]:
    """``y = x w + b + noise``: returns the data (``x [n, features]``, ``y [n]``), ``w [features]``, ``b []``."""
    positive_int("n", n)
    positive_int("features", features)
    g = _gen(seed)
    x = torch.randn(n, features, generator=g, dtype=dtype)
    w = torch.randn(features, generator=g, dtype=dtype)
    b = torch.randn((), generator=g, dtype=dtype)
    y = x @ w + b + noise * torch.randn(n, generator=g, dtype=dtype)
    return Labelled(x, y), w, b


def separable_data(
    n: int, features: int, margin: float = 0.5, seed: int | torch.Generator = 0, dtype: torch.dtype = torch.float32
) -> tuple[Labelled, Tensor]:
    """Two classes split by a hyperplane through the origin with a gap of ``2 * margin``.

    Returns the data (``x [n, features]``, ``y [n]`` in {0, 1}) and the unit normal ``w``;
    ``y = 1`` exactly where ``x . w > 0``, and ``|x . w| >= margin`` for every point, so a
    linear classifier can reach 100% accuracy.
    """
    positive_int("n", n)
    positive_int("features", features)
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    g = _gen(seed)
    w = torch.randn(features, generator=g, dtype=dtype)
    w = w / w.norm()
    x = torch.randn(n, features, generator=g, dtype=dtype)
    side = torch.where(x @ w >= 0, 1.0, -1.0).to(dtype)
    x = x + (margin * side)[:, None] * w  # push every point at least `margin` away from the plane
    return Labelled(x, (side > 0).long()), w


def _glyph_bank(num_classes: int, g: torch.Generator) -> Tensor:
    """``[num_classes, 5, 5]`` distinct binary patterns, each touching all four borders of its
    box (so no pattern is a translate of another) and at Hamming distance >= 6 from the others."""
    bank: list[Tensor] = []
    while len(bank) < num_classes:
        p = torch.rand(5, 5, generator=g) < 0.5
        if not (p[0].any() and p[-1].any() and p[:, 0].any() and p[:, -1].any()):
            continue
        if all((p != q).sum() >= 6 for q in bank):
            bank.append(p)
    return torch.stack(bank).float()


def glyphs(
    n: int, num_classes: int = 10, size: int = 28, noise: float = 40.0, seed: int | torch.Generator = 0
) -> Labelled:
    """An MNIST-shaped image task: ``x [n, 1, size, size]`` uint8, ``y [n]`` int64.

    Class ``k`` is a fixed random 5x5 binary glyph (the same bank for every seed of the same
    ``num_classes``), drawn at scale 2 or 3, at a random position, with a random brightness in
    [120, 255] on a dark background, plus Gaussian pixel noise of std ``noise``. Position and
    scale vary, so a convolutional net does much better than a linear model.
    """
    positive_int("n", n)
    positive_int("num_classes", num_classes)
    if size < 15:
        raise ValueError(f"size must be >= 15 (glyphs are up to 15 pixels wide), got {size}")
    bank = _glyph_bank(num_classes, torch.Generator().manual_seed(12345))
    g = _gen(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    scale = torch.randint(2, 4, (n,), generator=g)
    brightness = torch.empty(n).uniform_(120.0, 255.0, generator=g)
    images = torch.zeros(n, size, size)
    for s in (2, 3):
        idx = (scale == s).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        big = bank[y[idx]].repeat_interleave(s, 1).repeat_interleave(s, 2)  # [m, 5s, 5s]
        span = size - 5 * s + 1
        r = torch.randint(0, span, (idx.numel(),), generator=g)
        c = torch.randint(0, span, (idx.numel(),), generator=g)
        rows = (r[:, None] + torch.arange(5 * s))[:, :, None]
        cols = (c[:, None] + torch.arange(5 * s))[:, None, :]
        canvas = torch.zeros(idx.numel(), size, size)
        canvas[torch.arange(idx.numel())[:, None, None], rows, cols] = big
        images[idx] = canvas * brightness[idx, None, None]
    images = images + noise * torch.randn(images.shape, generator=g)
    x = images.round().clamp_(0, 255).to(torch.uint8).unsqueeze(1)
    return Labelled(x, y, tuple(f"glyph{k}" for k in range(num_classes)))


_NOUNS = ["cat", "dog", "bird", "fox", "horse", "child", "farmer", "sailor", "king", "queen", "river", "garden"]
_ADJECTIVES = ["small", "old", "quick", "quiet", "brown", "bright", "tired", "young", "happy", "clever"]
_VERBS = ["sees", "follows", "finds", "likes", "watches", "helps", "meets", "calls", "hears", "greets"]
_PLACES = ["by the river", "in the garden", "at the market", "near the hill", "on the road", "under the tree"]
_TIMES = ["in the morning", "at night", "every day", "after the rain", "before dinner"]


def sentences(n: int, seed: int | torch.Generator = 0) -> str:
    """``n`` sentences from a small English grammar, one per line (a default corpus for
    character language models: local spelling and word order a model can learn quickly)."""
    positive_int("n", n)
    g = _gen(seed)

    def pick(words: list[str]) -> str:
        return words[int(torch.randint(0, len(words), (1,), generator=g))]

    def noun_phrase() -> str:
        words = ["the"]
        if torch.rand(1, generator=g).item() < 0.6:
            words.append(pick(_ADJECTIVES))
        words.append(pick(_NOUNS))
        return " ".join(words)

    lines = []
    for _ in range(n):
        parts = [noun_phrase(), pick(_VERBS), noun_phrase()]
        u = torch.rand(2, generator=g)
        if u[0] < 0.5:
            parts.append(pick(_PLACES))
        if u[1] < 0.3:
            parts.append(pick(_TIMES))
        text = " ".join(parts)
        lines.append(text[0].upper() + text[1:] + ".")
    return "\n".join(lines) + "\n"
