"""Environment steps per second of recurrent PPO training on position-only CartPole: this
project's PPO with a memory core vs SB3-contrib's RecurrentPPO (LSTM).

    python -m benchmarks.recurrent_ppo [--rollouts 10] [--rounds 3] [--threads 1] [--cores lstm gru ntm dnc transformer]
    python -m benchmarks.recurrent_ppo --cores ntm ntm+compile dnc dnc+compile --rounds 1 --rollouts 5

Both sides: 8 envs x 128 steps per rollout, 4 epochs of 4 minibatches, Adam 2.5e-4, clip 0.2,
GAE 0.95, one LSTM of 64 units shared by policy and value. Ours feeds the LSTM through a
64-unit tanh layer (its encoder) and puts the heads on the LSTM's output; SB3-contrib's
``MlpLstmPolicy`` is given ``shared_lstm=True, enable_critic_lstm=False, net_arch=[]`` so its
LSTM reads the observation and its heads read the LSTM. Ours learns on minibatches of whole env
sequences (2 envs x 128 steps), SB3-contrib on its padded sequence minibatches. Timing starts
after the first rollout and its update and covers collection and updates; rates are medians of
interleaved rounds. The other cores (NTM, DNC, transformer; 64 units, 16 memory slots of 16,
a 16-step window) are ours only; ``<core>+compile`` runs the agent with ``compile=True`` (the
NTM's / DNC's step through ``torch.compile``, compiled during the untimed first rollout and
update: about a minute per core on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from agents.cores import CoreSpec
from agents.loop import LoopConfig, run_training
from agents.ppo import PPO, PPOConfig
from benchmarks.clocks import AfterFirstUpdate, sb3_steps_per_second
from benchmarks.table import print_table
from envs import make_env
from envs.pomdp import register_pomdp
from foundations.runlog import RunLogger
from foundations.seeding import seed_everything

ENV_ID, NUM_ENVS, NUM_STEPS, SIZE = "CartPolePositionOnly-v1", 8, 128, 64


def ours(core: str, rollouts: int) -> float:
    seed_everything(0)
    core, _, compiled = core.partition("+")
    total = NUM_ENVS * NUM_STEPS * (rollouts + 1)
    config = PPOConfig(total_steps=total, num_envs=NUM_ENVS, num_steps=NUM_STEPS, learning_rate=2.5e-4,
                       update_epochs=4, num_minibatches=4, clip_coef=0.2, ent_coef=0.01, hidden_sizes=(SIZE,),
                       core=CoreSpec(core, size=SIZE), compile=compiled == "compile")  # fmt: skip
    env = make_env(ENV_ID, NUM_ENVS, seed=0)
    clock = AfterFirstUpdate(PPO(config, env.obs_shape, env.obs_dtype, env.single_action_space, seed=0))
    with tempfile.TemporaryDirectory() as root:
        logger = RunLogger(ENV_ID, "bench", 0, root=root, progress=False)
        run_training(clock, env, logger, total, LoopConfig(eval_interval=0, checkpoint_interval=0, log_interval=total))
        end = time.perf_counter()
        logger.close()
    env.close()
    return NUM_ENVS * NUM_STEPS * rollouts / (end - clock.start)


def sb3_contrib(rollouts: int) -> float | None:
    try:
        from sb3_contrib import RecurrentPPO
        from stable_baselines3.common.env_util import make_vec_env
    except ImportError:
        return None
    register_pomdp()
    env = make_vec_env(ENV_ID, n_envs=NUM_ENVS, seed=0)
    model = RecurrentPPO("MlpLstmPolicy", env, learning_rate=2.5e-4, n_steps=NUM_STEPS,
                         batch_size=NUM_ENVS * NUM_STEPS // 4, n_epochs=4, clip_range=0.2, ent_coef=0.01,
                         policy_kwargs={"lstm_hidden_size": SIZE, "n_lstm_layers": 1, "shared_lstm": True,
                                        "enable_critic_lstm": False, "net_arch": []},
                         device="cpu", seed=0, verbose=0)  # fmt: skip
    return sb3_steps_per_second(model, env, NUM_ENVS * NUM_STEPS, rollouts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both")
    parser.add_argument("--cores", nargs="*", default=["lstm", "gru", "ntm", "ntm+compile", "dnc", "dnc+compile",
                                                       "transformer"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rates: dict[str, list[float]] = {core: [] for core in args.cores}
    peer: list[float] = []
    for _ in range(args.rounds):
        for core in args.cores:
            rates[core].append(ours(core, args.rollouts))
        p = sb3_contrib(args.rollouts)
        if p is not None:
            peer.append(p)
    peer_rate = statistics.median(peer) if peer else None
    rows = [(f"PPO + {core.replace('+compile', '')} core" + (" (compile=True)" if core.endswith("+compile") else "")
             + (" (peer: RecurrentPPO, LSTM)" if core == "lstm" else ""),
             statistics.median(r), peer_rate if core == "lstm" else None) for core, r in rates.items()]
    print_table(f"Recurrent PPO training on {ENV_ID} (env steps/s), {NUM_ENVS} envs x {NUM_STEPS} steps, 4 epochs x "
                f"4 minibatches, CPU, {args.threads} thread(s) — peer: SB3-contrib RecurrentPPO", rows, "",
                missing_peer=None if peer else "sb3-contrib")


if __name__ == "__main__":
    main()
