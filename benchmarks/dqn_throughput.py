"""Environment steps per second of the whole DQN training loop: this project vs Stable-Baselines3.

    python -m benchmarks.dqn_throughput [--cartpole-steps 10000] [--atari-steps 2000] [--rounds 3]
                                        [--threads N] [--no-compile] [--updates 200] [--only-updates]

Both sides train with the same hyperparameters: batch 32, an update every 4 steps, replay
100k, target sync every 1,000 steps, Adam 1e-4, 1 env; the network is a [64, 64] MLP on
CartPole-v1 (SB3's default) and the Nature CNN on ALE/Breakout-v5 (SB3 ``CnnPolicy``, Atari
wrappers + 4-frame stack). Steps per second are measured from ``TIMED_FROM`` steps on, after
the replay warm-up (``learning_starts``) and the first updates (so a compiled run's compile
is not in its rate), and cover acting, env stepping, storing and updating. Ours runs its
defaults (eager; channels-last convolutions) and, as a second row, ``compile=True``, whose
compile time (the first update, and the acting forward) is reported beside it.

A second table gives the cost that dominates an Atari 100k run (an update every agent step):
gradient updates per second of the ``drq_eps`` and ``der`` presets (sample a batch of 32 from a
replay of Breakout frames, shift-augment it for DrQ, then :meth:`DQN.update`: Nature-CNN
forwards, two for ``drq_eps``, whose target is the online net itself since it is synced every
step, three for ``der``, and one backward), eager and with ``compile=True``, on the default
device. A third ``drq_eps`` row keeps the target as a separate copy synced after every update
(as before the sharing: the same numbers, one forward more), to show what the sharing saves.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import tempfile
import time

import torch

from agents.dqn import DQN, PRESETS, DQNConfig
from agents.loop import LoopConfig, run_training
from benchmarks.clocks import sb3_from_step
from benchmarks.table import eager_and_compiled_rows, missing, print_table
from envs import make_env
from foundations.nets import polyak_update_
from foundations.runlog import RunLogger
from foundations.seeding import seed_everything

WARMUP = 1_000
TIMED_FROM = WARMUP + 200  # 50 updates in: compiling (first update, first greedy act) is done


def _config(total: int, hidden: tuple[int, ...], compile: bool = False) -> DQNConfig:
    return DQNConfig(total_steps=total, learning_rate=1e-4, buffer_size=100_000, target_update_interval=1000,
                     batch_size=32, learning_starts=WARMUP, train_frequency=4, exploration_fraction=0.1,
                     epsilon_end=0.05, hidden_sizes=hidden, compile=compile)


class _Clock:
    """Wraps an agent's ``train``: the time of its first update (compile included) and the time
    at which the timed part starts."""

    def __init__(self, agent: DQN) -> None:
        self.agent, self.start, self.first_update = agent, None, None

    def __getattr__(self, name: str):
        return getattr(self.agent, name)

    def train(self, step: int, n: int):
        if self.start is None and step >= TIMED_FROM:
            self.start = time.perf_counter()
        if self.first_update is None and self.agent.updates == 0:
            begin = time.perf_counter()
            out = self.agent.train(step, n)
            if self.agent.updates:
                self.first_update = time.perf_counter() - begin
            return out
        return self.agent.train(step, n)


def ours(env_id: str, steps: int, compile: bool = False) -> tuple[float, float]:
    """(env steps/s from TIMED_FROM on, seconds of the first update)."""
    seed_everything(0)
    env = make_env(env_id, 1, seed=0)
    config = _config(TIMED_FROM + steps, (64, 64), compile)
    clock = _Clock(DQN(config, env.obs_shape, env.obs_dtype, env.num_actions, seed=0))
    if compile:  # the acting forward compiles on its first greedy step: do it before the clock
        clock.agent.act(env.reset(), 0.0)
    with tempfile.TemporaryDirectory() as root:
        logger = RunLogger(env_id, "bench", 0, root=root, progress=False)
        run_training(clock, env, logger, config.total_steps, LoopConfig(eval_interval=0, checkpoint_interval=0))
        end = time.perf_counter()
        logger.close()
    env.close()
    return steps / (end - clock.start), clock.first_update


def sb3(env_id: str, steps: int) -> float | None:
    try:
        from stable_baselines3 import DQN as SB3DQN
        from stable_baselines3.common.env_util import make_atari_env, make_vec_env
        from stable_baselines3.common.vec_env import VecFrameStack
    except ImportError:
        return None

    if env_id.startswith("ALE/"):
        env = VecFrameStack(make_atari_env(env_id, n_envs=1, seed=0), n_stack=4)
        policy, kwargs = "CnnPolicy", {}
    else:
        env = make_vec_env(env_id, n_envs=1, seed=0)
        policy, kwargs = "MlpPolicy", {"net_arch": [64, 64]}
    model = SB3DQN(policy, env, learning_rate=1e-4, buffer_size=100_000, learning_starts=WARMUP, batch_size=32,
                   target_update_interval=1000, train_freq=4, exploration_fraction=0.1,
                   exploration_final_eps=0.05, policy_kwargs=kwargs, device="cpu", seed=0, verbose=0)
    clock = sb3_from_step(TIMED_FROM)
    model.learn(TIMED_FROM + steps, callback=clock)
    end = time.perf_counter()
    env.close()
    return steps / (end - clock.start)


def update_rate(preset: str, updates: int, compile: bool = False, device: str = "cpu",
                copy_target: bool = False) -> tuple[float, float]:
    """(gradient updates/s of ``preset`` on Breakout frames, seconds of its first update);
    ``copy_target``: a separate target net synced after every update instead of a shared one."""
    seed_everything(0)
    env = make_env("ALE/Breakout-v5", 1, seed=0, device=device)
    config = dataclasses.replace(PRESETS[preset], buffer_size=5_000, compile=compile)
    agent = DQN(config, env.obs_shape, env.obs_dtype, env.num_actions, device=device, seed=0)
    if copy_target:
        agent.target = copy.deepcopy(agent.q).requires_grad_(False)
    obs = env.reset()
    for _ in range(1_000):  # real frames in the replay (random play)
        actions = agent.act(obs, 1.0)
        result = env.step(actions)
        agent.observe(obs, actions, result)
        obs = result.obs
    env.close()

    def one() -> None:
        if config.prioritized:
            batch = agent.replay.sample(config.batch_size, generator=agent.generator, beta=0.4)
        else:
            batch = agent.replay.sample(config.batch_size, generator=agent.generator)
        agent.update(batch)
        if copy_target:
            polyak_update_(agent.target, agent.q, 1.0)

    begin = time.perf_counter()
    one()
    first = time.perf_counter() - begin
    for _ in range(5):
        one()
    if device != "cpu":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(updates):
        one()
    if device != "cpu":
        torch.cuda.synchronize()
    return updates / (time.perf_counter() - start), first


def update_table(updates: int, rounds: int, compile: bool, device: str) -> None:
    """The Atari 100k update-rate table (interleaved rounds, medians)."""
    rows, notes, eager_rates = [], [], {}
    for preset in ("drq_eps", "der"):
        rates: dict[bool, list[float]] = {False: [], True: []}
        firsts: dict[bool, float] = {}
        copy_rates: list[float] = []
        for _ in range(rounds):
            for compiled in (False, True) if compile else (False,):
                r, first = update_rate(preset, updates, compiled, device)
                rates[compiled].append(r)
                firsts.setdefault(compiled, first)
            if preset == "drq_eps":
                copy_rates.append(update_rate(preset, updates, False, device, copy_target=True)[0])
        eager = eager_rates[preset] = statistics.median(rates[False])
        rows.append((f"{preset} update (batch 32), eager (default)", eager, None))
        if copy_rates:
            copied = statistics.median(copy_rates)
            rows.append(("drq_eps update, eager, target as a copy synced every update", copied, None))
            notes.append(f"drq_eps: the shared target runs {eager / copied:.2f}x the updates of a synced copy")
        if compile:
            rows.append((f"{preset} update (batch 32), --compile", statistics.median(rates[True]), eager))
            notes.append(f"{preset}: first update {firsts[False]:.2f} s eager, {firsts[True]:.1f} s with --compile "
                         "(it compiles)")
    print_table(f"Atari 100k gradient updates/s on {device}, torch threads {torch.get_num_threads()} — the compile "
                "rows' peer column is our eager rate", rows, "", notes=notes or None)
    print("- the updates alone of a 100k-step run, eager: "
          + ", ".join(f"{p} {100_000 / r / 3600:.1f} h" for p, r in eager_rates.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cartpole-steps", type=int, default=10_000)
    parser.add_argument("--atari-steps", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows medians")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both (0: torch's default)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile=True rows")
    parser.add_argument("--updates", type=int, default=200, help="timed updates per Atari 100k measurement")
    parser.add_argument("--only-updates", action="store_true", help="only the Atari 100k update table")
    parser.add_argument("--device", default="cpu", help="device of the Atari 100k update table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    update_table(args.updates, args.rounds, not args.no_compile, args.device)
    if args.only_updates:
        return
    rows, notes = [], []
    for env_id, steps in (("CartPole-v1", args.cartpole_steps), ("ALE/Breakout-v5", args.atari_steps)):
        runs: dict[str, list[float]] = {"eager": [], "peer": [], "compiled": []}
        first: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(args.rounds):  # interleaved, so machine noise hits every row alike
            sps, t = ours(env_id, steps)
            runs["eager"].append(sps)
            first["eager"].append(t)
            peer = sb3(env_id, steps)
            if peer is not None:
                runs["peer"].append(peer)
            if not args.no_compile:
                sps, t = ours(env_id, steps, compile=True)
                runs["compiled"].append(sps)
                first["compiled"].append(t)
        new_rows, new_notes = eager_and_compiled_rows(f"{env_id} training loop", runs, first, "first update")
        rows += new_rows
        notes += new_notes
    print_table(f"DQN training throughput (env steps/s) after warm-up, CPU, torch threads {torch.get_num_threads()}"
                " — peer: Stable-Baselines3 DQN", rows, "", notes=notes,
                missing_peer=missing("stable_baselines3", "Stable-Baselines3"))


if __name__ == "__main__":
    main()
