"""Train an image classifier (MLP or CNN) with the regularisation options as flags.

Used by ``experiments.mnist`` and ``experiments.cifar10`` (which only change the defaults):

    python -m experiments.mnist --model cnn --dropout 0.3 --batch-norm
    python -m experiments.cifar10 --augment --weight-decay 5e-4 --lr-schedule cosine
    python -m experiments.mnist --dataset glyphs          # generated data, no download

Regularisation: ``--dropout``, ``--batch-norm``, ``--weight-decay`` (L2 through the optimizer;
AdamW's is decoupled), ``--augment`` (random crop with 2/4-pixel padding, plus horizontal flips
for CIFAR-10) and ``--early-stopping N``. Compare runs in TensorBoard: ``train/loss``,
``eval/loss``, ``eval/accuracy`` (validation split) against optimizer steps; the test accuracy
of the best epoch is logged as ``test/accuracy`` and printed.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from experiments.common import parse_and_run, resolve_device
from foundations import optim
from foundations.batches import Augment, Labelled
from foundations.checks import choose, positive_int
from foundations.data import DataError, load_cifar10, load_fashion_mnist, load_mnist
from foundations.encoders import CifarCNN, MnistCNN, unit_pixels
from foundations.interrupts import StopRequests
from foundations.nets import mlp
from foundations.runlog import RunLogger, Tags
from foundations.seeding import seed_everything
from foundations.synthetic import glyphs
from foundations.train import evaluate, fit

Dataset = Literal["mnist", "fashion_mnist", "cifar10", "glyphs"]


@dataclasses.dataclass(frozen=True)
class ImageClassifierArgs:
    """Options of the image-classification experiments."""

    dataset: Dataset = "mnist"
    model: Literal["mlp", "cnn"] = "cnn"
    data_dir: str | None = None
    """where the dataset files are (default: $SANDBOX_DATA or ./data)."""
    download: bool = True
    """fetch missing files (MD5-checked)."""
    verify: bool = True
    """check the files' published MD5 (turn off for your own files in the same format)."""
    train_subset: int | None = None
    """use only this many training images (quick runs)."""
    val_size: int = 5000
    """images held out of the training set for validation / early stopping."""
    epochs: int = 10
    batch_size: int = 128
    optimizer: Literal["sgd", "adagrad", "rmsprop", "adam", "adamw"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    """SGD / RMSProp momentum."""
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_schedule: Literal["constant", "cosine"] = "constant"
    dropout: float = 0.0
    batch_norm: bool = False
    augment: bool = False
    early_stopping: int | None = None
    """stop after this many epochs without a better validation loss."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """MLP hidden widths."""
    seed: int = 1
    device: str = "auto"
    root: str = "runs"
    progress: bool = True

    def __post_init__(self) -> None:
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("val_size", self.val_size)
        if self.train_subset is not None:
            positive_int("train_subset", self.train_subset)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def load_dataset(
    dataset: Dataset, data_dir: str | None = None, download: bool = True, verify: bool = True,
    seed: int = 1, train_subset: int | None = None, generated_train: int | None = None,
) -> tuple[Labelled, Labelled]:
    """Training and test sets of ``dataset``, the training set cut to its first ``train_subset``
    images when given (``glyphs``: ``generated_train`` (default: ``train_subset`` or 60,000)
    generated training images and 10,000 test images)."""
    if dataset == "glyphs":
        train, test = glyphs(generated_train or train_subset or 60_000, seed=seed), glyphs(10_000, seed=seed + 10_000)
    else:
        loader = choose("dataset", dataset, {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist,
                                             "cifar10": load_cifar10})  # fmt: skip
        try:
            train = loader(data_dir, "train", download=download, verify=verify)
            test = loader(data_dir, "test", download=download, verify=verify)
        except DataError as e:  # the library's advice (download=True) is already the CLI's default
            advice = ("or pass --data-dir with a folder that holds them (downloading is on by default; it failed "
                      "here)" if download else "or run without --no-download on a machine with network access")
            raise DataError(str(e).replace("or call with download=True on a machine with network access",
                                           advice)) from None
    if train_subset is not None and train_subset < len(train):
        train = train.subset(slice(0, train_subset))
    return train, test


def load(args: ImageClassifierArgs) -> tuple[Labelled, Labelled]:
    """The training and test sets of ``args.dataset``."""
    generated = (args.train_subset or 60_000) + args.val_size
    return load_dataset(args.dataset, args.data_dir, args.download, args.verify, args.seed, generated_train=generated)


def make_model(args: ImageClassifierArgs, image_shape: Sequence[int], num_classes: int) -> nn.Module:
    """An MLP on flattened pixels or the dataset's CNN, with a linear classification head."""
    if args.model == "mlp":
        layers: list[nn.Module] = [nn.Flatten()]
        width = 1
        for d in image_shape:
            width *= int(d)
        body = mlp(width, args.hidden_sizes)
        for module in body:
            layers.append(module)
            if isinstance(module, nn.Linear) and args.batch_norm:
                layers.append(nn.BatchNorm1d(module.out_features))
            if isinstance(module, nn.ReLU) and args.dropout > 0:
                layers.append(nn.Dropout(args.dropout))
        return nn.Sequential(_Scale(), *layers, nn.Linear(body.out_features, num_classes))
    encoder_cls = CifarCNN if int(image_shape[0]) == 3 else MnistCNN
    encoder = encoder_cls(tuple(image_shape), batch_norm=args.batch_norm, dropout=args.dropout)
    return nn.Sequential(encoder, nn.Linear(encoder.out_features, num_classes))


class _Scale(nn.Module):
    """uint8 pixels -> floats in [0, 1] (the CNN encoders do this themselves)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unit_pixels(x)


def make_optimizer(args: ImageClassifierArgs, model: nn.Module) -> torch.optim.Optimizer:
    """The from-scratch optimizer named by ``args.optimizer``."""
    params = model.parameters()
    wd = args.weight_decay
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov, weight_decay=wd)
    if args.optimizer == "rmsprop":
        return optim.RMSProp(params, lr=args.lr, momentum=args.momentum, weight_decay=wd)
    if args.optimizer == "adagrad":
        return optim.AdaGrad(params, lr=args.lr, weight_decay=wd)
    cls = optim.Adam if args.optimizer == "adam" else optim.AdamW
    return cls(params, lr=args.lr, weight_decay=wd)


def run(args: ImageClassifierArgs, experiment: str = "image_classifier") -> dict[str, Any]:
    """Train, keep the best validation epoch, report test metrics. Returns run_dir, history, test."""
    device = resolve_device(args.device)
    seed_everything(args.seed)
    train_all, test = load(args)
    if args.train_subset is not None and args.train_subset + args.val_size < len(train_all):
        train_all = train_all.subset(slice(0, args.train_subset + args.val_size))
    if args.val_size >= len(train_all):
        raise ValueError(f"val_size {args.val_size} leaves no training images (of {len(train_all)})")
    generator = torch.Generator().manual_seed(args.seed)
    train, val = train_all.split(args.val_size, generator)
    num_classes = len(train_all.classes) or int(train_all.y.max()) + 1
    model = make_model(args, train.x.shape[1:], num_classes).to(device)
    optimizer = make_optimizer(args, model)
    scheduler = None
    if args.lr_schedule == "cosine":
        steps = args.epochs * -(-len(train) // args.batch_size)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    augment = None
    if args.augment:
        augment = Augment(crop_padding=4 if train.x.shape[-1] >= 32 else 2, flip=args.dataset == "cifar10")
    loss_fn = nn.CrossEntropyLoss()
    logger = RunLogger(
        args.dataset, experiment, args.seed, args, root=args.root, progress=args.progress,
        total_steps=args.epochs * -(-len(train) // args.batch_size), metrics=(Tags.EVAL_ACCURACY, "test/accuracy"),
    )  # fmt: skip
    try:
        with StopRequests() as stop:  # Ctrl-C / SIGTERM: end after the current step, keep the best checkpoint
            history = fit(
                model, loss_fn, optimizer, train, val, args.epochs, args.batch_size,
                scheduler=scheduler, scheduler_per="step", augment=augment, early_stopping=args.early_stopping,
                checkpoint=logger.checkpoint_path("best.pt"), logger=logger, generator=generator, stop=stop,
            )  # fmt: skip
        if history.interrupted is not None:
            return {"run_dir": logger.run_dir, "history": history, "test": None, "model": model}
        test_metrics = evaluate(model, loss_fn, test.to(device))
        logger.log_scalar("test/accuracy", test_metrics["accuracy"], history.steps)
        logger.log_scalar("test/loss", test_metrics["loss"], history.steps)
    finally:
        logger.close()
    return {"run_dir": logger.run_dir, "history": history, "test": test_metrics, "model": model}


def cli(defaults: ImageClassifierArgs, experiment: str, doc: str | None, argv: Sequence[str] | None) -> dict[str, Any]:
    """Parse flags over ``defaults``, run, print the result (errors: one line, exit status 2)."""
    _, result = parse_and_run(ImageClassifierArgs, lambda a: run(a, experiment), argv, doc, default=defaults)
    h = result["history"]
    if h.interrupted is not None:
        best = Path(result["run_dir"]) / "best.pt"
        kept = f"best checkpoint (epoch {h.best_epoch + 1}) {best}" if best.is_file() else "no complete epoch yet"
        print(f"interrupted ({signal.Signals(h.interrupted).name}) at step {h.steps:,}: {kept}; logs in "
              f"{result['run_dir']}", file=sys.stderr)
        raise SystemExit(128 + h.interrupted)
    print(f"best epoch {h.best_epoch + 1}: val accuracy {h.best.get('accuracy', float('nan')):.4f}")
    print(f"test accuracy {result['test']['accuracy']:.4f}, test loss {result['test']['loss']:.4f}")
    print(f"logs and best checkpoint: {result['run_dir']}")
    print(f"view them with:           tensorboard --logdir {Path(result['run_dir']).parent}")
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return cli(ImageClassifierArgs(), "image_classifier", __doc__, argv)


if __name__ == "__main__":
    main()
