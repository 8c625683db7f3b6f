"""Explanations as pictures: saliency, integrated gradients and occlusion maps for an image
classifier and for a trained DQN's Atari frames; SHAP, permutation importance and partial
dependence for a tabular model.

    python -m experiments.explain                                    # image classifier + tabular
    python -m experiments.explain --dqn-checkpoint runs/<run>/checkpoint.pt    # + "why this action?"
    python -m experiments.explain --parts tabular

Image classifier: a small CNN trained for ``--epochs`` on ``--dataset``; for each of 8 test
images, the row input | saliency | integrated gradients | occlusion, each map over the image
(``explain/image_maps``), for the predicted class.
DQN: the agent of a ``dqn``/``dqn_atari`` checkpoint plays greedily; for frames along the
way, the newest frame of the stack under its saliency and integrated-gradients maps for the
chosen action's Q value (``explain/dqn_maps``; vector observations: a bar chart per feature).
Tabular: an MLP fitted to ``y = 2 x0 + x1^2 - x2 x3 + noise`` with two unused features;
``explain/shap`` (KernelSHAP for one example, exact for 6 features), ``explain/permutation``,
``explain/pdp_1d`` (``x1``) and ``explain/pdp_2d`` (``x2, x3``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from envs import is_atari_id, make_env
from experiments.common import parse_and_run, rebuild, resolve_device
from experiments.image_classifier import Dataset, load_dataset
from experiments.pictures import grid, heat_overlay
from foundations import optim
from foundations.batches import Labelled
from foundations.checks import positive_int
from foundations.encoders import MnistCNN
from foundations.interpret import (
    integrated_gradients,
    kernel_shap,
    occlusion,
    partial_dependence,
    permutation_importance,
    saliency,
)
from foundations.runlog import RunLogger, load_checkpoint
from foundations.seeding import seed_everything
from foundations.train import fit

Part = Literal["image", "tabular", "dqn"]


@dataclasses.dataclass(frozen=True)
class ExplainArgs:
    """Options of the explanation experiment."""

    parts: tuple[Part, ...] = ("image", "tabular", "dqn")
    """which explanations to draw (dqn only with --dqn-checkpoint)."""
    dataset: Dataset = "glyphs"
    data_dir: str | None = None
    download: bool = True
    train_subset: int = 10_000
    epochs: int = 2
    dqn_checkpoint: str | None = None
    dqn_frames: int = 6
    """frames to explain, one every --dqn-every steps of greedy play."""
    dqn_every: int = 20
    ig_steps: int = 32
    seed: int = 1
    device: str = "auto"
    root: str = "runs"
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("train_subset", "epochs", "dqn_frames", "dqn_every", "ig_steps"):
            positive_int(name, getattr(self, name))


def explain_images(args: ExplainArgs, logger: RunLogger, device: torch.device) -> dict[str, Any]:
    """Train a small CNN, then saliency / IG / occlusion rows for 8 test images."""
    train, test = load_dataset(args.dataset, args.data_dir, args.download, seed=args.seed, train_subset=args.train_subset)
    if train.x.shape[1:] != (1, 28, 28):
        raise ValueError(f"the image part expects 1x28x28 images, {args.dataset} has {list(train.x.shape[1:])}")
    encoder = MnistCNN()
    model = nn.Sequential(encoder, nn.Linear(encoder.out_features, len(train.classes) or 10)).to(device)
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3), train, test.subset(slice(0, 2000)),
                  args.epochs, 64, generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
    model.eval()
    x = test.x[:8].to(device).float() / 255
    predicted = model(x).argmax(1)
    maps = {
        "saliency": saliency(model, x, predicted),
        "integrated_gradients": integrated_gradients(model, x, 0.0, predicted, steps=args.ig_steps).attributions,
        "occlusion": occlusion(model, x, (1, 4, 4), (1, 2, 2), 0.0, predicted),
    }
    rows = []
    for i in range(len(x)):
        rows.append(x[i].expand(3, -1, -1).cpu())
        rows += [heat_overlay(x[i, 0].cpu(), maps[k][i, 0].cpu().clamp_min(0)) for k in maps]
    logger.writer.add_image("explain/image_maps", grid(torch.stack(rows), nrow=4), 0)
    return {"accuracy": history.best.get("accuracy", float("nan")), "maps": maps}


def _tabular_data(n: int, seed: int) -> Labelled:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = 2 * x[:, 0] + x[:, 1] ** 2 - x[:, 2] * x[:, 3] + 0.1 * torch.randn(n, generator=g)
    return Labelled(x, y)


def _bar_figure(values: torch.Tensor, title: str, errors: torch.Tensor | None = None) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [f"x{i}" for i in range(len(values))]
    ax.bar(names, values.cpu().numpy(), yerr=None if errors is None else errors.cpu().numpy(),
           color=["tab:red" if v < 0 else "tab:blue" for v in values.tolist()])  # fmt: skip
    ax.axhline(0, color="black", lw=0.8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def explain_tabular(args: ExplainArgs, logger: RunLogger) -> dict[str, Any]:
    """Fit an MLP to a known function; SHAP, permutation importance and partial dependence."""
    torch.manual_seed(args.seed)
    train, test = _tabular_data(4000, args.seed), _tabular_data(1000, args.seed + 1)

    class Regressor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

        def forward(self, v: torch.Tensor) -> torch.Tensor:
            return self.net(v).squeeze(-1)

    model = Regressor()
    fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=3e-3), train, test, 30, 128, task="regression",
        generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
    model.eval().requires_grad_(False)  # only called from here on
    example = test.x[0]
    shap = kernel_shap(model, example, test.x[:100])
    logger.writer.add_figure("explain/shap", _bar_figure(
        shap.coefficients, f"SHAP values of one example (E[f] = {float(shap.intercept):.2f}, f(x) = {model(example[None]).item():.2f})"), 0)  # fmt: skip

    def neg_mse(out: torch.Tensor, y: torch.Tensor) -> float:
        return -float(((out - y) ** 2).mean())

    mean, std, _ = permutation_importance(model, test.x, test.y, neg_mse, 5, torch.Generator().manual_seed(args.seed))
    logger.writer.add_figure("explain/permutation", _bar_figure(mean, "permutation importance (increase in MSE)", std), 0)
    (grid1,), pd1 = partial_dependence(model, test.x, 1)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(grid1.numpy(), pd1.numpy(), label="model")
    ax.plot(grid1.numpy(), (grid1**2).numpy() + float(pd1.mean() - (grid1**2).mean()), "--", label="x1^2 (shifted)")
    ax.set(xlabel="x1", ylabel="partial dependence", title="PDP of x1")
    ax.legend()
    fig.tight_layout()
    logger.writer.add_figure("explain/pdp_1d", fig, 0)
    (g2, g3), pd2 = partial_dependence(model, test.x, (2, 3), grid_points=15)
    fig, ax = plt.subplots(figsize=(5, 4))
    mesh = ax.pcolormesh(g3.numpy(), g2.numpy(), pd2.numpy(), shading="nearest", cmap="coolwarm")
    fig.colorbar(mesh, ax=ax)
    ax.set(xlabel="x3", ylabel="x2", title="PDP of (x2, x3): -x2 x3")
    fig.tight_layout()
    logger.writer.add_figure("explain/pdp_2d", fig, 0)
    return {"shap": shap, "permutation": mean, "pdp_1d": (grid1, pd1), "pdp_2d": (g2, g3, pd2)}


def explain_dqn(args: ExplainArgs, logger: RunLogger, device: torch.device) -> dict[str, Any]:
    """Saliency and IG of the greedy action's Q value on frames of greedy play."""
    from experiments import dqn, dqn_atari  # experiments import agents: only needed for this part

    state = load_checkpoint(args.dqn_checkpoint)  # type: ignore[arg-type]
    defaults = {"dqn": dqn.Args(), "dqn_atari": dqn_atari.DEFAULTS}.get(state.get("experiment", ""))
    if defaults is None:
        raise ValueError(f"{args.dqn_checkpoint} is not a dqn or dqn_atari checkpoint (experiment {state.get('experiment')!r})")
    run_args = rebuild(defaults, state["args"])
    env = make_env(run_args.env_id, 1, seed=args.seed, device=device, backend=run_args.backend,
                   atari=run_args.atari if is_atari_id(run_args.env_id) else None)  # fmt: skip
    try:
        agent = dqn.build(run_args.agent, env, device, args.seed)
        agent.load_state_dict(state["agent"])
        obs = env.reset(seed=args.seed)
        frames, actions = [], []
        for step in range(args.dqn_frames * args.dqn_every):
            action = agent.act(obs, 0.0)
            if step % args.dqn_every == 0:
                frames.append(obs[0].clone())
                actions.append(int(action[0]))
            obs = env.step(action).obs
    finally:
        env.close()
    x = torch.stack(frames)
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    target = torch.tensor(actions, device=device)
    q = agent.q.eval()
    maps = {"saliency": saliency(q, x, target),
            "integrated_gradients": integrated_gradients(q, x, 0.0, target, steps=args.ig_steps).attributions}  # fmt: skip
    if x.ndim == 4:  # frame stacks [n, stack, H, W]: newest frame under the summed maps
        rows = []
        for i in range(len(x)):
            rows.append(x[i, -1].expand(3, -1, -1).cpu())
            rows += [heat_overlay(x[i, -1].cpu(), maps[k][i].abs().sum(0).cpu()) for k in maps]
        logger.writer.add_image("explain/dqn_maps", grid(torch.stack(rows), nrow=3), 0)
    else:
        fig = _bar_figure(maps["integrated_gradients"].mean(0).cpu(), "mean IG of the chosen action's Q value")
        logger.writer.add_figure("explain/dqn_maps", fig, 0)
    return {"actions": actions, "maps": maps, "env_id": run_args.env_id}


def run(args: ExplainArgs) -> dict[str, Any]:
    device = resolve_device(args.device)
    seed_everything(args.seed)
    if "dqn" in args.parts and args.dqn_checkpoint is not None and not Path(args.dqn_checkpoint).is_file():
        raise ValueError(f"checkpoint not found: {args.dqn_checkpoint}")
    out: dict[str, Any] = {}
    with RunLogger(args.dataset, "explain", args.seed, args, root=args.root, progress=False, metrics=()) as logger:
        if "image" in args.parts:
            out["image"] = explain_images(args, logger, device)
        if "tabular" in args.parts:
            out["tabular"] = explain_tabular(args, logger)
        if "dqn" in args.parts and args.dqn_checkpoint is not None:
            out["dqn"] = explain_dqn(args, logger, device)
    out["run_dir"] = logger.run_dir
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(ExplainArgs, run, argv, __doc__)
    if "image" in r:
        print(f"image classifier validation accuracy {r['image']['accuracy']:.3f}: maps in explain/image_maps")
    if "tabular" in r:
        phi = r["tabular"]["shap"].coefficients
        print("tabular SHAP values: " + ", ".join(f"x{i} {v:+.2f}" for i, v in enumerate(phi.tolist())))
        ranked = np.argsort(-r["tabular"]["permutation"].numpy())
        print("permutation importance ranking: " + " > ".join(f"x{i}" for i in ranked))
    if "dqn" in r:
        print(f"DQN on {r['dqn']['env_id']}: explained actions {r['dqn']['actions']} in explain/dqn_maps")
    print(f"logs: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
