"""CIFAR-10 with a VGG-style CNN: SGD with Nesterov momentum, weight decay, cosine schedule,
crop-and-flip augmentation and batch norm by default.

    python -m experiments.cifar10
    python -m experiments.cifar10 --no-augment --no-batch-norm --weight-decay 0   # no regularisation
    python -m experiments.cifar10 --optimizer adamw --lr 1e-3 --weight-decay 0.05

Flags and TensorBoard tags: see ``experiments.image_classifier``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from experiments.image_classifier import ImageClassifierArgs, cli

DEFAULTS = ImageClassifierArgs(
    dataset="cifar10",
    model="cnn",
    epochs=30,
    batch_size=128,
    optimizer="sgd",
    lr=0.05,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    lr_schedule="cosine",
    batch_norm=True,
    dropout=0.1,
    augment=True,
)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return cli(DEFAULTS, "cifar10", __doc__, argv)


if __name__ == "__main__":
    main()
