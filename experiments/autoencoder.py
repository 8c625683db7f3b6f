"""Autoencoders on MNIST-like images: reconstructions, the latent space and the projector.

    python -m experiments.autoencoder                                    # conv AE, 2-D code
    python -m experiments.autoencoder --model mlp --latent-dim 32 --noise-std 0.3   # denoising
    python -m experiments.autoencoder --sparsity kl --sparsity-weight 0.1 --latent-dim 64
    python -m experiments.autoencoder --dataset glyphs                   # generated data

TensorBoard: ``train/loss``, ``eval/loss`` (reconstruction BCE per image on the test set),
images ``reconstructions`` (each pair of rows: inputs, then their reconstructions) and
``latent`` (test codes coloured by class, PCA to 2-D when the code is wider), and the test
codes in the PROJECTOR tab with their labels and thumbnails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch

from experiments.common import parse_and_run, resolve_device
from experiments.image_classifier import Dataset, load_dataset
from experiments.pictures import grid
from foundations import optim
from foundations.checks import positive_int
from foundations.embeddings import (
    PCA,
    Autoencoder,
    autoencoder_loss,
    conv_autoencoder,
    mlp_autoencoder,
)
from foundations.runlog import RunLogger, Tags, save_checkpoint
from foundations.seeding import seed_everything


@dataclasses.dataclass(frozen=True)
class AutoencoderArgs:
    """Options of the autoencoder experiment."""

    dataset: Dataset = "mnist"
    data_dir: str | None = None
    download: bool = True
    train_subset: int | None = None
    model: Literal["mlp", "conv"] = "conv"
    latent_dim: int = 2
    noise_std: float = 0.0
    """> 0: denoising autoencoder (Gaussian input noise)."""
    sparsity: Literal["none", "l1", "kl"] = "none"
    sparsity_weight: float = 1e-3
    target_activation: float = 0.05
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    projector_points: int = 1000
    seed: int = 1
    device: str = "auto"
    root: str = "runs"
    progress: bool = True

    def __post_init__(self) -> None:
        positive_int("latent_dim", self.latent_dim)
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)


def latent_figure(codes: torch.Tensor, labels: torch.Tensor, title: str) -> plt.Figure:
    """Scatter of 2-D codes coloured by class (PCA first when wider than 2)."""
    points = codes if codes.shape[1] <= 2 else PCA(2).fit_transform(codes)
    if points.shape[1] == 1:
        points = torch.cat([points, torch.zeros_like(points)], dim=1)
    fig, ax = plt.subplots(figsize=(6, 5))
    scatter = ax.scatter(points[:, 0].cpu(), points[:, 1].cpu(), c=labels.cpu(), cmap="tab10", s=4)
    fig.colorbar(scatter, ax=ax, label="class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def run(args: AutoencoderArgs) -> dict[str, Any]:
    """Train; returns run_dir, the test reconstruction loss per epoch and the model."""
    device = resolve_device(args.device)
    seed_everything(args.seed)
    train, test = load_dataset(args.dataset, args.data_dir, args.download, seed=args.seed, train_subset=args.train_subset)
    train, test = train.to(device), test.to(device)
    shape = tuple(train.x.shape[1:])
    build = conv_autoencoder if args.model == "conv" else mlp_autoencoder
    model: Autoencoder = build(shape, latent_dim=args.latent_dim).to(device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = len(train.batches(args.batch_size))
    losses: list[float] = []
    with RunLogger(args.dataset, "autoencoder", args.seed, args, root=args.root, progress=args.progress,
                   total_steps=args.epochs * steps_per_epoch, metrics=(Tags.EVAL_LOSS,)) as logger:  # fmt: skip
        step = 0
        for _ in range(args.epochs):
            for i, (x, _) in enumerate(train.batches(args.batch_size, generator=g)):
                loss, _ = autoencoder_loss(model, x, args.noise_std, args.sparsity, args.sparsity_weight,
                                               args.target_activation)  # fmt: skip
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step % 50 == 0 or i == 0:  # every 50 steps, and at least once an epoch
                    logger.log_scalar(Tags.TRAIN_LOSS, loss, step)
                    logger.progress(step)
            with torch.no_grad():
                model.eval()
                total = sum(float(autoencoder_loss(model, x)[1]["reconstruction"]) * len(x)
                            for x, _ in test.batches(1000, shuffle=False))  # fmt: skip
                model.train()
            losses.append(total / len(test))
            logger.log_scalar(Tags.EVAL_LOSS, losses[-1], step)
        model.eval()
        with torch.no_grad():
            shown = test.x[:16]
            recon = torch.sigmoid(model(shown)[0])
            logger.writer.add_image("reconstructions", grid(torch.cat([shown.float() / 255, recon]), nrow=16), step)
            n = min(args.projector_points, len(test))
            codes = model.encode(test.x[:n]).float()
        logger.writer.add_figure("latent", latent_figure(codes.cpu(), test.y[:n].cpu(), f"{args.model} autoencoder codes"), step)
        logger.writer.add_embedding(codes.cpu(), metadata=test.y[:n].tolist(), label_img=test.x[:n].float().cpu() / 255,
                                    global_step=step, tag="codes")  # fmt: skip
        save_checkpoint(logger.checkpoint_path(), {"model": model.state_dict(), "args": dataclasses.asdict(args)})
    return {"run_dir": logger.run_dir, "eval_loss": losses, "model": model}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(AutoencoderArgs, run, argv, __doc__)
    print(f"test reconstruction loss per epoch: {', '.join(f'{v:.1f}' for v in r['eval_loss'])}")
    print(f"logs: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
