"""Trajectories of SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam on the Rosenbrock and
Beale surfaces, drawn over the surfaces' contours.

    python -m experiments.optimizers                      # 1000 steps, writes trajectories.png
    python -m experiments.optimizers --steps 2000 --lr-scale 0.5

Every optimizer is the from-scratch one in ``foundations.optim``, started from the same point
with a learning rate suited to the surface (scaled by ``--lr-scale``). Output: a PNG (one panel
per surface, log-spaced contours, the minimum marked), the same figure in TensorBoard (images
tab, ``trajectories``) and the function value per step as ``<surface>/<optimizer>`` scalars.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from experiments.common import parse_and_run
from foundations import optim
from foundations.checks import positive_int
from foundations.runlog import RunLogger


def rosenbrock(p: Tensor) -> Tensor:
    """``(1 - x)^2 + 100 (y - x^2)^2``; minimum 0 at (1, 1), in a long curved valley."""
    x, y = p[..., 0], p[..., 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(p: Tensor) -> Tensor:
    """``(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2``; minimum 0 at (3, 0.5)."""
    x, y = p[..., 0], p[..., 1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


@dataclasses.dataclass(frozen=True)
class Surface:
    name: str
    fn: Callable[[Tensor], Tensor]
    start: tuple[float, float]
    minimum: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    lrs: dict[str, float]
    """learning rate per optimizer name."""


SURFACES = (
    Surface("rosenbrock", rosenbrock, (-1.5, 2.0), (1.0, 1.0), (-2.0, 2.0), (-1.0, 3.0),
            {"sgd": 2e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 1.0, "rmsprop": 5e-3, "adam": 0.1}),
    Surface("beale", beale, (1.0, 1.5), (3.0, 0.5), (-1.0, 4.0), (-1.0, 2.0),
            {"sgd": 1e-2, "momentum": 2e-3, "nesterov": 2e-3, "adagrad": 0.5, "rmsprop": 1e-2, "adam": 5e-2}),
)  # fmt: skip

OPTIMIZERS: dict[str, Callable[[list[Tensor], float], torch.optim.Optimizer]] = {
    "sgd": lambda p, lr: optim.SGD(p, lr=lr),
    "momentum": lambda p, lr: optim.SGD(p, lr=lr, momentum=0.9),
    "nesterov": lambda p, lr: optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
    "adagrad": lambda p, lr: optim.AdaGrad(p, lr=lr),
    "rmsprop": lambda p, lr: optim.RMSProp(p, lr=lr),
    "adam": lambda p, lr: optim.Adam(p, lr=lr),
}


@dataclasses.dataclass(frozen=True)
class OptimizersArgs:
    """Options of the optimizer-trajectory experiment."""

    steps: int = 1000
    lr_scale: float = 1.0
    """multiply every learning rate by this."""
    output: str = "trajectories.png"
    """PNG path; a relative path goes inside the run directory."""
    root: str = "runs"

    def __post_init__(self) -> None:
        positive_int("steps", self.steps)
        if not self.lr_scale > 0:
            raise ValueError(f"lr_scale must be > 0, got {self.lr_scale}")


def trajectory(surface: Surface, name: str, steps: int, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``[steps + 1, 2]`` and function values ``[steps + 1]`` of one optimizer."""
    p = torch.tensor(surface.start, dtype=torch.float64, requires_grad=True)
    opt = OPTIMIZERS[name]([p], lr)
    path, values = [p.detach().clone()], [surface.fn(p).item()]
    for _ in range(steps):
        opt.zero_grad()
        loss = surface.fn(p)
        loss.backward()
        opt.step()
        path.append(p.detach().clone())
        values.append(surface.fn(p).item())
    return torch.stack(path).numpy(), np.asarray(values)


def draw(results: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> plt.Figure:
    """One panel per surface: log-spaced contours, each optimizer's path, the minimum."""
    fig, axes = plt.subplots(1, len(SURFACES), figsize=(7 * len(SURFACES), 5.5))
    for ax, surface in zip(np.atleast_1d(axes), SURFACES, strict=True):
        xs = np.linspace(*surface.xlim, 300)
        ys = np.linspace(*surface.ylim, 300)
        grid = torch.tensor(np.stack(np.meshgrid(xs, ys), -1))
        z = surface.fn(grid).numpy()
        ax.contour(xs, ys, z, levels=np.logspace(-1, np.log10(max(z.max(), 1.0)), 25), cmap="Greys", linewidths=0.6)
        for name, (path, values) in results[surface.name].items():
            ax.plot(path[:, 0], path[:, 1], lw=1.4, label=f"{name} ({values[-1]:.2g})")
        ax.plot(*surface.start, "ko", ms=5)
        ax.plot(*surface.minimum, "r*", ms=14)
        ax.set(xlim=surface.xlim, ylim=surface.ylim, title=surface.name, xlabel="x", ylabel="y")
        ax.legend(loc="lower right", fontsize=8, title="final f")
    fig.tight_layout()
    return fig


def run(args: OptimizersArgs) -> dict[str, Any]:
    """All trajectories; returns ``results[surface][optimizer] = (path, values)``, the PNG path."""
    results: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    with RunLogger("surfaces", "optimizers", 0, args, root=args.root, progress=False, metrics=()) as logger:
        for surface in SURFACES:
            results[surface.name] = {}
            for name in OPTIMIZERS:
                path, values = trajectory(surface, name, args.steps, surface.lrs[name] * args.lr_scale)
                results[surface.name][name] = (path, values)
                for step in range(0, args.steps + 1, max(1, args.steps // 200)):
                    logger.log_scalar(f"{surface.name}/{name}", min(float(values[step]), 1e6), step)
        fig = draw(results)
        output = Path(args.output)
        if not output.is_absolute():
            output = logger.run_dir / output
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, dpi=110)
        logger.writer.add_figure("trajectories", fig, 0)
    return {"results": results, "png": output, "run_dir": logger.run_dir}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point; prints each optimizer's final value and distance to the minimum."""
    args, out = parse_and_run(OptimizersArgs, run, argv, __doc__)
    for surface in SURFACES:
        print(f"{surface.name} after {args.steps} steps (start {surface.start}, minimum {surface.minimum}):")
        for name, (path, values) in out["results"][surface.name].items():
            dist = float(np.linalg.norm(path[-1] - np.asarray(surface.minimum)))
            print(f"  {name:<9} f = {values[-1]:10.3g}   distance to minimum {dist:.3g}")
    print(f"figure: {out['png']}")
    return out


if __name__ == "__main__":
    main()
