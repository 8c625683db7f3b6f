"""Ctrl-C and SIGTERM during a real training process: the current step finishes, a checkpoint is
written, the event files are closed, one line says how to resume, and the exit status is
130 / 143; the run then resumes from that checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from foundations.interrupts import Interrupted, StopRequests
from foundations.runlog import load_checkpoint
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _start(runs: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "experiments.dqn", "--env-id", "CartPole-v1", "--runs-dir", str(runs),
           "--no-progress", "--device", "cpu", "--total-steps", "10000000", "--learning-starts", "100",
           "--train-frequency", "4", "--gradient-steps", "1", "--eval-interval", "0", "--log-interval", "100", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_events(runs: Path, proc: subprocess.Popen, at_least: int = 1) -> Path:
    """The run directory, once the process has logged past its start (SPS events exist)."""

    def logging_run() -> Path | None:
        dirs = [d for d in runs.iterdir() if d.is_dir()] if runs.exists() else []
        events = [f for d in dirs for f in d.glob("events.out.tfevents.*")]
        return dirs[0] if len(events) >= at_least and all(f.stat().st_size > 2_000 for f in events) else None

    return wait_until(logging_run, f"run logging under {runs}", proc)


def _interrupt(cmd: list[str], runs: Path, sig: int, ready: str | None = None) -> tuple[Path, int, list[str]]:
    """Start ``cmd``, send ``sig`` once it logs (and ``ready`` exists in its run directory);
    returns (run directory, exit status, non-empty stderr lines)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = _wait_for_events(runs, proc)
    if ready is not None:
        wait_until(lambda: (run_dir / ready).is_file(), f"{ready} in {run_dir}", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return run_dir, proc.returncode, [line for line in err.splitlines() if line.strip()]


def _steps(run_dir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


@pytest.mark.slow
@pytest.mark.parametrize("sig,status,name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_checkpoints_closes_the_logs_and_tells_how_to_resume(tmp_path, sig, status, name):
    runs = tmp_path / "runs"
    proc = _start(runs)
    run_dir = _wait_for_events(runs, proc)
    # until the first SPS point (step 100) is in the event file
    wait_until(lambda: _steps(run_dir, "charts/SPS"), "a logged SPS point", proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    checkpoint = run_dir / "checkpoint.pt"
    assert lines[0].startswith(f"interrupted ({name}) at step ")
    assert f"python -m experiments.dqn --resume {checkpoint}" in lines[0]
    state = load_checkpoint(checkpoint)
    step = int(state["loop"]["step"])
    assert step >= 100 and f"at step {step:,}:" in lines[0]  # logging had begun (every 100 steps)
    assert (run_dir / state["replay_file"]).is_file()
    assert max(_steps(run_dir, "charts/SPS")) <= step  # the events were flushed and closed

    resumed = _start(runs, "--resume", str(checkpoint))  # and it goes on from there
    wait_until(lambda: max(_steps(run_dir, "charts/SPS") or [0]) > step, f"a logged step after {step}", resumed,
               poll_s=0.2)
    resumed.send_signal(signal.SIGTERM)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 143, err
    assert int(load_checkpoint(checkpoint)["loop"]["step"]) > step


@pytest.mark.slow
def test_a_memory_task_run_checkpoints_on_sigint(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "experiments.memory_task", "--model", "lstm", "--task", "copy", "--runs-dir",
           str(runs), "--no-progress", "--num-sequences", "100000000", "--threads", "1"]
    run_dir, status, lines = _interrupt(cmd, runs, signal.SIGINT)
    assert status == 130 and len(lines) == 1 and lines[0].startswith("interrupted (SIGINT) at "), lines
    assert f"python -m experiments.memory_task --resume {run_dir / 'checkpoint.pt'}" in lines[0]
    assert load_checkpoint(run_dir / "checkpoint.pt")["sequences"] > 0


@pytest.mark.slow
def test_a_supervised_run_stops_on_sigterm_keeping_its_best_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "experiments.mnist", "--dataset", "glyphs", "--train-subset", "2000", "--val-size",
           "200", "--model", "mlp", "--epochs", "100000", "--root", str(runs), "--no-progress"]
    run_dir, status, lines = _interrupt(cmd, runs, signal.SIGTERM, ready="best.pt")  # after the first epoch
    assert status == 143 and len(lines) == 1 and lines[0].startswith("interrupted (SIGTERM) at step "), lines
    assert "best checkpoint (epoch " in lines[0] and str(run_dir / "best.pt") in lines[0]
    assert load_checkpoint(run_dir / "best.pt")["epoch"] >= 0


@pytest.mark.slow
def test_an_experiment_without_checkpoints_stops_on_sigterm_with_one_line_and_complete_logs(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "experiments.vae", "--dataset", "glyphs", "--train-subset", "2000", "--epochs",
           "100000", "--root", str(runs), "--no-progress"]
    run_dir, status, lines = _interrupt(cmd, runs, signal.SIGTERM)
    assert status == 143 and lines == ["interrupted (SIGTERM): stopped at once; what the run wrote so far (logs, "
                                       "complete checkpoints) is kept"], lines
    assert _steps(run_dir, "train/loss")  # the event file was flushed and closed


def test_stop_requests_record_the_first_signal_and_raise_on_the_second(monkeypatch):
    from foundations import interrupts

    previous = signal.getsignal(signal.SIGINT)
    with StopRequests() as stop:
        assert not stop.requested and stop.exit_status == 0
        signal.raise_signal(signal.SIGINT)
        assert stop.requested and stop.signal == signal.SIGINT and stop.exit_status == 130
        signal.raise_signal(signal.SIGTERM)  # at once: the same request delivered again
        assert stop.signal == signal.SIGINT
        monkeypatch.setattr(interrupts, "REPEAT_WINDOW", 0.0)
        with pytest.raises(Interrupted, match="SIGTERM") as e:
            signal.raise_signal(signal.SIGTERM)
        assert e.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGINT) is previous
