"""benchmarks.length_figure: IQMs over seeds per length from a results file, the picture and
table, and one-line refusals."""

import csv

import pytest

from benchmarks import length_figure
from benchmarks.learning import SCORE_FIELDS


def _write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, SCORE_FIELDS, restval="")
        writer.writeheader()
        for task, env, metric, seed, score in rows:
            writer.writerow({"suite": "memory", "task": task, "env": env, "metric": metric, "seed": seed,
                             "score": score, "score_kind": "final", "direction": "lower"})


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "memory.csv"
    rows = []
    for seed, (a20, a40) in enumerate([(0.0, 1.0), (0.0, 3.0), (3.0, 8.0), (1.0, 100.0)], start=1):
        rows += [("ntm-copy", "copy", "eval/bit_error/len_20", seed, a20), ("ntm-copy", "copy", "eval/bit_error/len_40", seed, a40)]
    rows += [("lstm-copy", "copy", "eval/bit_error/len_20", s, 50.0 + s) for s in (1, 2)]
    rows += [("ppo-none-cartpole-po", "CartPole", "eval/episodic_return", 1, 20.0),
             ("other-copy", "repeat_copy", "eval/bit_error/len_20", 1, 5.0)]
    _write(path, rows)
    return path


def test_points_are_the_iqm_over_seeds_of_each_length_of_the_env(results):
    points = length_figure.read_points(results, "copy", "eval/bit_error/len_")
    assert set(points) == {("ntm-copy", 20), ("ntm-copy", 40), ("lstm-copy", 20)}  # other envs and tags left out
    # IQM of 4 seeds: the mean of the middle two
    assert points["ntm-copy", 20][0] == pytest.approx(0.5) and points["ntm-copy", 40][0] == pytest.approx(5.5)
    assert points["lstm-copy", 20][0] == pytest.approx(51.5) and points["lstm-copy", 20][3] == 2
    iqm, low, high, seeds = points["ntm-copy", 40]
    assert low <= iqm <= high and seeds == 4 and low >= 1.0 and high <= 100.0
    # a fixed function of the file
    assert length_figure.read_points(results, "copy", "eval/bit_error/len_") == points


def test_table_and_picture(results, tmp_path):
    out = length_figure.main([str(results), "--chance", "4", "--out", str(tmp_path / "fig" / "copy.png")])
    assert out.is_file() and out.stat().st_size > 1000
    table = out.with_suffix(".md").read_text().splitlines()
    assert table[0] == "| model | seeds | length 20 | length 40 |"
    assert table[2].startswith("| lstm | 2 | 51.5 [") and table[2].endswith("|  |")  # no length-40 point
    assert table[3].startswith("| ntm | 4 | 0.5 [")


@pytest.mark.parametrize("argv, message", [
    (["missing.csv"], "does not exist"),
    (["{results}", "--env", "nope"], "no metric eval/bit_error/len_<length> of a task on env 'nope'"),
    (["{bad}"], "is not a learning-suite results file (it has no column 'metric')"),
    (["{twice}"], "holds ntm-copy eval/bit_error/len_20 seed 1 twice"),
])
def test_bad_input_is_one_line_and_exit_2(results, tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    twice = tmp_path / "twice.csv"
    twice.write_text(results.read_text() + results.read_text().splitlines(keepends=True)[1])
    argv = [a.format(results=results, bad=bad, twice=twice) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        length_figure.main([*argv, "--out", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


