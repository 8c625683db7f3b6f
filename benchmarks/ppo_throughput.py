"""Environment steps per second of PPO training: this project vs Stable-Baselines3 PPO.

    python -m benchmarks.ppo_throughput [--cartpole-rollouts 20] [--atari-rollouts 3] [--rounds 3] [--no-compile]

Identical hyperparameters on both sides: 8 envs x 128 steps per rollout, 4 epochs of 4
minibatches (256 samples), Adam 2.5e-4, clip 0.2, GAE 0.95; separate [64, 64] tanh MLPs for
policy and value on CartPole-v1 (SB3's default ``MlpPolicy``), the Nature CNN shared trunk on
ALE/Breakout-v5 (SB3 ``CnnPolicy`` on ``make_atari_env`` + 4-frame stack). Timing starts
after the first rollout and its update on both sides (so a compiled run's compile is not in
its rate; it is reported beside it) and covers collection and updates. Ours runs its default
(eager) and, as a second row, ``compile=True``. Rates are medians of interleaved rounds.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from agents.loop import LoopConfig, run_training
from agents.ppo import PPO, PPOConfig
from benchmarks.clocks import AfterFirstUpdate, sb3_steps_per_second
from benchmarks.table import eager_and_compiled_rows, missing, print_table
from envs import make_env
from foundations.runlog import RunLogger
from foundations.seeding import seed_everything

NUM_ENVS, NUM_STEPS = 8, 128


def ours(env_id: str, rollouts: int, compile: bool = False) -> tuple[float, float]:
    """(env steps/s after the first rollout and update, seconds of that first rollout and update)."""
    seed_everything(0)
    total = NUM_ENVS * NUM_STEPS * (rollouts + 1)
    config = PPOConfig(total_steps=total, num_envs=NUM_ENVS, num_steps=NUM_STEPS, learning_rate=2.5e-4,
                       update_epochs=4, num_minibatches=4, clip_coef=0.2, ent_coef=0.01, compile=compile)
    env = make_env(env_id, NUM_ENVS, seed=0)
    clock = AfterFirstUpdate(PPO(config, env.obs_shape, env.obs_dtype, env.single_action_space, seed=0))
    with tempfile.TemporaryDirectory() as root:
        logger = RunLogger(env_id, "bench", 0, root=root, progress=False)
        begin = time.perf_counter()
        run_training(clock, env, logger, total, LoopConfig(eval_interval=0, checkpoint_interval=0, log_interval=total))
        end = time.perf_counter()
        logger.close()
    env.close()
    return NUM_ENVS * NUM_STEPS * rollouts / (end - clock.start), clock.start - begin


def sb3(env_id: str, rollouts: int) -> float | None:
    try:
        from stable_baselines3 import PPO as SB3PPO
        from stable_baselines3.common.env_util import make_atari_env, make_vec_env
        from stable_baselines3.common.vec_env import VecFrameStack
    except ImportError:
        return None
    if env_id.startswith("ALE/"):
        env = VecFrameStack(make_atari_env(env_id, n_envs=NUM_ENVS, seed=0), n_stack=4)
        policy = "CnnPolicy"
    else:
        env = make_vec_env(env_id, n_envs=NUM_ENVS, seed=0)
        policy = "MlpPolicy"
    model = SB3PPO(policy, env, learning_rate=2.5e-4, n_steps=NUM_STEPS, batch_size=NUM_ENVS * NUM_STEPS // 4,
                   n_epochs=4, clip_range=0.2, ent_coef=0.01, device="cpu", seed=0, verbose=0)
    return sb3_steps_per_second(model, env, NUM_ENVS * NUM_STEPS, rollouts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cartpole-rollouts", type=int, default=20)
    parser.add_argument("--atari-rollouts", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both (0: torch's default)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile=True rows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, notes = [], []
    for env_id, rollouts in (("CartPole-v1", args.cartpole_rollouts), ("ALE/Breakout-v5", args.atari_rollouts)):
        runs: dict[str, list[float]] = {"eager": [], "peer": [], "compiled": []}
        first: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(args.rounds):
            for name in ("eager", "compiled"):
                if name == "compiled" and args.no_compile:
                    continue
                sps, t = ours(env_id, rollouts, compile=name == "compiled")
                runs[name].append(sps)
                first[name].append(t)
            p = sb3(env_id, rollouts)
            if p is not None:
                runs["peer"].append(p)
        new_rows, new_notes = eager_and_compiled_rows(f"{env_id} PPO training", runs, first,
                                                      "first rollout + update")
        rows += new_rows
        notes += new_notes
    print_table(f"PPO training throughput (env steps/s), {NUM_ENVS} envs x {NUM_STEPS} steps, 4 epochs x 4 "
                f"minibatches, CPU, torch threads {torch.get_num_threads()} — peer: Stable-Baselines3 PPO", rows, "",
                notes=notes, missing_peer=missing("stable_baselines3", "Stable-Baselines3"))


if __name__ == "__main__":
    main()
