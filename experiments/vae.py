"""Variational autoencoder on MNIST-like images: samples, interpolations, the latent manifold.

    python -m experiments.vae                                  # 2-D latent space, Bernoulli decoder
    python -m experiments.vae --latent-dim 16 --epochs 30
    python -m experiments.vae --dataset glyphs                 # generated data

TensorBoard: ``train/loss`` (negative ELBO, nats per image), ``eval/elbo``, ``eval/kl`` and
``eval/reconstruction`` on the test set, images ``samples`` (decoded ``z ~ N(0, I)``),
``interpolations`` (rows: straight lines in latent space between two test images) and, for a
2-D latent space, ``manifold`` (decoded grid over the prior's central 90%).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import torch

from experiments.common import parse_and_run, resolve_device
from experiments.image_classifier import Dataset, load_dataset
from experiments.pictures import grid
from foundations import optim
from foundations.checks import positive_int
from foundations.generative import VAE
from foundations.runlog import RunLogger, save_checkpoint
from foundations.seeding import seed_everything


@dataclasses.dataclass(frozen=True)
class VAEArgs:
    """Options of the VAE experiment."""

    dataset: Dataset = "mnist"
    data_dir: str | None = None
    download: bool = True
    train_subset: int | None = None
    latent_dim: int = 2
    hidden: tuple[int, ...] = (512, 256)
    decoder: Literal["bernoulli", "gaussian"] = "bernoulli"
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 1
    device: str = "auto"
    root: str = "runs"
    progress: bool = True

    def __post_init__(self) -> None:
        positive_int("latent_dim", self.latent_dim)
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)


@torch.no_grad()
def evaluate_elbo(vae: VAE, x: torch.Tensor, seed: int) -> dict[str, float]:
    """Mean ELBO and its terms (nats per image) on ``x`` with a fixed sampling seed."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    totals = {"elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
    for chunk in x.split(1000):
        terms = vae.elbo(chunk.float() / 255, g)
        for k in totals:
            totals[k] += float(getattr(terms, k).sum())
    return {k: v / len(x) for k, v in totals.items()}


def run(args: VAEArgs) -> dict[str, Any]:
    """Train; returns run_dir, the test ELBO per epoch and the model."""
    device = resolve_device(args.device)
    seed_everything(args.seed)
    train, test = load_dataset(args.dataset, args.data_dir, args.download, seed=args.seed, train_subset=args.train_subset)
    train, test = train.to(device), test.to(device)
    vae = VAE(tuple(train.x.shape[1:]), args.latent_dim, args.hidden, args.decoder).to(device)
    opt = optim.Adam(vae.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    sample_gen = torch.Generator(device=device).manual_seed(args.seed)
    elbos: list[float] = []
    total_steps = args.epochs * len(train.batches(args.batch_size))
    with RunLogger(args.dataset, "vae", args.seed, args, root=args.root, progress=args.progress,
                   total_steps=total_steps, metrics=("eval/elbo",)) as logger:  # fmt: skip
        step = 0
        for _ in range(args.epochs):
            for i, (x, _) in enumerate(train.batches(args.batch_size, generator=g)):
                loss = -vae.elbo(x.float() / 255, sample_gen).elbo.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step % 50 == 0 or i == 0:  # every 50 steps, and at least once an epoch
                    logger.log_scalar("train/loss", loss, step)
                    logger.progress(step)
            metrics = evaluate_elbo(vae, test.x, args.seed)
            elbos.append(metrics["elbo"])
            logger.log_scalars({f"eval/{k}": v for k, v in metrics.items()}, step)
        vae.eval()
        with torch.no_grad():
            logger.writer.add_image("samples", grid(vae.sample(64, torch.Generator(device=device).manual_seed(0))), step)
            rows = [vae.interpolate(test.x[2 * i].float() / 255, test.x[2 * i + 1].float() / 255, 10) for i in range(6)]
            logger.writer.add_image("interpolations", grid(torch.cat(rows), nrow=10), step)
            if args.latent_dim == 2:
                side = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, 15))
                z = torch.stack(torch.meshgrid(side, side.flip(0), indexing="xy"), -1).reshape(-1, 2).to(device)
                logger.writer.add_image("manifold", grid(vae.mean(z), nrow=15, pad=0), step)
        save_checkpoint(logger.checkpoint_path(), {"model": vae.state_dict(), "args": dataclasses.asdict(args)})
    return {"run_dir": logger.run_dir, "eval_elbo": elbos, "model": vae}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(VAEArgs, run, argv, __doc__)
    print(f"test ELBO per epoch (nats per image): {', '.join(f'{v:.1f}' for v in r['eval_elbo'])}")
    print(f"logs: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
