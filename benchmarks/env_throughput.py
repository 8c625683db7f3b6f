"""Atari env throughput: this project's fast (ALE C++) and reference (Gymnasium) paths vs SB3.

    python -m benchmarks.env_throughput [--seconds 5] [--env-id ALE/Breakout-v5]

Steps/s counts environment steps (agent steps summed over sub-envs, 4 emulator frames each)
with uniformly random actions, including the NumPy -> torch conversion at the boundary for our
envs. The peer is Stable-Baselines3's ``make_atari_env`` + ``VecFrameStack(4)``
(``pip install .[bench]``).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.table import print_table, rate
from envs import make_env


def ours(env_id: str, num_envs: int, backend: str, seconds: float) -> float:
    env = make_env(env_id, num_envs, seed=0, backend=backend)
    env.reset()
    g = torch.Generator().manual_seed(0)

    def step() -> int:
        for _ in range(50):
            env.step(torch.randint(0, env.num_actions, (num_envs,), generator=g))
        return 50 * num_envs

    try:
        return rate(step, seconds)
    finally:
        env.close()


def sb3(env_id: str, num_envs: int, seconds: float) -> float | None:
    try:
        from stable_baselines3.common.env_util import make_atari_env
        from stable_baselines3.common.vec_env import VecFrameStack
    except ImportError:
        return None
    from envs.atari import register_atari

    register_atari()
    # frameskip=1 in the ALE env: SB3's AtariWrapper does the skip (4) and max-pooling itself.
    env_kwargs = {"frameskip": 1, "repeat_action_probability": 0.0}
    env = VecFrameStack(make_atari_env(env_id, n_envs=num_envs, seed=0, env_kwargs=env_kwargs), n_stack=4)
    env.reset()
    rng = np.random.default_rng(0)
    n = env.action_space.n

    def step() -> int:
        for _ in range(50):
            env.step(rng.integers(0, n, num_envs))
        return 50 * num_envs

    try:
        return rate(step, seconds)
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="ALE/Breakout-v5")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is shown")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, fast8, ref8 = [], 0.0, 0.0
    peer_missing = False
    for n in (1, 8):
        samples: dict[str, list[float]] = {"peer": [], "fast": [], "ref": []}
        for _ in range(args.repeats):  # interleaved, so machine noise hits all three alike
            p = sb3(args.env_id, n, args.seconds)
            if p is not None:
                samples["peer"].append(p)
            samples["fast"].append(ours(args.env_id, n, "ale", args.seconds))
            samples["ref"].append(ours(args.env_id, n, "gymnasium", args.seconds))
        peer = float(np.median(samples["peer"])) if samples["peer"] else None
        peer_missing |= peer is None
        fast, ref = float(np.median(samples["fast"])), float(np.median(samples["ref"]))
        rows.append((f"{args.env_id}, {n} env{'s' if n > 1 else ''}, fast path (ALE C++ vector env) vs SB3", fast, peer))
        rows.append((f"{args.env_id}, {n} env{'s' if n > 1 else ''}, reference path (Gymnasium wrappers) vs SB3", ref, peer))
        if n == 8:
            fast8, ref8 = fast, ref
    print_table("Atari env throughput", rows, "env steps/s", missing_peer="Stable-Baselines3" if peer_missing else None)
    print(f"\nfast path / reference path at 8 envs: {fast8 / ref8:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()
