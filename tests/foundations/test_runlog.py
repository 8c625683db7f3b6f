import dataclasses
import json
import re

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from foundations import runlog
from foundations.runlog import RunLogger, Tags, load_checkpoint, run_name, save_checkpoint


@dataclasses.dataclass(frozen=True)
class _Opt:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclasses.dataclass(frozen=True)
class _Cfg:
    env_id: str = "ALE/Breakout-v5"
    buffer_size: int = 1000
    double: bool = True
    eps: float | None = None
    optim: _Opt = dataclasses.field(default_factory=_Opt)


def _read(run_dir):
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_run_directory_name():
    assert run_name("ALE/Breakout-v5", "dqn_atari", 3, unix_time=1700000000) == (
        "ALE-Breakout-v5__dqn_atari__3__1700000000"
    )


def test_scalars_read_back_under_documented_tags(tmp_path):
    with RunLogger("CartPole-v1", "dqn", 1, config=_Cfg(), root=tmp_path, progress=False) as log:
        log.log_episodes(100, torch.tensor([10.0, 20.0]), torch.tensor([10, 20]))
        log.log_scalars({Tags.TD_LOSS: torch.tensor(0.5), Tags.Q_VALUES: 1.25}, step=200)
        log.log_sps(300)
        run_dir = log.run_dir
    assert re.fullmatch(r"CartPole-v1__dqn__1__\d+", run_dir.name)
    acc = _read(run_dir)
    tags = set(acc.Tags()["scalars"])
    assert {Tags.EPISODIC_RETURN, Tags.EPISODIC_LENGTH, Tags.TD_LOSS, Tags.Q_VALUES, Tags.SPS} <= tags
    returns = [(e.step, e.value) for e in acc.Scalars(Tags.EPISODIC_RETURN)]
    assert returns == [(100, 10.0), (100, 20.0)]
    assert [(e.step, e.value) for e in acc.Scalars(Tags.TD_LOSS)] == [(200, 0.5)]
    assert acc.Scalars(Tags.Q_VALUES)[0].value == pytest.approx(1.25)


def test_hyperparameters_table_hparams_and_config_json(tmp_path):
    log = RunLogger("CartPole-v1", "dqn", 1, config=_Cfg(), root=tmp_path, progress=False)
    log.close()
    cfg = json.loads((log.run_dir / "config.json").read_text())
    assert cfg["env_id"] == "CartPole-v1" and cfg["seed"] == 1
    assert cfg["config"]["optim.lr"] == 1e-3
    assert cfg["config"]["optim.betas"] == "[0.9, 0.999]"
    acc = _read(log.run_dir)
    text_tags = acc.Tags()["tensors"]
    assert "hyperparameters/text_summary" in text_tags
    table = acc.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "|buffer_size|1000|" in table and "|optim.lr|0.001|" in table
    # add_hparams went into this run's own event file (no sub-run directory).
    plugins = acc.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in plugins and "_hparams_/session_start_info" in plugins
    assert [p for p in log.run_dir.iterdir() if p.is_dir()] == []


def test_bad_tag_is_rejected(tmp_path):
    with RunLogger("x", "y", 0, root=tmp_path, progress=False) as log:
        with pytest.raises(ValueError, match="section/name"):
            log.log_scalar("episodic_return", 1.0, 0)


def test_two_runs_in_the_same_second_get_distinct_directories(tmp_path, monkeypatch):
    monkeypatch.setattr(runlog.time, "time", lambda: 1700000000.0)
    a = RunLogger("x", "y", 0, root=tmp_path, progress=False)
    b = RunLogger("x", "y", 0, root=tmp_path, progress=False)
    a.close()
    b.close()
    assert a.run_dir != b.run_dir


def test_resume_keeps_the_resume_steps_events_and_purges_later_ones(tmp_path):
    log = RunLogger("x", "y", 0, root=tmp_path, progress=False)
    for step in (10, 20, 30):
        log.log_scalar(Tags.TD_LOSS, step, step)
    log.close()
    resumed = RunLogger("x", "y", 0, root=tmp_path, progress=False, run_dir=log.run_dir, start_step=20)
    resumed.log_scalar(Tags.TD_LOSS, 99.0, 25)
    resumed.close()
    points = [(e.step, e.value) for e in _read(log.run_dir).Scalars(Tags.TD_LOSS)]
    assert points == [(10, 10.0), (20, 20.0), (25, 99.0)]


def test_progress_bar_shows_sps_return_and_loss(tmp_path, capsys):
    log = RunLogger("x", "y", 0, root=tmp_path, total_steps=100, progress=True)
    log.log_scalar(Tags.EPISODIC_RETURN, 12.5, 10)
    log.log_scalar(Tags.TD_LOSS, 0.25, 10)
    log.progress(50)
    postfix = log._bar.postfix
    log.close()
    assert "SPS=" in postfix and "return=12.5" in postfix and "loss=0.25" in postfix


def test_checkpoint_round_trip_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "step": 7, "name": "dqn"}
    path = save_checkpoint(tmp_path / "ckpt" / "checkpoint.pt", state)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7 and loaded["name"] == "dqn"
    torch.testing.assert_close(loaded["model"]["w"], torch.arange(4.0))


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b"partial bytes of a checkpoint")
        raise KeyboardInterrupt  # the user hits Ctrl-C mid-write

    monkeypatch.setattr(runlog.torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.setattr(runlog.torch, "save", real_save)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 1
    torch.testing.assert_close(loaded["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temp file left


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(ValueError, match="cannot load checkpoint"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_events_written_by_torchs_summary_writer_read_back(tmp_path):
    """The run logger writes through torch's SummaryWriter, unmodified: TensorBoard's
    EventAccumulator reads every episode, images and the hyperparameter plugin data back."""
    from torch.utils.tensorboard import SummaryWriter

    with RunLogger("CartPole-v1", "ppo", 1, config=_Cfg(), root=tmp_path, progress=False) as log:
        assert type(log.writer) is SummaryWriter
        for step in range(50):
            log.log_episodes(step, torch.tensor([float(step)]), torch.tensor([step]))
        log.writer.add_image("memory/io", torch.rand(5, 7), 3, dataformats="HW")
        run_dir = log.run_dir
    acc = _read(run_dir)
    assert [e.value for e in acc.Scalars(Tags.EPISODIC_RETURN)] == [float(s) for s in range(50)]
    assert [e.step for e in acc.Scalars(Tags.EPISODIC_LENGTH)] == list(range(50))
    assert (acc.Images("memory/io")[0].width, acc.Images("memory/io")[0].height) == (7, 5)


def test_one_process_owns_a_run_directory(tmp_path):
    """A second writer of the same run directory, in another process, is refused with the
    holder's pid; the lock goes with the first logger's close (or its process's end)."""
    import os
    import subprocess
    import sys

    log = RunLogger("x", "y", 0, root=tmp_path, progress=False)
    code = ("import sys; from foundations.runlog import RunLogger\n"
            "try:\n    RunLogger('x', 'y', 0, run_dir=sys.argv[1], progress=False, start_step=5).close()\n"
            "except ValueError as e:\n    print(e); sys.exit(3)\n")
    other = subprocess.run([sys.executable, "-c", code, str(log.run_dir)], capture_output=True, text=True)
    assert other.returncode == 3, other.stderr
    assert other.stdout.strip() == (f"{log.run_dir} is in use by another process (pid {os.getpid()}); wait for it "
                                    "to finish or stop it, then run this again")
    log.close()
    again = subprocess.run([sys.executable, "-c", code, str(log.run_dir)], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr


def test_the_recorded_commit_is_marked_modified_by_code_changes_only(tmp_path) -> None:
    """A benchmark writing its scores into results/ between batches still runs the commit's code:
    only a change outside results/, docs/ and prose marks the commit ``+modified``."""
    import subprocess

    from foundations.runlog import source_commit

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "results").mkdir()
    for name in ("code.py", "results/scores.csv", "README.md"):
        (tmp_path / name).write_text("1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    sha = git("rev-parse", "HEAD")
    (tmp_path / "results" / "scores.csv").write_text("2\n")
    (tmp_path / "README.md").write_text("2\n")
    assert source_commit(tmp_path) == sha
    (tmp_path / "code.py").write_text("2\n")
    assert source_commit(tmp_path) == f"{sha}+modified"
    assert source_commit(tmp_path / "no-repo-here") == "unknown"
