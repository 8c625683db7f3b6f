"""DQN on Atari (Nature CNN on 4x84x84 uint8 frame stacks, frames stored once in the replay).

    python -m experiments.dqn_atari --env-id ALE/Breakout-v5                     # Nature DQN
    python -m experiments.dqn_atari --env-id ALE/Breakout-v5 --preset atari100k  # make run
    python -m experiments.dqn_atari --env-id ALE/Pong-v5 --double --dueling --n-step 3 --prioritized
    python -m experiments.dqn_atari --help

Same driver, flags, logs and checkpoints as ``experiments.dqn``; Atari preprocessing options
(``--repeat-action-probability 0.25``, ``--full-action-space``...) are flags too.
"""

from __future__ import annotations

from experiments.dqn import Args, main

DEFAULTS = Args(env_id="ALE/Breakout-v5", preset="nature")

if __name__ == "__main__":
    main(defaults=DEFAULTS, experiment="dqn_atari", description=__doc__)
