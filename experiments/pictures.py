"""Image helpers for the experiments' TensorBoard pictures: grids and heat-map overlays."""

from __future__ import annotations

import torch
from torch import Tensor


def to_unit(images: Tensor) -> Tensor:
    """uint8 or float images -> float in [0, 1] (floats in [-1, 1], e.g. GAN output, are rescaled)."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    images = images.detach().float()
    if images.min() < 0:
        images = (images + 1.0) / 2.0
    return images.clamp(0.0, 1.0)


def grid(images: Tensor, nrow: int = 8, pad: int = 2) -> Tensor:
    """Tile ``[n, C, H, W]`` images into one ``[C, rows * (H + pad) + pad, nrow * (W + pad) + pad]``
    picture (white gaps), ``nrow`` per row, for ``SummaryWriter.add_image``."""
    if images.ndim != 4:
        raise ValueError(f"grid expects [n, C, H, W], got {list(images.shape)}")
    images = to_unit(images).cpu()
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    out = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, k = divmod(i, nrow)
        out[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = images[i]
    return out


def heat_overlay(image: Tensor, heat: Tensor, alpha: float = 0.6) -> Tensor:
    """A grey image ``[H, W]`` (or ``[C, H, W]``, averaged) under a red heat map ``heat [H, W]``
    (normalised to its maximum): ``[3, H, W]`` in [0, 1]."""
    grey = to_unit(image)
    if grey.ndim == 3:
        grey = grey.mean(0)
    heat = heat.detach().float().abs()
    heat = heat / heat.max().clamp_min(1e-12)
    base = grey.expand(3, *grey.shape).clone() * (1 - alpha * heat)
    base[0] += alpha * heat
    return base.clamp(0.0, 1.0)
