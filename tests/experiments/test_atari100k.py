"""The Atari 100k runner: its sweep, its bad-input errors and its report (on a short real run)."""

import csv
import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from experiments import atari100k, dqn_atari, driver
from experiments.atari100k_published import AGGREGATES, GAMES, PER_GAME, PRESET_OF, SOURCES
from experiments.atari_scores import SCORES, human_normalized


def test_the_26_games_have_reference_scores_and_the_published_data_is_consistent():
    assert len(GAMES) == 26 and all(g in SCORES for g in GAMES)
    assert atari100k.games(["all26"]) == list(GAMES)
    assert set(PRESET_OF.values()) <= set(AGGREGATES) and set(AGGREGATES) == set(SOURCES)
    assert PER_GAME["DrQ(eps)"]["Pong"] == -8.5 and set(PER_GAME["DrQ(eps)"]) <= set(GAMES)


def test_the_der_paper_per_game_means_give_its_26_game_aggregates():
    """The 26 per-game means stored for DER reproduce the median and mean human-normalised scores
    that van Hasselt et al. 2019 print (0.161 / 0.285): the figures are that paper's, all of them."""
    scores = PER_GAME["DER"]
    assert set(scores) == set(GAMES)
    normalised = np.array([human_normalized(f"ALE/{g}-v5", scores[g]) for g in GAMES])
    assert round(float(np.median(normalised)), 3) == AGGREGATES["DER"]["median"] == 0.161
    assert round(float(normalised.mean()), 3) == AGGREGATES["DER"]["mean"] == 0.285


def test_the_published_means_over_the_games_played():
    """DrQ(eps)'s mean human-normalised score on Pong, Breakout and Boxing is the 0.446 the issue
    and README quote; an algorithm without a mean on every game played is left out."""
    three = atari100k.published_aggregates(["Pong", "Breakout", "Boxing"])
    assert round(three["DrQ(eps)"], 3) == 0.446 and round(three["DER"], 3) == 0.018 and "SPR" not in three
    assert set(atari100k.published_aggregates(["Alien"])) == {"DER"}


def test_the_sweep_runs_the_preset_with_the_protocol():
    args = atari100k.Atari100kArgs(preset="der", games=("Pong", "MsPacman"), seeds=(1, 2), runs_dir="r")
    s = atari100k.sweep_args(args, "cpu")
    assert s.experiment == "dqn_atari" and s.env_ids == ("ALE/Pong-v5", "ALE/MsPacman-v5") and s.seeds == (1, 2)
    assert s.configs == ("preset=der eval-episodes=100 device=cpu",)  # the preset carries the protocol
    assert s.storage == "r/der"
    flags = ["--env-id", "ALE/Pong-v5", *atari100k.sweep.config_flags(s.configs[0])]
    parsed = driver.parse_args(flags, dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, "")
    assert parsed.agent.num_atoms == 51 and parsed.atari.noop_max == 0 and not parsed.atari.fire_reset
    assert parsed.atari.repeat_action_probability == 0.0 and not parsed.atari.full_action_space
    assert parsed.atari.terminal_on_life_loss and parsed.atari.max_episode_frames == 108_000
    assert parsed.loop.eval_episodes == 100 and parsed.loop.eval_interval == 0


def test_make_run_is_one_run_of_the_table(tmp_path):
    """`make run`'s command and the runner's run of Breakout seed 1 parse to the same options
    (config.json holds these) apart from where the run goes, its device and threads."""
    import re
    from pathlib import Path

    make = Path(__file__).resolve().parents[2] / "Makefile"
    line = next(x for x in make.read_text().splitlines() if "experiments.dqn_atari" in x and "$(BIN)" in x)
    flags = re.sub(r"\$\(RUN_ARGS\)", "", line.split("experiments.dqn_atari", 1)[1]).split()
    made = driver.parse_args(flags, dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, "")
    table = atari100k.sweep_args(atari100k.Atari100kArgs(games=("Breakout",), seeds=(1,)), "cpu")
    run = atari100k.sweep.plan(table)[0]
    argv = ["--env-id", run["env_id"], "--seed", "1", *atari100k.sweep.config_flags(run["config"])]
    ran = driver.parse_args(argv, dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, "")
    differ = {k for k in ("runs_dir", "device", "threads", "progress")}
    strip = lambda a: dataclasses.replace(a, **{k: getattr(dqn_atari.DEFAULTS, k) for k in differ})  # noqa: E731
    assert strip(made) == strip(ran)
    assert made.preset == "drq_eps" and made.env_id == "ALE/Breakout-v5" and made.seed == 1
    assert made.atari.noop_max == 0 and not made.atari.fire_reset and made.loop.eval_episodes == 100
    assert made.loop.eval_interval == 0 and made.agent.intensity_scale == 0.05
    # a flag still overrides what the preset brings
    mine = driver.parse_args([*flags, "--noop-max", "30"], dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, "")
    assert mine.atari.noop_max == 30


@pytest.mark.parametrize("argv,message", [
    (["--games", "Pongg"], "unknown game 'Pongg' in --games (did you mean Pong?); allowed: all26 or any of Alien"),
    (["--games", "all26", "Pong"], "--games all26 stands alone"),
    (["--games", "Pong", "--eval-episodes", "0"], "--eval-episodes must be >= 1, got 0"),
    (["--games", "Pong", "--gpus-per-run", "0.5", "--device", "cpu"], "--gpus-per-run 0.5 asks for GPUs"),
])
def test_bad_input_is_one_line_before_anything_starts(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        atari100k.main([*argv, "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and message in err[0], err
    assert not any(tmp_path.iterdir())  # nothing started


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        atari100k.main(["--games", "Pong", "--device", "cuda", "--runs-dir", str(tmp_path)])
    assert e.value.code == 2 and "CUDA is not available" in capsys.readouterr().err


def test_the_report_of_finished_runs_sits_beside_the_published_scores(tmp_path):
    """A short real drq_eps run on Pong (200 steps, one evaluation game) in the runner's layout."""
    root = tmp_path / "drq_eps" / "cfg0"
    argv = ["--env-id", "ALE/Pong-v5", "--runs-dir", str(root), "--no-progress", "--device", "cpu", "--preset",
            "drq_eps", "--total-steps", "200", "--learning-starts", "100", "--buffer-size", "500", "--eval-interval",
            "0", "--eval-episodes", "1", "--log-interval", "100", "--max-episode-frames", "400", "--noop-max", "0",
            "--no-fire-reset", "--no-save-replay", "--threads", "1"]  # fmt: skip
    driver.train(driver.parse_args(argv, dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, ""), dqn_atari.ALGORITHM)
    args = atari100k.Atari100kArgs(games=("Pong", "Boxing"), runs_dir=str(tmp_path), eval_episodes=1, report_only=True)
    r = atari100k.run(args)
    out = tmp_path / "drq_eps" / "report"
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 1 and rows[0]["game"] == "Pong" and rows[0]["seed"] == "1" and rows[0]["steps"] == "200"
    score = float(rows[0]["score"])
    assert -21 <= score <= 21
    assert float(rows[0]["human_normalised"]) == pytest.approx((score + 20.7) / (14.6 + 20.7), abs=1e-6)
    assert len(rows[0]["commit"]) >= 7 and json.loads(rows[0]["config"])["agent.augmentation"] == "shift"
    table = (out / "published.md").read_text()
    pong = next(line for line in table.splitlines() if line.startswith("| Pong |"))
    gap = (score + 20.7) / 35.3 - (-8.5 + 20.7) / 35.3
    assert "| -19.3 | -8.5 | n/a |" in pong and pong.endswith(f"| {gap:,.3f} |")  # DER, DrQ(eps); SPR: not stored
    assert "Boxing" not in table.split("\n\n")[0]  # not run: no row
    # the mean human-normalised score over the games played, ours with its interval, beside the published
    ours = next(line for line in table.splitlines() if line.startswith("| ours (drq_eps, seeds 1) |"))
    assert ours.count("(one seed: no interval)") == 2 and "[" not in ours  # one seed: no interval to claim
    assert "| DrQ(eps) published | 0.346 |" in table and "| DER published | 0.040 |" in table
    assert "DrQ(eps)'s published 0.346 on these games, from one seed of a game: no interval" in table
    assert (out / "aggregates.md").is_file() and (out / "curves").is_dir()
    # one evaluation per run draws no curve; the training returns do
    assert not list(out.glob("curves-*.png")) and (out / "curves" / "curves-ALE-Pong-v5.png").is_file()
    assert r["rows"][0]["score"] == pytest.approx(score)
    # a second seed: intervals, and the verdict against the published mean
    argv[argv.index("--runs-dir") + 1] = str(tmp_path / "drq_eps" / "cfg1")
    driver.train(driver.parse_args([*argv, "--seed", "2"], dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, ""), dqn_atari.ALGORITHM)
    atari100k.run(dataclasses.replace(args, seeds=(1, 2)))
    table = (out / "published.md").read_text()
    ours = next(line for line in table.splitlines() if line.startswith("| ours (drq_eps, seeds 1, 2) |"))
    assert ours.count("[") == 2 and "one seed" not in table.split("\n\n")[0]  # mean and IQM, each with its interval
    assert re.search(r"Ours is (above|below|not distinguishable from) DrQ\(eps\)'s published 0.346 on these games: "
                     r"the mean's interval \[[-0-9.]+, [-0-9.]+\] (includes|excludes) it", table)
    # a game with seed 1 only beside Pong's seeds 1 and 2: the aggregates (and their label) use seed 1
    argv[argv.index("--runs-dir") + 1] = str(tmp_path / "drq_eps" / "cfg2")
    argv[argv.index("--env-id") + 1] = "ALE/Boxing-v5"
    driver.train(driver.parse_args(argv, dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, ""), dqn_atari.ALGORITHM)
    atari100k.run(dataclasses.replace(args, seeds=(1, 2)))
    table = (out / "published.md").read_text()
    assert "| Pong | 2 |" in table and "| Boxing | 1 |" in table
    assert "| ours (drq_eps, seeds 1) | " in table and "seeds 1, 2)" not in table
    with pytest.raises(ValueError, match="no finished run of drq_eps on Breakout"):
        atari100k.write_report(atari100k.Atari100kArgs(games=("Breakout",), runs_dir=str(tmp_path)))
