"""GANs with the non-saturating loss: DCGAN on MNIST-like images, or an MLP GAN on a ring of
eight Gaussians (the mode-collapse benchmark).

    python -m experiments.gan                               # DCGAN on MNIST
    python -m experiments.gan --dataset ring --steps 3000   # 2-D ring: scatter plots, modes covered
    python -m experiments.gan --dataset glyphs              # generated images

TensorBoard: ``losses/d_loss``, ``losses/g_loss``, ``charts/d_real`` and ``charts/d_fake``
(the discriminator's mean probability on real and generated samples); images ``samples``
(a grid from the same noise every ``--sample-every`` steps, so the images show training
progress); for the ring, ``samples`` is a scatter over the real data and ``eval/modes_covered``
counts modes holding at least 1% of the samples within three standard deviations.
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
from experiments.image_classifier import load_dataset
from experiments.pictures import grid
from foundations import optim
from foundations.checks import positive_int
from foundations.generative import (
    DCGANDiscriminator,
    DCGANGenerator,
    gan_step,
    mlp_discriminator,
    mlp_generator,
)
from foundations.runlog import RunLogger, save_checkpoint
from foundations.seeding import seed_everything
from foundations.synthetic import gaussian_ring, modes_covered

RING_STD = 0.02


@dataclasses.dataclass(frozen=True)
class GANArgs:
    """Options of the GAN experiment."""

    dataset: Literal["mnist", "fashion_mnist", "glyphs", "ring"] = "mnist"
    data_dir: str | None = None
    download: bool = True
    train_subset: int | None = None
    steps: int = 5000
    batch_size: int = 128
    latent_dim: int = 64
    """noise size (the ring uses 2 unless set otherwise)."""
    width: int = 64
    """DCGAN base channel count."""
    lr: float = 2e-4
    beta1: float = 0.5
    sample_every: int = 500
    seed: int = 1
    device: str = "auto"
    root: str = "runs"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "latent_dim", "width", "sample_every"):
            positive_int(name, getattr(self, name))


def ring_figure(real: torch.Tensor, fake: torch.Tensor, step: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(real[:, 0], real[:, 1], s=3, c="grey", label="data")
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:red", alpha=0.5, label="generated")
    ax.set(xlim=(-3, 3), ylim=(-3, 3), title=f"step {step}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def run(args: GANArgs) -> dict[str, Any]:
    """Train; returns run_dir, the last losses, modes covered (ring) and the generator."""
    device = resolve_device(args.device)
    seed_everything(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    ring = args.dataset == "ring"
    if ring:
        latent = 2 if args.latent_dim == 64 else args.latent_dim
        generator, discriminator = mlp_generator(latent, 2), mlp_discriminator(2)
        data = None
    else:
        latent = args.latent_dim
        train, _ = load_dataset(args.dataset, args.data_dir, args.download, seed=args.seed, train_subset=args.train_subset)
        data = train.x.to(device)
        size = data.shape[-1]
        generator = DCGANGenerator(latent, data.shape[1], size, args.width)
        discriminator = DCGANDiscriminator(data.shape[1], size, args.width)
    generator, discriminator = generator.to(device), discriminator.to(device)
    opt_g = optim.Adam(generator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    opt_d = optim.Adam(discriminator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    fixed = torch.randn(64 if not ring else 2000, latent, generator=torch.Generator().manual_seed(0)).to(device)
    covered: list[int] = []
    with RunLogger(args.dataset, "gan", args.seed, args, root=args.root, progress=args.progress,
                   total_steps=args.steps, metrics=("losses/g_loss",)) as logger:  # fmt: skip
        for step in range(1, args.steps + 1):
            if ring:
                real, centres = gaussian_ring(args.batch_size, std=RING_STD, seed=g)
                real = real.to(device)
            else:
                idx = torch.randint(0, len(data), (args.batch_size,), generator=g).to(device)
                real = data[idx].float().div(127.5).sub(1.0)  # pixels in [-1, 1], like the tanh output
            metrics = gan_step(generator, discriminator, real, opt_g, opt_d, latent, g)
            if step % 50 == 0 or step == args.steps:
                logger.log_scalars({"losses/d_loss": metrics["d_loss"], "losses/g_loss": metrics["g_loss"],
                                    "charts/d_real": metrics["d_real"], "charts/d_fake": metrics["d_fake"]}, step)  # fmt: skip
                logger.progress(step)
            if step % args.sample_every == 0 or step == args.steps:
                generator.eval()
                with torch.no_grad():
                    fake = generator(fixed)
                generator.train()
                if ring:
                    covered.append(modes_covered(fake.cpu(), centres, RING_STD))
                    logger.log_scalar("eval/modes_covered", covered[-1], step)
                    shown, _ = gaussian_ring(2000, std=RING_STD, seed=0)
                    logger.writer.add_figure("samples", ring_figure(shown, fake.cpu(), step), step)
                else:
                    logger.writer.add_image("samples", grid(fake), step)
        save_checkpoint(logger.checkpoint_path(), {
            "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
            "args": dataclasses.asdict(args),
        })  # fmt: skip
    return {"run_dir": logger.run_dir, "last": metrics, "modes_covered": covered, "generator": generator}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(GANArgs, run, argv, __doc__)
    print("last step: " + ", ".join(f"{k} {v:.3f}" for k, v in r["last"].items()))
    if r["modes_covered"]:
        print(f"modes covered (of 8) at each sample: {r['modes_covered']}")
    print(f"logs: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
