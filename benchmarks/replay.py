"""Replay buffer speed and memory on Atari-shaped data: this project's buffer vs SB3's.

    python -m benchmarks.replay [--capacity 100000] [--num-envs 8] [--seconds 2] [--threads N]

Transitions are 4x84x84 uint8 frame stacks from 8 env streams that continue from step to step
(as a real env's would), with an episode end every ~500 steps. Rows: add throughput
(transitions/s), sample throughput (batches/s at batch 32 and 256, returning torch tensors on the
CPU), and bytes per transition from the buffers' array sizes. Peers: Stable-Baselines3
``ReplayBuffer`` with and without ``optimize_memory_usage`` (``pip install .[bench]``).
Our sampling is torch ops, which use torch's intra-op threads (``--threads``, default all cores,
as in a training process); the peers' NumPy fancy indexing always runs on one thread.
Sample rates are medians of 3 interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from agents.replay import PrioritizedReplayBuffer, ReplayBuffer
from benchmarks.table import print_table, rate


class Stream:
    """Frame stacks of ``num_envs`` continuing streams, as numpy arrays and torch tensors."""

    def __init__(self, num_envs: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.pool = self.rng.integers(0, 256, (256, 84, 84), dtype=np.uint8)
        self.n, self.t = num_envs, 0
        self.stack = np.stack([self.pool[(np.arange(4) + i) % 256] for i in range(num_envs)])

    def step(self):
        self.t += 1
        nxt = np.concatenate([self.stack[:, 1:], self.pool[(self.t + np.arange(self.n) * 7) % 256][:, None]], axis=1)
        done = (self.t + np.arange(self.n) * 61) % 500 == 0
        obs = self.stack
        self.stack = nxt.copy()
        self.stack[done, :3] = 0
        action = self.rng.integers(0, 4, self.n)
        reward = self.rng.random(self.n).astype(np.float32)
        return obs, action, reward, nxt, done


def fill_ours(cls, capacity: int, num_envs: int):
    """Fill one of our buffers to capacity; (buffer, add rate, sample function)."""
    buf = cls(capacity, (4, 84, 84), torch.uint8, (), torch.int64, num_envs, frame_stack=4, n_step=1)
    stream = Stream(num_envs)
    false = torch.zeros(num_envs, dtype=torch.bool)
    start = time.perf_counter()
    while buf._adds * num_envs < capacity:
        obs, action, reward, nxt, done = stream.step()
        buf.add(torch.from_numpy(obs), torch.from_numpy(action), torch.from_numpy(reward),
                torch.from_numpy(nxt), torch.from_numpy(done), false)
    add_rate = buf._adds * num_envs / (time.perf_counter() - start)
    g = torch.Generator().manual_seed(0)
    return add_rate, (lambda b: buf.sample(b, generator=g)), buf.nbytes / buf.capacity


def fill_sb3(capacity: int, num_envs: int, optimize: bool):
    """Fill an SB3 buffer the same way; None when SB3 is not installed."""
    try:
        from gymnasium import spaces
        from stable_baselines3.common.buffers import ReplayBuffer as SB3Buffer
    except ImportError:
        return None
    obs_space = spaces.Box(0, 255, (4, 84, 84), np.uint8)
    buf = SB3Buffer(capacity, obs_space, spaces.Discrete(4), device="cpu", n_envs=num_envs,
                    optimize_memory_usage=optimize, handle_timeout_termination=not optimize)
    stream = Stream(num_envs)
    infos = [{} for _ in range(num_envs)]
    start, added = time.perf_counter(), 0
    while added < capacity:
        obs, action, reward, nxt, done = stream.step()
        buf.add(obs, nxt, action[:, None], reward, done, infos)
        added += num_envs
    add_rate = added / (time.perf_counter() - start)
    nbytes = buf.observations.nbytes + buf.actions.nbytes + buf.rewards.nbytes + buf.dones.nbytes
    if not optimize:
        nbytes += buf.next_observations.nbytes + buf.timeouts.nbytes
    return add_rate, buf.sample, nbytes / capacity


def sample_rates(samplers: dict, seconds: float, rounds: int = 3) -> dict:
    """Median batches/s per (name, batch size), rounds interleaved so machine noise hits all alike."""
    runs: dict = {}
    for _ in range(rounds):
        for name, sample in samplers.items():
            for b in (32, 256):
                runs.setdefault((name, b), []).append(rate(lambda s=sample, b=b: (s(b), 1)[1], seconds))
    return {key: statistics.median(v) for key, v in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity", type=int, default=100_000)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for ours (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()  # NumPy fancy indexing (the peers) uses one thread whatever this is
    filled = {"ours": fill_ours(ReplayBuffer, args.capacity, args.num_envs),
              "ours PER": fill_ours(PrioritizedReplayBuffer, args.capacity, args.num_envs)}
    for optimize in (False, True):
        peer = fill_sb3(args.capacity, args.num_envs, optimize)
        if peer is not None:
            filled[f"SB3 ReplayBuffer{' optimize_memory_usage' if optimize else ''}"] = peer
    rates = sample_rates({name: f[1] for name, f in filled.items()}, args.seconds)
    mine = filled["ours"]
    for label in ("SB3 ReplayBuffer", "SB3 ReplayBuffer optimize_memory_usage"):
        peer = filled.get(label)
        rows = [
            ("add (transitions/s)", mine[0], peer and peer[0]),
            ("sample batch 32 (batches/s)", rates["ours", 32], peer and rates[label, 32]),
            ("sample batch 256 (batches/s)", rates["ours", 256], peer and rates[label, 256]),
            ("bytes per transition (lower is better)", mine[2], peer and peer[2]),
        ]
        print_table(f"Uniform replay, capacity {args.capacity:,}, {args.num_envs} envs, CPU, torch threads {threads} — peer: {label}",
                    rows, "", missing_peer="Stable-Baselines3" if peer is None else None)
    per = filled["ours PER"]
    print(f"\nPrioritizedReplayBuffer (ours, no peer): add {per[0]:,.0f} transitions/s, "
          f"sample {rates['ours PER', 32]:,.0f} batches/s at 32 and {rates['ours PER', 256]:,.0f} at 256, "
          f"{per[2]:,.0f} bytes/transition")

if __name__ == "__main__":
    main()
