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

__all__ = [
    "gaussian_ring",
    "glyphs",
    "linear_data",
    "modes_covered",
    "planted_corpus",
    "sentences",
    "separable_data",
]


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


def planted_corpus(
    groups: int = 8, words_per_group: int = 5, sentences_count: int = 3000, length: int = 10,
    noise_words: int = 20, noise: float = 0.2, seed: int | torch.Generator = 0,
) -> tuple[list[str], list[list[str]]]:
    """A token stream with planted co-occurrence: each sentence draws its words from one group
    (``g3_w0 .. g3_w4``), with probability ``noise`` per token replaced by one of the shared
    ``noise_words``. Returns the tokens and the groups; a word's nearest neighbours under any
    decent embedding are the other words of its group."""
    for name, value in (("groups", groups), ("words_per_group", words_per_group),
                        ("sentences_count", sentences_count), ("length", length), ("noise_words", noise_words)):
        positive_int(name, value)
    g = _gen(seed)
    planted = [[f"g{i}_w{j}" for j in range(words_per_group)] for i in range(groups)]
    fillers = [f"n{j}" for j in range(noise_words)]
    which = torch.randint(0, groups, (sentences_count,), generator=g)
    picks = torch.randint(0, words_per_group, (sentences_count, length), generator=g)
    swap = torch.rand(sentences_count, length, generator=g) < noise
    filler = torch.randint(0, noise_words, (sentences_count, length), generator=g)
    tokens: list[str] = []
    for s in range(sentences_count):
        group = planted[int(which[s])]
        for t in range(length):
            tokens.append(fillers[int(filler[s, t])] if swap[s, t] else group[int(picks[s, t])])
    return tokens, planted


def gaussian_ring(
    n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02, seed: int | torch.Generator = 0
) -> tuple[Tensor, Tensor]:
    """``n`` points ``[n, 2]`` from ``modes`` Gaussians of std ``std`` evenly spaced on a circle
    of ``radius`` (the GAN mode-collapse benchmark of Metz et al. 2017), and the centres ``[modes, 2]``."""
    positive_int("n", n)
    positive_int("modes", modes)
    g = _gen(seed)
    angles = torch.arange(modes) * (2 * torch.pi / modes)
    centres = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    which = torch.randint(0, modes, (n,), generator=g)
    return centres[which] + std * torch.randn(n, 2, generator=g), centres


def modes_covered(samples: Tensor, centres: Tensor, std: float, min_fraction: float = 0.01) -> int:
    """How many modes hold at least ``min_fraction`` of ``samples`` within ``3 * std`` of their centre."""
    dist = torch.cdist(samples.float(), centres.float())  # [n, modes]
    near = dist.min(1)
    close = near.values < 3 * std
    counts = torch.bincount(near.indices[close], minlength=len(centres))
    return int((counts >= min_fraction * len(samples)).sum())
