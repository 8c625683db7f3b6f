"""PQN against DQN on CartPole: training throughput, and wall time to a greedy 475.

    python -m benchmarks.pqn [--steps 20000] [--rounds 3] [--seeds 5] [--no-solve] [--threads 1]

Table 1, environment steps per second of the whole training loop (acting, env stepping,
storing, updating), measured side by side in interleaved rounds (medians), one thread each:

- PQN, the ``cartpole`` preset (CleanRL's ``pqn.py``: 4 envs x 128 steps, 4 epochs of 4
  minibatches, no replay, no target network);
- this project's DQN, its ``cartpole`` preset (1 env, 128 updates of 64 every 256 steps);
- Stable-Baselines3's DQN with CleanRL's ``dqn.py`` CartPole settings (1 env, Adam 2.5e-4,
  batch 128, an update every 10 steps, replay 10k, target sync every 500 steps; the peer).

Each is timed from ``TIMED_FROM`` steps on, after every warm-up (replay fill, first updates).

Table 2, wall time to the first greedy evaluation of at least 475 (10 episodes every
``--eval-every`` steps; evaluation time not counted), PQN's preset against DQN's, on the same
seeds (1..``--seeds``), median over seeds; a seed that never gets there counts as its full run.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from agents.dqn import DQN
from agents.dqn import PRESETS as DQN_PRESETS
from agents.dqn import evaluation_policy as dqn_policy
from agents.loop import LoopConfig, run_training
from agents.pqn import PQN
from agents.pqn import PRESETS as PQN_PRESETS
from agents.pqn import evaluation_policy as pqn_policy
from benchmarks.clocks import FromStep, sb3_from_step
from benchmarks.table import missing, print_table
from envs import evaluate, make_env
from foundations.runlog import RunLogger
from foundations.seeding import seed_everything

ENV = "CartPole-v1"
TIMED_FROM = 2_000  # past DQN's 1,000-step warm-up and first burst of updates, and PQN's first rollouts
SOLVED = 475.0


def _build(kind: str, total: int, seed: int):
    seed_everything(seed)
    if kind == "pqn":
        config = PQN_PRESETS["cartpole"]
        env = make_env(ENV, config.num_envs, seed=seed)
        config = dataclasses.replace(config, total_steps=total)
        return PQN.for_env(config, env, torch.device("cpu"), seed), env, pqn_policy
    config = DQN_PRESETS["cartpole"]
    env = make_env(ENV, config.num_envs, seed=seed)
    config = type(config)(**{**config.__dict__, "total_steps": total})
    return DQN.for_env(config, env, torch.device("cpu"), seed), env, dqn_policy


def ours(kind: str, steps: int) -> float:
    """Env steps/s of ``kind``'s training loop from ``TIMED_FROM`` on (its preset's values,
    ``total_steps`` cut to the measured length, which changes only the schedules)."""
    agent, env, _ = _build(kind, TIMED_FROM + steps, 0)
    clock = FromStep(agent, TIMED_FROM)
    with tempfile.TemporaryDirectory() as root:
        logger = RunLogger(ENV, "bench", 0, root=root, progress=False)
        run_training(clock, env, logger, TIMED_FROM + steps, LoopConfig(eval_interval=0, checkpoint_interval=0))
        end = time.perf_counter()
        logger.close()
    env.close()
    return steps / (end - clock.start)


def sb3(steps: int) -> float | None:
    """Env steps/s of Stable-Baselines3's DQN with CleanRL's ``dqn.py`` CartPole settings."""
    try:
        from stable_baselines3 import DQN as SB3DQN
        from stable_baselines3.common.env_util import make_vec_env
    except ImportError:
        return None
    env = make_vec_env(ENV, n_envs=1, seed=0)
    # CleanRL's dqn.py: learning_starts 10,000 would leave nothing to time; 1,000 here, as ours
    model = SB3DQN("MlpPolicy", env, learning_rate=2.5e-4, buffer_size=10_000, gamma=0.99, tau=1.0,
                   target_update_interval=500, batch_size=128, exploration_initial_eps=1.0,
                   exploration_final_eps=0.05, exploration_fraction=0.5, learning_starts=1_000, train_freq=10,
                   policy_kwargs={"net_arch": [120, 84]}, device="cpu", seed=0, verbose=0)
    clock = sb3_from_step(TIMED_FROM)
    model.learn(TIMED_FROM + steps, callback=clock)
    end = time.perf_counter()
    env.close()
    return steps / (end - clock.start)


class _Solved(Exception):
    pass


def time_to_solve(kind: str, seed: int, eval_every: int) -> tuple[float, int | None]:
    """(training seconds until the first greedy evaluation >= 475, its step), or the whole run's
    seconds and ``None`` if none reached it. Evaluations run outside the clock."""
    preset = PQN_PRESETS["cartpole"] if kind == "pqn" else DQN_PRESETS["cartpole"]
    agent, env, policy_of = _build(kind, preset.total_steps, seed)
    spent = {"eval": 0.0}
    found: dict[str, int] = {}

    def run_eval(step: int) -> torch.Tensor:
        begin = time.perf_counter()
        result = evaluate(policy_of(agent, agent.config, np.random.default_rng([seed, step])), ENV, 10,
                          seed=seed + 100_000, num_envs=10)
        spent["eval"] += time.perf_counter() - begin
        if float(result.returns.double().mean()) >= SOLVED:
            found["step"] = step
            raise _Solved
        return result.returns

    with tempfile.TemporaryDirectory() as root:
        logger = RunLogger(ENV, "bench", seed, root=root, progress=False)
        start = time.perf_counter()
        try:
            run_training(agent, env, logger, preset.total_steps,
                         LoopConfig(eval_interval=eval_every, checkpoint_interval=0), evaluate=run_eval)
        except _Solved:
            pass
        elapsed = time.perf_counter() - start - spent["eval"]
        logger.close()
    env.close()
    return elapsed, found.get("step")


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000, help="timed env steps per throughput measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows medians")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N of the time-to-475 table")
    parser.add_argument("--eval-every", type=int, default=5_000, help="env steps between greedy evaluations")
    parser.add_argument("--no-solve", action="store_true", help="only the throughput table")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the comparison: one each)")
    args = parser.parse_args(argv)
    for name in ("steps", "rounds", "seeds", "eval_every", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    runs: dict[str, list[float]] = {"pqn": [], "dqn": [], "sb3": []}
    measure: dict[str, Callable[[], float | None]] = {
        "pqn": lambda: ours("pqn", args.steps), "dqn": lambda: ours("dqn", args.steps), "sb3": lambda: sb3(args.steps)}
    for _ in range(args.rounds):  # interleaved, so machine noise hits every row alike
        for name, fn in measure.items():
            value = fn()
            if value is not None:
                runs[name].append(value)
    peer = _median(runs["sb3"])
    rows = [("PQN, preset cartpole (4 envs)", _median(runs["pqn"]), peer),
            ("DQN, preset cartpole (1 env)", _median(runs["dqn"]), peer)]
    print_table(f"CartPole-v1 training throughput (env steps/s), CPU, torch threads {args.threads} — peer: "
                "Stable-Baselines3 DQN with CleanRL's dqn.py settings", rows, "",
                missing_peer=missing("stable_baselines3", "Stable-Baselines3"))
    if args.no_solve:
        return
    times: dict[str, list[float]] = {"pqn": [], "dqn": []}
    lines = []
    for seed in range(1, args.seeds + 1):  # the two agents alternate, seed by seed
        for kind in ("pqn", "dqn"):
            seconds, step = time_to_solve(kind, seed, args.eval_every)
            times[kind].append(seconds)
            lines.append(f"  seed {seed} {kind}: {seconds:.1f} s" + (f" (step {step:,})" if step else " (never >= 475)"))
    print_table(f"CartPole-v1 wall time to a greedy {SOLVED:.0f} (s, median of seeds 1-{args.seeds}, evaluation "
                "excluded; lower is better) — peer: this project's DQN cartpole preset",
                [("PQN, preset cartpole", _median(times["pqn"]), _median(times["dqn"]))], "s")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
