"""Published Atari 100k results, to put ours beside them (data, with their sources).

The Atari 100k benchmark (Kaiser et al. 2020): 26 games, 100k agent steps (400k frames) of
training, then an evaluation; scores are raw game scores, aggregated as human-normalised scores
(:mod:`experiments.atari_scores`).

Each algorithm's figures come from one source, named in :data:`SOURCES`, so its per-game means
and its 26-game aggregates describe the same runs:

- DrQ(eps) and SPR: the Atari 100k results released with rliable (Agarwal et al. 2021, "Deep
  Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS): the final scores of
  many runs (100 for DrQ(eps), 10 for SPR), each the mean of 100 evaluation episodes. Only the
  figures we could check against that release are stored: the aggregates and DrQ(eps)'s per-game
  means on six games.
- DER: the data-efficient Rainbow paper (van Hasselt et al. 2019, "When to use parametric models
  in reinforcement learning?", NeurIPS; its per-game table, the figures SPR, CURL and DrQ print
  beside theirs): all 26 per-game means, whose human-normalised median and mean are the paper's
  0.161 and 0.285 (tested). The rliable release holds other DER runs (26-game median / mean 0.189
  / 0.350) whose per-game means we could not check, so they are not used.

A game without a stored figure is reported as "n/a", never filled in from elsewhere.
"""

from __future__ import annotations

GAMES: tuple[str, ...] = (
    "Alien", "Amidar", "Assault", "Asterix", "BankHeist", "BattleZone", "Boxing", "Breakout", "ChopperCommand",
    "CrazyClimber", "DemonAttack", "Freeway", "Frostbite", "Gopher", "Hero", "Jamesbond", "Kangaroo", "Krull",
    "KungFuMaster", "MsPacman", "Pong", "PrivateEye", "Qbert", "RoadRunner", "Seaquest", "UpNDown",
)  # fmt: skip
"""The 26 games of Atari 100k (ALE ROM names: ``ALE/<game>-v5``)."""

ALGORITHMS: tuple[str, ...] = ("DER", "DrQ(eps)", "SPR")
"""Data-efficient Rainbow (van Hasselt et al. 2019), DrQ with standard epsilons (Kostrikov et al.
2020; Agarwal et al. 2021), SPR (Schwarzer et al. 2021)."""

SOURCES: dict[str, str] = {
    "DER": "van Hasselt et al. 2019 (per-game table, 5 runs a game)",
    "DrQ(eps)": "rliable release (Agarwal et al. 2021, 100 runs a game)",
    "SPR": "rliable release (Agarwal et al. 2021, 10 runs a game)",
}
"""Algorithm -> where its figures come from."""

AGGREGATES: dict[str, dict[str, float]] = {
    "DER": {"median": 0.161, "mean": 0.285},
    "DrQ(eps)": {"median": 0.313, "mean": 0.465},
    "SPR": {"median": 0.396, "mean": 0.616},
}
"""Human-normalised median and mean over the 26 games (from each algorithm's source)."""

PER_GAME: dict[str, dict[str, float]] = {
    "DER": {
        "Alien": 739.9, "Amidar": 188.6, "Assault": 431.2, "Asterix": 470.8, "BankHeist": 51.0, "BattleZone": 10124.6,
        "Boxing": 0.2, "Breakout": 1.9, "ChopperCommand": 861.8, "CrazyClimber": 16185.3, "DemonAttack": 508.0,
        "Freeway": 27.9, "Frostbite": 866.8, "Gopher": 349.5, "Hero": 6857.0, "Jamesbond": 301.6, "Kangaroo": 779.3,
        "Krull": 2851.5, "KungFuMaster": 14346.1, "MsPacman": 1204.1, "Pong": -19.3, "PrivateEye": 97.8,
        "Qbert": 1152.9, "RoadRunner": 9600.0, "Seaquest": 354.1, "UpNDown": 2877.4,
    },
    "DrQ(eps)": {"Pong": -8.5, "Breakout": 16.1, "Boxing": 6.0, "Freeway": 9.8, "MsPacman": 960.5, "Seaquest": 301.2},
}  # fmt: skip
"""Algorithm -> game -> mean final score over its runs (from the algorithm's source)."""

PRESET_OF: dict[str, str] = {"drq_eps": "DrQ(eps)", "der": "DER"}
"""Our preset -> the published algorithm it reproduces."""


def published(algorithm: str, game: str) -> float | None:
    """The published mean score of ``algorithm`` on ``game``, or ``None`` when none is stored."""
    return PER_GAME.get(algorithm, {}).get(game)
