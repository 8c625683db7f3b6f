"""Labelled tensors on a device, a shuffling batch iterator and batched image augmentations.

A dataset here is two tensors that live where training happens (CPU or GPU): a batch is one
``index_select`` with a slice of a permutation, so there is no per-sample Python, no collate
function and no host-to-device copy per batch when the data sits on the GPU. Augmentations act
on whole batches ``[batch, C, H, W]`` with one random draw per batch.

    train, val = load_mnist().to(device).split(5_000, generator=torch.Generator().manual_seed(0))
    for x, y in train.batches(128, shuffle=True, generator=g):   # x [128, 1, 28, 28], y [128]
        ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.nn import functional as F

from foundations.checks import positive_int, unit_interval
from foundations.encoders import unit_pixels

__all__ = ["Augment", "BatchIterator", "Labelled", "random_crop", "random_flip", "random_intensity"]


@dataclasses.dataclass(frozen=True)
class Labelled:
    """Inputs and targets with the same first dimension.

    Attributes:
      x: inputs ``[n, ...]`` (images ``[n, C, H, W]`` uint8 or float, features ``[n, d]``...).
      y: targets ``[n]`` (class indices, int64) or ``[n, ...]`` (regression).
      classes: class names, when ``y`` holds class indices.
    """

    x: Tensor
    y: Tensor
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.x.ndim < 1 or self.y.ndim < 1 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x and y need the same first dimension, got x {list(self.x.shape)} and y {list(self.y.shape)}"
            )
        if self.x.device != self.y.device:
            raise ValueError(f"x and y must be on one device, got {self.x.device} and {self.y.device}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: str | torch.device) -> Labelled:
        """The same data on ``device``."""
        return dataclasses.replace(self, x=self.x.to(device), y=self.y.to(device))

    def subset(self, index: Tensor | slice) -> Labelled:
        """The examples at ``index`` (an index tensor, a boolean mask or a slice)."""
        if isinstance(index, Tensor):
            index = index.to(self.device)
        return dataclasses.replace(self, x=self.x[index], y=self.y[index])

    def split(self, second: int | float, generator: torch.Generator | None = None) -> tuple[Labelled, Labelled]:
        """A random split into ``(first, second)``; ``second`` is a count or a fraction in (0, 1)."""
        n = len(self)
        count = round(second * n) if isinstance(second, float) else second
        if isinstance(second, float) and not 0.0 < second < 1.0:
            raise ValueError(f"a fractional split must be in (0, 1), got {second}")
        if not 0 < count < n:
            raise ValueError(f"split size must leave both parts non-empty: {second!r} of {n} examples")
        perm = torch.randperm(n, generator=generator)
        return self.subset(perm[count:]), self.subset(perm[:count])

    def batches(
        self,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
    ) -> BatchIterator:
        """An iterator over ``(x, y)`` batches; see :class:`BatchIterator`."""
        return BatchIterator(self, batch_size, shuffle, drop_last, generator)


class BatchIterator:
    """Batches of a :class:`Labelled`, reshuffled on every pass.

    Each pass draws one permutation (on ``generator``'s device, CPU by default, then moved to
    the data's device, so the order is the same on any device for a given seed) and yields
    ``(x[idx], y[idx])`` for consecutive slices ``idx`` of it. The last batch is smaller unless
    ``drop_last``.
    """

    def __init__(
        self,
        data: Labelled,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.data = data
        self.batch_size = positive_int("batch_size", batch_size)
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator
        if drop_last and batch_size > len(data):
            raise ValueError(f"batch_size {batch_size} > {len(data)} examples with drop_last=True: no batch at all")

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, b = len(self.data), self.batch_size
        x, y = self.data.x, self.data.y
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(x.device, non_blocking=True)
            for start in range(0, len(self) * b, b):
                idx = order[start : start + b]
                yield x.index_select(0, idx), y.index_select(0, idx)
        else:
            for start in range(0, len(self) * b, b):
                yield x[start : start + b], y[start : start + b]


# ------------------------------------------------------------------------------ augmentations
def _draw(generator: torch.Generator | None, device: torch.device, fn, *args, **kwargs) -> Tensor:
    gen_device = generator.device if generator is not None else device
    return fn(*args, generator=generator, device=gen_device, **kwargs).to(device)


def random_crop(x: Tensor, padding: int, generator: torch.Generator | None = None, mode: str = "zeros") -> Tensor:
    """Pad ``x [batch, C, H, W]`` by ``padding`` pixels on each side and crop back to ``H x W`` at
    an offset drawn per image, uniformly from the ``(2 * padding + 1)^2`` positions. Same dtype and
    device as ``x``; the offsets come from ``generator`` (default: torch's global one).

    ``mode="zeros"`` pads with zeros (the CIFAR augmentation of He et al. 2016); ``"replicate"``
    repeats the border pixels, i.e. shifts each image by up to ``padding`` pixels in each
    direction (the random shift of DrQ, Kostrikov et al. 2020, for Atari frames).
    """
    if x.ndim != 4:
        raise ValueError(f"random_crop expects images [batch, C, H, W], got shape {list(x.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if mode not in ("zeros", "replicate"):
        raise ValueError(f"random_crop mode must be 'zeros' or 'replicate', got {mode!r}")
    if padding == 0:
        return x
    b, c, h, w = x.shape
    offsets = _draw(generator, x.device, torch.randint, 0, 2 * padding + 1, (2, b))
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # [b, h], rows of the padded image
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # [b, w]
    if mode == "zeros":
        source = F.pad(x, (padding, padding, padding, padding))
    else:  # padded row i is row clamp(i - padding) of the image: index the image itself
        source = x
        rows = (rows - padding).clamp_(0, h - 1)
        cols = (cols - padding).clamp_(0, w - 1)
    # one offset per image, shared by its channels: pick its rows, then its columns
    picked_rows = source.gather(2, rows[:, None, :, None].expand(b, c, h, source.shape[3]))
    return picked_rows.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def random_flip(x: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each image of ``x [batch, C, H, W]`` left-right with probability ``p``."""
    unit_interval("p", p)
    if x.ndim != 4:
        raise ValueError(f"random_flip expects images [batch, C, H, W], got shape {list(x.shape)}")
    flip = _draw(generator, x.device, torch.rand, x.shape[0]) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_intensity(x: Tensor, scale: float, generator: torch.Generator | None = None) -> Tensor:
    """Scale each image of ``x [batch, C, H, W]`` by ``1 + scale * clip(n, -2, 2)``, one standard
    normal ``n`` per image (the intensity augmentation of SPR, Schwarzer et al. 2021, which
    Dopamine's DrQ(eps) applies after the shift). Returns float pixels: uint8 input is scaled to
    [0, 1] first, so the result may exceed 1 by up to ``2 * scale``, as in the reference.
    """
    if x.ndim != 4:
        raise ValueError(f"random_intensity expects images [batch, C, H, W], got shape {list(x.shape)}")
    if scale < 0:
        raise ValueError(f"intensity scale must be >= 0, got {scale}")
    pixels = unit_pixels(x)
    noise = _draw(generator, x.device, torch.randn, x.shape[0]).clamp_(-2.0, 2.0)
    return pixels * (1.0 + scale * noise).to(pixels.dtype)[:, None, None, None]


@dataclasses.dataclass(frozen=True)
class Augment:
    """Training-time image augmentation: random crop with zero padding, then horizontal flip.

    ``Augment(crop_padding=4, flip=True)`` is the standard CIFAR-10 recipe; ``Augment()`` is
    the identity. Call it on a batch: ``augment(x, generator)``.
    """

    crop_padding: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {self.crop_padding}")

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = random_flip(x, 0.5, generator)
        return x
