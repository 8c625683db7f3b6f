"""Explanations as pictures: saliency, integrated gradients and occlusion maps for an image
classifier and for a trained DQN's Atari frames; SHAP, permutation importance and partial
dependence for a tabular model.

    python -m experiments.explain                                    # image classifier + tabular
    python -m experiments.explain --dqn-checkpoint runs/<run>/checkpoint.pt    # + "why this action?"
    python -m experiments.explain --parts tabular
    python -m experiments.explain --parts tree --tree-depth 4        # a readable model beside the MLP
    python -m experiments.explain --parts agent --agent-checkpoint runs/<ppo or a2c run>/checkpoint.pt

Image classifier: a small CNN trained for ``--epochs`` on ``--dataset``; for each of 8 test
images, the row input | saliency | integrated gradients | occlusion, each map over the image
(``explain/image_maps``), for the predicted class.
DQN: the agent of a ``dqn``/``dqn_atari`` checkpoint plays greedily; for frames along the
way, the newest frame of the stack under its saliency and integrated-gradients maps for the
chosen action's Q value (``explain/dqn_maps``; vector observations: a bar chart per feature).
Agent (PPO / A2C, vector observations, with or without a memory core): the agent plays one env
greedily, its core's state carried from step to step and reset at episode starts, as in
evaluation. For the action at every ``--agent-every``-th step, integrated gradients and saliency
of that action's logit (continuous actions: the mean of action dimension 0) with respect to the
observations of the last ``--agent-window`` steps: the core is re-run over that window from the
state it had before it, with the same resets, so an attribution on an earlier step is what the
action owes to the core's memory of it (``explain/agent_memory``, a heat map per explained
step: steps back x observation feature). Steps before an episode's start get exactly zero (the
reset cuts them off); a feed-forward agent's attributions sit on the current step alone. The
printed "memory share" is the part of the attributions' absolute mass on earlier steps.
Tabular: an MLP fitted to ``y = 2 x0 + x1^2 - x2 x3 + noise`` with two unused features;
``explain/shap`` (KernelSHAP for one example, exact for 6 features), ``explain/permutation``,
``explain/pdp_1d`` (``x1``) and ``explain/pdp_2d`` (``x2, x3``).
Tree: a model interpretable by construction on the same task, a regression tree of
``--tree-depth`` (``foundations.trees``): its rules (``explain/tree_rules``) and picture
(``explain/tree``), its importances beside the MLP's permutation importance and both partial
dependences of ``x1`` (``explain/tree_vs_mlp``); and global surrogates, trees of each of
``--surrogate-depths`` fitted to the MLP's predictions, with their fidelity (R^2 to the MLP on
held-out inputs, ``explain/surrogate_fidelity``): how deep a tree must be to stand in for it.
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

from envs import AtariConfig, is_atari_id, make_env
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
from foundations.trees import DecisionTreeRegressor

Part = Literal["image", "tabular", "tree", "dqn", "agent"]


@dataclasses.dataclass(frozen=True)
class ExplainArgs:
    """Options of the explanation experiment."""

    parts: tuple[Part, ...] = ("image", "tabular", "tree", "dqn", "agent")
    """which explanations to draw (dqn only with --dqn-checkpoint, agent only with --agent-checkpoint)."""
    dataset: Dataset = "glyphs"
    data_dir: str | None = None
    download: bool = True
    train_subset: int = 10_000
    epochs: int = 2
    dqn_checkpoint: str | None = None
    dqn_frames: int = 6
    """frames to explain, one every --dqn-every steps of greedy play."""
    dqn_every: int = 20
    agent_checkpoint: str | None = None
    """checkpoint.pt of a ppo or a2c run (vector observations; any --core)."""
    agent_frames: int = 6
    """actions to explain, one every --agent-every steps of greedy play."""
    agent_every: int = 10
    agent_window: int = 8
    """steps of observations, back from the explained one, that the attributions cover."""
    ig_steps: int = 32
    tree_depth: int = 4
    """depth of the tree fitted to the tabular task (part tree)."""
    surrogate_depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10)
    """depths of the global surrogate trees fitted to the MLP's predictions (part tree)."""
    seed: int = 1
    device: str = "auto"
    root: str = "runs"
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("train_subset", "epochs", "dqn_frames", "dqn_every", "ig_steps", "agent_frames", "agent_every",
                     "agent_window", "tree_depth"):
            positive_int(name, getattr(self, name))
        if not self.surrogate_depths:
            raise ValueError("surrogate_depths needs at least one depth")
        for depth in self.surrogate_depths:
            positive_int("surrogate_depths entry", depth)


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


class _Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v).squeeze(-1)


def _tabular_model(args: ExplainArgs, cache: dict[str, Any]) -> tuple[nn.Module, Labelled, Labelled]:
    """The MLP fitted to the known function of :func:`_tabular_data` (trained once per run)."""
    if "tabular" not in cache:
        torch.manual_seed(args.seed)
        train, test = _tabular_data(4000, args.seed), _tabular_data(1000, args.seed + 1)
        model = _Regressor()
        fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=3e-3), train, test, 30, 128, task="regression",
            generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
        cache["tabular"] = (model.eval().requires_grad_(False), train, test)  # only called from here on
    return cache["tabular"]


def _neg_mse(out: torch.Tensor, y: torch.Tensor) -> float:
    return -float(((out - y) ** 2).mean())


def explain_tabular(args: ExplainArgs, logger: RunLogger, cache: dict[str, Any]) -> dict[str, Any]:
    """Fit an MLP to a known function; SHAP, permutation importance and partial dependence."""
    model, _, test = _tabular_model(args, cache)
    example = test.x[0]
    shap = kernel_shap(model, example, test.x[:100])
    logger.writer.add_figure("explain/shap", _bar_figure(
        shap.coefficients, f"SHAP values of one example (E[f] = {float(shap.intercept):.2f}, f(x) = {model(example[None]).item():.2f})"), 0)  # fmt: skip

    mean, std, _ = permutation_importance(model, test.x, test.y, _neg_mse, 5, torch.Generator().manual_seed(args.seed))
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


def _r2(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Coefficient of determination of ``prediction`` for ``target`` (both ``[n]``)."""
    target = target.double()
    return float(1 - ((prediction.double() - target) ** 2).sum() / ((target - target.mean()) ** 2).sum())


def explain_tree(args: ExplainArgs, logger: RunLogger, cache: dict[str, Any]) -> dict[str, Any]:
    """An interpretable model beside the black box: a regression tree of ``--tree-depth`` fitted
    to the tabular task (its rules, its picture, its importances next to the MLP's permutation
    importance and partial dependence), and global surrogates: trees fitted to the MLP's
    predictions, with their fidelity (R^2 against the MLP on held-out inputs) for each depth."""
    model, train, test = _tabular_model(args, cache)
    names = [f"x{i}" for i in range(train.x.shape[1])]
    tree = DecisionTreeRegressor(max_depth=args.tree_depth, random_state=args.seed).fit(train.x, train.y)
    tree_r2, mlp_r2 = _r2(tree.predict(test.x), test.y), _r2(model(test.x), test.y)
    logger.writer.add_figure("explain/tree", tree.plot(feature_names=names, fontsize=6), 0)
    rules = tree.export_text(feature_names=names)
    logger.writer.add_text("explain/tree_rules", "```\n" + rules + "```", 0)
    perm, perm_std, _ = permutation_importance(model, test.x, test.y, _neg_mse, 5,
                                               torch.Generator().manual_seed(args.seed))
    (grid1,), pd_mlp = partial_dependence(model, test.x, 1)
    (_,), pd_tree = partial_dependence(lambda v: tree.predict(v).float(), test.x, 1)  # the same grid of x1
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    width = 0.4
    positions = np.arange(len(names))
    axes[0].bar(positions - width / 2, tree.feature_importances_.numpy(), width, label=f"tree (depth {args.tree_depth})")
    axes[0].set(xticks=positions, xticklabels=names, title="tree: impurity importance (sums to 1)")
    axes[1].bar(positions, perm.numpy(), yerr=perm_std.numpy(), color="tab:orange")
    axes[1].set(xticks=positions, xticklabels=names, title="MLP: permutation importance (MSE increase)")
    axes[2].plot(grid1.numpy(), pd_mlp.numpy(), label=f"MLP (test R^2 {mlp_r2:.2f})")
    axes[2].step(grid1.numpy(), pd_tree.numpy(), where="mid", label=f"tree (test R^2 {tree_r2:.2f})")
    axes[2].set(xlabel="x1", ylabel="partial dependence", title="PDP of x1 (true effect x1^2)")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    logger.writer.add_figure("explain/tree_vs_mlp", fig, 0)
    # Global surrogates: how well can a tree of each depth mimic the MLP?
    fidelity = []
    mlp_train, mlp_test = model(train.x), model(test.x)
    for depth in args.surrogate_depths:
        surrogate = DecisionTreeRegressor(max_depth=depth, random_state=args.seed).fit(train.x, mlp_train)
        fidelity.append((depth, _r2(surrogate.predict(test.x), mlp_test), surrogate.get_n_leaves()))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([d for d, _, _ in fidelity], [f for _, f, _ in fidelity], "o-")
    ax.set(xlabel="surrogate tree depth", ylabel="fidelity (R^2 to the MLP, held out)", ylim=(0, 1.02),
           title="global surrogate of the MLP")
    fig.tight_layout()
    logger.writer.add_figure("explain/surrogate_fidelity", fig, 0)
    for depth, value, _ in fidelity:
        logger.log_scalar("explain/surrogate_fidelity", value, depth)
    return {"tree": tree, "rules": rules, "tree_r2": tree_r2, "mlp_r2": mlp_r2, "fidelity": fidelity}


def explain_dqn(args: ExplainArgs, logger: RunLogger, device: torch.device) -> dict[str, Any]:
    """Saliency and IG of the greedy action's Q value on frames of greedy play."""
    from agents.dqn import DQN, DQNConfig  # only needed for this part

    state = load_checkpoint(args.dqn_checkpoint)  # type: ignore[arg-type]
    if state.get("experiment") not in ("dqn", "dqn_atari"):
        raise ValueError(f"{args.dqn_checkpoint} is not a dqn or dqn_atari checkpoint (experiment {state.get('experiment')!r})")
    saved = state["args"]
    config = rebuild(DQNConfig(), saved["agent"])
    atari = rebuild(AtariConfig(), saved.get("atari", {})) if is_atari_id(saved["env_id"]) else None
    env = make_env(saved["env_id"], 1, seed=args.seed, device=device, backend=saved.get("backend", "auto"), atari=atari)
    try:
        agent = DQN.for_env(config, env, device, args.seed)
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
    return {"actions": actions, "maps": maps, "env_id": saved["env_id"]}


def _play(agent: Any, env: Any, steps: int, seed: int) -> dict[str, list]:
    """Greedy play of one env, keeping per step the observation ``[*obs_shape]``, whether it
    starts an episode, the core's state before it (a tuple of ``[..., 1, ...]`` tensors) and the
    action taken."""
    policy = agent.policy
    obs, starts = env.reset(seed=seed), torch.ones(1, dtype=torch.bool, device=env.device)
    state = policy.initial_state(1) if policy.recurrent else ()
    played: dict[str, list] = {"obs": [], "starts": [], "state": [], "action": []}
    with torch.no_grad():
        for _ in range(steps):
            if policy.recurrent:
                params, _, new_state = agent.policy_step(obs, starts, state)
            else:
                params, new_state = policy.actor(obs), ()
            action = policy.draw(params, deterministic=True)
            for key, value in (("obs", obs[0]), ("starts", starts[0]), ("state", state), ("action", action[0])):
                played[key].append(value)
            result = env.step(agent.env_actions(action))
            obs, state = result.obs, new_state
            starts = result.terminated | result.truncated
    return played


def explain_agent(args: ExplainArgs, logger: RunLogger, device: torch.device) -> dict[str, Any]:
    """Attributions of greedy actions over the last ``--agent-window`` observations."""
    from agents.a2c import A2C, A2CConfig  # only needed for this part
    from agents.ppo import PPO, PPOConfig

    saved = load_checkpoint(args.agent_checkpoint)  # type: ignore[arg-type]
    kind = {"ppo": (PPO, PPOConfig), "a2c": (A2C, A2CConfig)}.get(saved.get("experiment", ""))
    if kind is None:
        raise ValueError(f"{args.agent_checkpoint} is not a ppo or a2c checkpoint (experiment "
                         f"{saved.get('experiment')!r}); DQN checkpoints go to --dqn-checkpoint")
    agent_class, config_class = kind
    config = rebuild(config_class(), saved["args"]["agent"])
    env_id = saved["args"]["env_id"]
    env = make_env(env_id, 1, seed=args.seed, device=device)
    try:
        if len(env.obs_shape) != 1:
            raise ValueError(f"--agent-checkpoint explains vector observations; {env_id}'s are {env.obs_shape}")
        agent = agent_class.for_env(dataclasses.replace(config, compile=False), env, device, args.seed)
        agent.load_state_dict(saved["agent"])
        agent.policy.eval()
        played = _play(agent, env, args.agent_frames * args.agent_every, args.seed)
    finally:
        env.close()
    policy, window = agent.policy, args.agent_window if agent.policy.recurrent else 1
    maps, saliencies, steps = [], [], []
    for t in range(0, len(played["obs"]), args.agent_every):
        first = max(0, t - window + 1)
        x = torch.stack(played["obs"][first : t + 1]).float()  # [w, obs]
        starts = torch.stack(played["starts"][first : t + 1])  # [w]
        begin = played["state"][first]

        def final_output(xs: torch.Tensor, starts: torch.Tensor = starts, begin: tuple = begin) -> torch.Tensor:
            """``xs`` ``[n, w, obs]`` windows -> the policy's output at their last step ``[n, A]``."""
            if not policy.recurrent:
                return policy.actor(xs[:, -1])
            n = xs.shape[0]
            state = policy.core.select(begin, torch.zeros(n, dtype=torch.long, device=xs.device))
            params, _, _ = policy.sequence(xs.transpose(0, 1), state, starts[:, None].expand(-1, n))
            return params[-1]

        target = torch.tensor([int(played["action"][t]) if policy.discrete else 0], device=x.device)
        ig = integrated_gradients(final_output, x[None], 0.0, target, steps=args.ig_steps).attributions[0]
        pad = window - x.shape[0]  # the first steps of play have a shorter past
        maps.append(torch.cat([torch.zeros(pad, x.shape[1], device=x.device), ig]).detach().cpu())
        sal = saliency(final_output, x[None], target)[0]
        saliencies.append(torch.cat([torch.zeros(pad, x.shape[1], device=x.device), sal]).detach().cpu())
        steps.append(t)
    attributions = torch.stack(maps)  # [frames, window, obs]
    mass = attributions.abs().sum(-1)  # [frames, window]
    share = float(mass[:, :-1].sum() / mass.sum().clamp_min(1e-12))
    fig, axes = plt.subplots(1, len(steps), figsize=(2.2 * len(steps) + 1, 3.2), squeeze=False)
    bound = float(attributions.abs().max().clamp_min(1e-12))
    for ax, a, t in zip(axes[0], attributions, steps, strict=True):
        image = ax.imshow(a.numpy(), cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
        ax.set(title=f"step {t}", xlabel="observation feature",
               yticks=range(window), yticklabels=[f"t-{window - 1 - i}" if i < window - 1 else "t" for i in range(window)])
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="integrated gradients")
    fig.suptitle(f"what the chosen action owes to the last {window} observations ({env_id})")
    logger.writer.add_figure("explain/agent_memory", fig, 0)
    plt.close(fig)
    return {"env_id": env_id, "steps": steps, "actions": [int(played["action"][t]) if policy.discrete
            else float(played["action"][t][0]) for t in steps], "attributions": attributions,
            "saliency": torch.stack(saliencies), "memory_share": share,
            "starts": torch.stack(played["starts"]).cpu(), "core": config.core.kind}  # fmt: skip


def run(args: ExplainArgs) -> dict[str, Any]:
    device = resolve_device(args.device)
    seed_everything(args.seed)
    if "dqn" in args.parts and args.dqn_checkpoint is not None and not Path(args.dqn_checkpoint).is_file():
        raise ValueError(f"checkpoint not found: {args.dqn_checkpoint}")
    if "agent" in args.parts and args.agent_checkpoint is not None and not Path(args.agent_checkpoint).is_file():
        raise ValueError(f"checkpoint not found: {args.agent_checkpoint}")
    out: dict[str, Any] = {}
    with RunLogger(args.dataset, "explain", args.seed, args, root=args.root, progress=False, metrics=()) as logger:
        if "image" in args.parts:
            out["image"] = explain_images(args, logger, device)
        cache: dict[str, Any] = {}
        if "tabular" in args.parts:
            out["tabular"] = explain_tabular(args, logger, cache)
        if "tree" in args.parts:
            out["tree"] = explain_tree(args, logger, cache)
        if "dqn" in args.parts and args.dqn_checkpoint is not None:
            out["dqn"] = explain_dqn(args, logger, device)
        if "agent" in args.parts and args.agent_checkpoint is not None:
            out["agent"] = explain_agent(args, logger, device)
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
    if "tree" in r:
        t = r["tree"]
        print(f"tree of depth {t['tree'].get_depth()} ({t['tree'].get_n_leaves()} leaves): test R^2 {t['tree_r2']:.3f} "
              f"(MLP {t['mlp_r2']:.3f}); rules in explain/tree_rules, picture in explain/tree")
        print("global surrogate fidelity (R^2 to the MLP, held out) by depth: "
              + ", ".join(f"{d}: {f:.3f}" for d, f, _ in t["fidelity"]))
    if "dqn" in r:
        print(f"DQN on {r['dqn']['env_id']}: explained actions {r['dqn']['actions']} in explain/dqn_maps")
    if "agent" in r:
        a = r["agent"]
        print(f"agent on {a['env_id']} (core {a['core']}): explained the actions at steps {a['steps']}; memory share "
              f"{a['memory_share']:.2f} of the attributions on earlier steps; maps in explain/agent_memory")
    print(f"logs: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
