"""MNIST (or Fashion-MNIST) with an MLP or a CNN and the regularisation options as flags.

    python -m experiments.mnist                                   # CNN, Adam, 10 epochs
    python -m experiments.mnist --model mlp --dropout 0.2 --batch-norm
    python -m experiments.mnist --dataset fashion_mnist --augment --early-stopping 3
    python -m experiments.mnist --dataset glyphs                   # generated digits-like data

Flags and TensorBoard tags: see ``experiments.image_classifier``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from experiments.image_classifier import ImageClassifierArgs, cli

DEFAULTS = ImageClassifierArgs(dataset="mnist", model="cnn", epochs=10, batch_size=128, optimizer="adam", lr=1e-3)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return cli(DEFAULTS, "mnist", __doc__, argv)


if __name__ == "__main__":
    main()
