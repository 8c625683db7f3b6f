"""Distil a trained agent's policy into a decision tree a person can read (VIPER).

    python -m experiments.distill --agent-checkpoint runs/<dqn run>/checkpoint.pt --max-depth 5
    python -m experiments.distill --agent-checkpoint runs/<ppo run>/checkpoint.pt --iterations 15

VIPER (Bastani et al. 2018, "Verifiable Reinforcement Learning via Policy Extraction"): DAgger
with the agent as the teacher. Iteration 0 rolls out the teacher; every later one rolls out the
tree fitted last. Every visited state is labelled with the teacher's greedy action and weighted
by how much the choice matters there: the teacher's Q-gap ``max_a Q(s, a) - min_a Q(s, a)`` for a
DQN (VIPER's loss), the gap between its largest and smallest action log-probability for a PPO /
A2C policy (``--weighting uniform`` weighs every state alike). A tree of at most ``--max-depth``
(``foundations.trees.DecisionTreeClassifier``) is fitted to all the states gathered so far, then
played greedily for ``--eval-episodes`` episodes; the tree kept is the one with the best mean
return (ties: the higher fidelity, then the fewer leaves). Fidelity is how often the tree picks
the teacher's action on the states the tree itself visits.

The run directory (``runs/<env>__distill__<seed>__<time>/``) gets ``tree.pt`` (the kept tree's
state dict: ``DecisionTreeClassifier().load_state_dict(torch.load(path, weights_only=True))``),
``tree.txt`` (its rules), ``tree.png`` (its drawing), ``iterations.csv`` and TensorBoard's
``distill/return``, ``distill/fidelity``, ``distill/depth``, ``distill/leaves`` per iteration,
the teacher's return, and the kept tree as text and image. Vector observations and discrete
actions only: a tree over pixels is no rule a person can read, and a recurrent policy's action
depends on a memory the tree does not have.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from envs import evaluate, make_env
from experiments.common import parse_and_run, rebuild, resolve_device
from foundations.runlog import RunLogger, load_checkpoint
from foundations.seeding import seed_everything
from foundations.trees import DecisionTreeClassifier

EXPERIMENT = "distill"
FEATURE_NAMES = {
    "CartPole-v1": ["cart position", "cart velocity", "pole angle", "pole angular velocity"],
    "Acrobot-v1": ["cos theta1", "sin theta1", "cos theta2", "sin theta2", "theta1 velocity", "theta2 velocity"],
    "MountainCar-v0": ["position", "velocity"],
    "LunarLander-v3": ["x", "y", "vx", "vy", "angle", "angular velocity", "left leg", "right leg"],
}
ACTION_NAMES = {
    "CartPole-v1": ["push left", "push right"],
    "Acrobot-v1": ["torque -1", "torque 0", "torque +1"],
    "MountainCar-v0": ["accelerate left", "no push", "accelerate right"],
}


@dataclasses.dataclass(frozen=True)
class DistillArgs:
    """Options of the policy distillation."""

    agent_checkpoint: str = ""
    """checkpoint.pt of a dqn, ppo or a2c run with vector observations and discrete actions."""
    max_depth: int = 5
    """the tree's depth limit."""
    min_samples_leaf: int = 1
    criterion: Literal["gini", "entropy"] = "gini"
    iterations: int = 10
    """DAgger iterations (iteration 0 rolls out the teacher)."""
    episodes: int = 10
    """episodes rolled out per iteration to gather states."""
    eval_episodes: int = 100
    """greedy episodes to score each tree (and the teacher)."""
    weighting: Literal["gap", "uniform"] = "gap"
    """gap: the teacher's Q-gap (DQN) or log-probability gap (PPO/A2C); uniform: all states alike."""
    seed: int = 1
    device: str = "cpu"
    runs_dir: str = "runs"

    def __post_init__(self) -> None:
        if not self.agent_checkpoint:
            raise ValueError("--agent-checkpoint is required: the checkpoint.pt of a dqn, ppo or a2c run")
        for name in ("max_depth", "min_samples_leaf", "iterations", "episodes", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


@dataclasses.dataclass
class Teacher:
    """The agent to distil: its env, greedy actions and per-state weights."""

    env_id: str
    num_actions: int
    obs_size: int
    scores: Callable[[torch.Tensor], torch.Tensor]
    """observations ``[n, obs]`` -> per-action scores ``[n, actions]`` (Q-values or log-probabilities)."""
    kind: str

    def label(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy actions ``[n]`` and gap weights ``[n]`` (max score minus min score)."""
        with torch.no_grad():
            s = self.scores(obs)
        return s.argmax(dim=1), (s.max(dim=1).values - s.min(dim=1).values).double()


def load_teacher(path: str, device: torch.device) -> Teacher:
    """The agent of a dqn / ppo / a2c checkpoint; ``ValueError`` for any other, for image
    observations, continuous actions or a recurrent policy."""
    from agents.a2c import A2C, A2CConfig  # only this script needs them
    from agents.dqn import DQN, DQNConfig
    from agents.ppo import PPO, PPOConfig

    if not Path(path).is_file():
        raise ValueError(f"checkpoint not found: {path}")
    saved = load_checkpoint(path)
    kinds = {"dqn": (DQN, DQNConfig), "ppo": (PPO, PPOConfig), "a2c": (A2C, A2CConfig)}
    if saved.get("experiment") not in kinds:
        raise ValueError(f"{path} is a {saved.get('experiment')!r} checkpoint; distillation takes dqn, ppo or a2c "
                         "agents with discrete actions (dqn_atari, ppo_atari: image observations, not readable as rules)")
    agent_class, config_class = kinds[saved["experiment"]]
    env_id, seed = saved["args"]["env_id"], saved["args"]["seed"]
    env = make_env(env_id, 1, seed=0, device=device)
    try:
        if len(env.obs_shape) != 1:
            raise ValueError(f"{env_id} has image observations {list(env.obs_shape)}: a tree over pixels is "
                             "not a rule a person can read; distil agents of vector-observation envs")
        if not env.is_discrete:
            raise ValueError(f"{env_id} has continuous actions ({env.single_action_space}); a classification "
                             "tree needs a discrete action space")
        agent_config = dataclasses.replace(rebuild(config_class(), saved["args"]["agent"]), compile=False)
        agent = agent_class.for_env(agent_config, env, device, seed)
    finally:
        env.close()
    agent.load_state_dict(saved["agent"])
    if agent_class is DQN:
        q = agent.q.eval()
        scores: Callable[[torch.Tensor], torch.Tensor] = lambda obs: q(obs.float())  # noqa: E731
        kind = "dqn"
    else:
        if agent.recurrent:
            raise ValueError(f"{path} is a recurrent policy (--core {agent_config.core.kind}); its action depends on its "
                             "memory, which a tree over the current observation cannot hold")
        policy = agent.policy.eval()
        scores = lambda obs: torch.log_softmax(policy.actor(obs.float()), dim=-1)  # noqa: E731
        kind = saved["experiment"]
    return Teacher(env_id, env.num_actions, env.obs_shape[0], scores, kind)


def rollout(policy: Callable[[torch.Tensor], torch.Tensor], env_id: str, episodes: int, seed: int,
            device: torch.device) -> tuple[torch.Tensor, list[float]]:
    """Play ``policy`` for ``episodes`` episodes: the observations of those episodes ``[steps,
    obs]`` and their returns. Up to 10 envs step together (one batched call of the policy per
    step), each playing its share of the episodes; what an env meets after its share is dropped,
    so long and short episodes count as they come."""
    n = int(np.gcd(episodes, 10))
    quota = episodes // n
    states: list[torch.Tensor] = []
    returns: list[float] = []
    done = [0] * n
    with make_env(env_id, n, seed=seed, device=device) as env, torch.inference_mode():
        obs = env.reset()
        while min(done) < quota:
            active = torch.tensor([d < quota for d in done])
            states.append(obs.cpu()[active])
            result = env.step(policy(obs))
            obs = result.obs
            for i, r in zip(result.episodes.env_ids.tolist(), result.episodes.returns.tolist(), strict=True):
                if done[i] < quota:
                    returns.append(r)
                    done[i] += 1
    return torch.cat(states).float(), returns


def tree_policy(tree: DecisionTreeClassifier, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda obs: tree.predict(obs.float().cpu()).to(device)


def run(args: DistillArgs) -> dict[str, Any]:
    device = resolve_device(args.device)
    teacher = load_teacher(args.agent_checkpoint, device)  # every refusal before anything is written
    seed_everything(args.seed)
    greedy = lambda obs: teacher.label(obs)[0]  # noqa: E731
    names = FEATURE_NAMES.get(teacher.env_id, [f"x{i}" for i in range(teacher.obs_size)])
    actions = ACTION_NAMES.get(teacher.env_id, [f"action {a}" for a in range(teacher.num_actions)])
    eval_envs = int(np.gcd(args.eval_episodes, 8))
    teacher_return = float(evaluate(greedy, teacher.env_id, args.eval_episodes, seed=args.seed + 100_000,
                                    device=device, num_envs=eval_envs).returns.mean())
    xs, ys, ws, history = [], [], [], []
    best: tuple[tuple[float, float, int], DecisionTreeClassifier, int] | None = None
    with RunLogger(teacher.env_id, EXPERIMENT, args.seed, config=args, root=args.runs_dir,
                   total_steps=args.iterations, progress=False) as logger:
        logger.log_scalar("distill/teacher_return", teacher_return, 0)
        policy: Callable[[torch.Tensor], torch.Tensor] = greedy
        for it in range(args.iterations):
            states, _ = rollout(policy, teacher.env_id, args.episodes, args.seed + 1_000 * it, device)
            labels, gaps = teacher.label(states.to(device))
            xs.append(states)
            ys.append(labels.cpu())
            ws.append(gaps.cpu() if args.weighting == "gap" else torch.ones(len(states), dtype=torch.float64))
            x, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws)
            if not w.sum() > 0:  # a teacher indifferent everywhere: weigh states alike
                w = torch.ones_like(w)
            tree = DecisionTreeClassifier(criterion=args.criterion, max_depth=args.max_depth,
                                          min_samples_leaf=args.min_samples_leaf, random_state=args.seed).fit(x, y, w)
            policy = tree_policy(tree, device)
            seen, returns = rollout(policy, teacher.env_id, args.eval_episodes, args.seed + 100_000, device)
            fidelity = float((tree.predict(seen) == teacher.label(seen.to(device))[0].cpu()).double().mean())
            mean_return = float(np.mean(returns))
            row = {"iteration": it, "states": len(x), "return": mean_return, "fidelity": fidelity,
                   "depth": tree.get_depth(), "leaves": tree.get_n_leaves()}
            history.append(row)
            for key in ("return", "fidelity", "depth", "leaves"):
                logger.log_scalar(f"distill/{key}", float(row[key]), it)
            rank = (mean_return, fidelity, -tree.get_n_leaves())
            if best is None or rank > best[0]:
                best = (rank, tree, it)
            print(f"iteration {it}: {len(x):,} states, tree return {mean_return:.1f} (teacher {teacher_return:.1f}), "
                  f"fidelity {fidelity:.3f}, depth {row['depth']}, {row['leaves']} leaves", flush=True)
        assert best is not None
        _, kept, kept_at = best
        run_dir = logger.run_dir
        torch.save(kept.state_dict(), run_dir / "tree.pt")
        rules = kept.export_text(feature_names=names, class_names=actions, decimals=3)
        (run_dir / "tree.txt").write_text(rules)
        figure = kept.plot(feature_names=names, class_names=actions, decimals=3)
        figure.savefig(run_dir / "tree.png", dpi=100)
        logger.writer.add_figure("distill/tree", figure, kept_at)
        logger.writer.add_text("distill/rules", "```\n" + rules + "```", kept_at)
        with open(run_dir / "iterations.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
    kept_row = history[kept_at]
    return {"teacher_return": teacher_return, "history": history, "tree": kept, "kept": kept_row,
            "rules": rules, "run_dir": run_dir}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(DistillArgs, run, argv, __doc__)
    k = r["kept"]
    print(f"\nkept the tree of iteration {k['iteration']}: return {k['return']:.1f} over the evaluation episodes "
          f"(teacher {r['teacher_return']:.1f}), fidelity {k['fidelity']:.3f}, depth {k['depth']}, {k['leaves']} leaves\n")
    print(r["rules"])
    print(f"tree, rules and picture: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
