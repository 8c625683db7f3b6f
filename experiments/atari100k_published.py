"""Published Atari 100k results, to put ours beside them (data, with their sources).

The Atari 100k benchmark (Kaiser et al. 2020): 26 games, 100k agent steps (400k frames) of
training, then an evaluation; scores are raw game scores, aggregated as human-normalised scores
(:mod:`experiments.atari_scores`).

Source of every number here: the Atari 100k results released with rliable (Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS): per algorithm,
the final scores of many runs (100 for DER and DrQ(eps), 10 for SPR), each the mean of 100
evaluation episodes. Only the figures we could check against that release are stored: the
aggregates of the three algorithms and DrQ(eps)'s per-game means on six games. A game without a
stored figure is reported as "n/a", never filled in from elsewhere.
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

AGGREGATES: dict[str, dict[str, float]] = {
    "DER": {"median": 0.189, "mean": 0.350},
    "DrQ(eps)": {"median": 0.313, "mean": 0.465},
    "SPR": {"median": 0.396, "mean": 0.616},
}
"""Human-normalised median and mean over the 26 games (rliable release)."""

PER_GAME: dict[str, dict[str, float]] = {
    "DrQ(eps)": {"Pong": -8.5, "Breakout": 16.1, "Boxing": 6.0, "Freeway": 9.8, "MsPacman": 960.5, "Seaquest": 301.2},
}
"""Algorithm -> game -> mean final score over its runs (rliable release)."""

PRESET_OF: dict[str, str] = {"drq_eps": "DrQ(eps)", "der": "DER"}
"""Our preset -> the published algorithm it reproduces."""


def published(algorithm: str, game: str) -> float | None:
    """The published mean score of ``algorithm`` on ``game``, or ``None`` when none is stored."""
    return PER_GAME.get(algorithm, {}).get(game)
