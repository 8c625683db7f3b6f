"""experiments.babi_report: per-task test errors of finished bAbI runs grouped by model, with
intervals, the difference of two groups, and one-line refusals of runs that cannot be compared."""

import csv
import json

import numpy as np
import pytest

from experiments import babi_report, rl_stats


def _run(root, model, seed, errors, tasks="['1', '2']", stories=80000):
    folder = root / f"babi-qa1-qa2__babi-{model}__{seed}__{1000 + seed}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"commit": "0" * 40, "config": {
        "model": model, "seed": seed, "tasks": tasks, "num_stories": stories, "controller_layer_norm": model == "dnc"}}))
    with open(folder / "test_errors.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["task", "name", "test_error"])
        for task, error in errors.items():
            out.writerow([task, "x", f"{error:.4f}"])
        out.writerow(["mean", "", f"{np.mean(list(errors.values())):.4f}"])
        out.writerow(["failed (> 5%)", "", sum(e > 0.05 for e in errors.values())])
    return folder


DNC = {1: {1: 0.0, 2: 0.30}, 2: {1: 0.02, 2: 0.50}, 3: {1: 0.40, 2: 0.40}}
LSTM = {1: {1: 0.48, 2: 0.56}, 2: {1: 0.50, 2: 0.60}, 3: {1: 0.46, 2: 0.58}}


@pytest.fixture
def runs(tmp_path):
    for seed, errors in DNC.items():
        _run(tmp_path / "dnc", "dnc", seed, errors)
    for seed, errors in LSTM.items():
        _run(tmp_path / "lstm", "lstm", seed, errors)
    (tmp_path / "lstm" / "unfinished").mkdir()  # no test_errors.csv: not a finished run
    (tmp_path / "lstm" / "unfinished" / "config.json").write_text("{}")
    return tmp_path


def test_groups_tasks_means_intervals_and_failed_counts(runs):
    summary = babi_report.summarise(babi_report.find_runs([str(runs)]), ["model"])
    assert list(summary) == ["dnc", "lstm"] and summary["dnc"]["seeds"] == [1, 2, 3]
    mean, low, high, values = summary["dnc"]["tasks"][1]
    assert values == [0.0, 0.02, 0.40] and mean == pytest.approx(0.14) and 0.0 <= low <= mean <= high <= 0.40 + 1e-12
    lo, hi = rl_stats.bootstrap_mean_ci(np.array([0.0, 0.02, 0.40]))
    assert (low, high) == pytest.approx((lo, hi))
    assert summary["dnc"]["mean"][3] == pytest.approx([0.15, 0.26, 0.40])  # per seed, over the tasks
    assert summary["dnc"]["failed"] == [1, 1, 2] and summary["lstm"]["failed"] == [2, 2, 2]


def test_the_report_files_and_the_difference(runs, tmp_path):
    markdown = babi_report.main([str(runs / "dnc"), str(runs / "lstm"), "--difference", "dnc", "lstm",
                                 "--out", str(tmp_path / "report")])
    text = markdown.read_text()
    assert "| dnc | 3 | 0.140 [" in text and "(0.000 / 0.020 / 0.400)" in text
    expected = np.mean([0.15, 0.26, 0.40]) - np.mean([0.52, 0.55, 0.52])
    assert f"Mean error, dnc minus lstm: {expected:+.3f} [" in text
    rows = list(csv.reader(open(tmp_path / "report" / "errors.csv")))
    assert rows[0] == ["group", "seeds", "task", "mean_error", "low", "high", "per_seed"] and len(rows) == 1 + 2 * 3
    assert (tmp_path / "report" / "errors.png").stat().st_size > 1000


@pytest.mark.parametrize("extra, message", [
    ({"tasks": "['1']"}, "the runs differ in tasks"),
    ({"stories": 40000}, "the runs differ in num_stories (40000, 80000)"),
])
def test_runs_of_another_task_set_or_budget_are_refused(runs, tmp_path, capsys, extra, message):
    _run(runs / "other", "ntm", 1, {1: 0.3, 2: 0.4}, **extra)
    with pytest.raises(SystemExit) as e:
        babi_report.main([str(runs), "--out", str(tmp_path / "report")])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("argv, message", [
    (["{missing}"], "is not a folder"),
    (["{empty}"], "no finished bAbI run"),
    (["{runs}", "--group-by", "colour"], "--group-by colour is not a key"),
    (["{runs}", "--difference", "dnc", "gru"], "--difference gru is not a group (groups: dnc, lstm)"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [a.format(missing=tmp_path / "nope", empty=tmp_path / "empty", runs=runs) for a in argv]
    with pytest.raises(SystemExit) as e:
        babi_report.main([*argv, "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and message in err and len(err.splitlines()) == 1


def test_one_seed_gets_no_interval_and_no_difference_interval(runs, tmp_path):
    _run(runs / "ntm", "ntm", 1, {1: 0.3, 2: 0.4})
    text = babi_report.main([str(runs), "--difference", "ntm", "lstm", "--out", str(tmp_path / "report")]).read_text()
    assert "| ntm | 1 | 0.300 (0.300) | 0.400 (0.400) | 0.350 (0.350) | 2 |" in text
    assert "Mean error, ntm minus lstm: -0.180 (no interval: a group has one seed)." in text


def test_the_same_seed_twice_in_a_group_is_refused(runs, tmp_path, capsys):
    _run(runs / "again", "dnc", 2, {1: 0.0, 2: 0.1})
    with pytest.raises(SystemExit) as e:
        babi_report.main([str(runs), "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "two runs of dnc with seed 2" in err and len(err.splitlines()) == 1
