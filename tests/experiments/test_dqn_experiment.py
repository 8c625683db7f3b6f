import dataclasses

import pytest
import torch

from agents.dqn import PRESETS
from experiments import dqn, dqn_atari, driver
from foundations.runlog import load_checkpoint


def _args(tmp_path, **dqn_overrides) -> dqn.Args:
    args = driver.parse_args(["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu"], dqn.Args(), dqn.ALGORITHM, "")
    settings = dict(total_steps=2000, learning_starts=200, train_frequency=4, gradient_steps=1,
                    target_update_interval=100, batch_size=32)
    config = dataclasses.replace(args.agent, **{**settings, **dqn_overrides})
    loop = dataclasses.replace(args.loop, eval_interval=0, eval_episodes=2, log_interval=100)
    return dataclasses.replace(args, agent=config, loop=loop)


@pytest.mark.parametrize("flags", [{}, {"double": True, "dueling": True, "n_step": 3, "prioritized": True}])
def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path, flags):
    args = _args(tmp_path / "a", **flags)
    straight, straight_dir = driver.train(args, dqn.ALGORITHM)
    args_b = _args(tmp_path / "b", **flags)
    half, half_dir = driver.train(args_b, dqn.ALGORITHM, stop_step=1000)
    assert half.step == 1000
    resumed, resumed_dir = driver.train(dataclasses.replace(args_b, resume=str(half_dir / "checkpoint.pt")), dqn.ALGORITHM)
    assert resumed_dir == half_dir and resumed.step == straight.step == 2000
    a = load_checkpoint(straight_dir / "checkpoint.pt")
    b = load_checkpoint(resumed_dir / "checkpoint.pt")
    for name in ("q", "target"):
        for key, value in a["agent"][name].items():
            assert torch.equal(value, b["agent"][name][key]), (name, key)
    assert a["agent"]["counters"] == b["agent"]["counters"]
    assert torch.equal(a["loop"]["actions"], b["loop"]["actions"])
    assert straight.evaluations == resumed.evaluations
    assert len(list(resumed_dir.glob("replay-*.pt"))) == 1  # older replay files are removed
    # every tag has each step exactly once, as in the uninterrupted run (values: SPS differs)
    straight_events, resumed_events = _events(straight_dir), _events(resumed_dir)
    assert set(straight_events) == set(resumed_events)
    for tag, points in straight_events.items():
        assert [s for s, _ in resumed_events[tag]] == [s for s, _ in points], tag
        if tag != "charts/SPS":
            assert resumed_events[tag] == points, tag
    assert 1000 in [s for s, _ in resumed_events["charts/SPS"]]  # the checkpoint step's points stay


@pytest.mark.parametrize("interrupt_at", [1037, 1500])
def test_an_interrupted_and_resumed_run_keeps_the_cadence_of_an_uninterrupted_one(tmp_path, monkeypatch, interrupt_at):
    """Ctrl-C at a step that is no multiple of any interval (1037), or at an evaluation step
    (1500, where the stop comes before the evaluation): the resumed run logs, evaluates and
    checkpoints on the same steps, with the same values, as the run that never stopped."""
    import signal

    def with_evals(args):
        return dataclasses.replace(args, loop=dataclasses.replace(args.loop, eval_interval=500, checkpoint_interval=300))

    straight, straight_dir = driver.train(with_evals(_args(tmp_path / "a")), dqn.ALGORITHM)
    args_b = with_evals(_args(tmp_path / "b"))
    train = dqn.DQN.train

    def interrupting(self, step, collected):
        if step == interrupt_at:
            signal.raise_signal(signal.SIGINT)
        return train(self, step, collected)

    monkeypatch.setattr(dqn.DQN, "train", interrupting)
    half, half_dir = driver.train(args_b, dqn.ALGORITHM)
    assert half.interrupted == signal.SIGINT and half.step == interrupt_at
    monkeypatch.setattr(dqn.DQN, "train", train)
    resumed, _ = driver.train(dataclasses.replace(args_b, resume=str(half_dir / "checkpoint.pt")), dqn.ALGORITHM)
    assert [s for s, _ in straight.evaluations] == [500, 1000, 1500, 2000]
    assert resumed.evaluations == straight.evaluations
    straight_events, resumed_events = _events(straight_dir), _events(half_dir)
    assert set(straight_events) == set(resumed_events)
    for tag, points in straight_events.items():
        # the interrupted step's own points (SPS, losses) are extra where the straight run has none
        # there (an episode that ended at that step is in both)
        straight_steps = {s for s, _ in points}
        steps = [s for s, _ in resumed_events[tag] if s != interrupt_at or interrupt_at in straight_steps]
        assert steps == [s for s, _ in points], tag
        if tag != "charts/SPS":
            assert [p for p in resumed_events[tag] if p[0] in steps] == points, tag


def _events(run_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_resume_refuses_conflicting_flags_applies_changeable_ones_and_skips_a_finished_run(tmp_path, capsys):
    args = _args(tmp_path, total_steps=600)
    result, run_dir = driver.train(args, dqn.ALGORITHM, stop_step=400)
    checkpoint = str(run_dir / "checkpoint.pt")
    with pytest.raises(SystemExit) as e:
        dqn.main(["--resume", checkpoint, "--learning-rate", "0.5", "--seed", "7"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err
    assert "--learning-rate 0.5 (saved: 0.0023)" in err and "--seed 7 (saved: 1)" in err and "--device" in err
    argv = ["--resume", checkpoint, "--progress", "--compile"]
    parsed = driver.parse_args(argv, dqn.Args(), dqn.ALGORITHM, "")
    resumed = driver.resume_args(parsed, dqn.ALGORITHM, load_checkpoint(checkpoint)["args"],
                                 driver.given_flags(parsed, argv))
    assert resumed.progress and resumed.agent.compile and resumed.agent.total_steps == 600  # the rest: saved
    dqn.main(["--resume", checkpoint])  # the same flags as saved: fine, and it finishes the run
    capsys.readouterr()
    events = sorted(p.stat().st_mtime_ns for p in run_dir.iterdir())
    result = dqn.main(["--resume", checkpoint])
    assert result.already_finished and result.step == 600
    assert "already finished at step 600; nothing to do" in capsys.readouterr().out
    assert sorted(p.stat().st_mtime_ns for p in run_dir.iterdir()) == events  # nothing was touched


def test_bad_command_lines_fail_at_start_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        dqn.main(["--preset", "natur", "--runs-dir", str(tmp_path)])
    assert e.value.code == 2
    assert "unknown preset 'natur'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dqn.main(["--env-id", "Pendulum-v1", "--dueling", "--runs-dir", str(tmp_path), "--no-progress"])
    assert "DQN (and --dueling) needs a discrete action space, got Box" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dqn.main(["--buffer-size", "0", "--prioritized", "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert "DQNConfig.buffer_size must be >= 1, got 0 (prioritized replay needs a replay buffer)" in err
    with pytest.raises(SystemExit):
        dqn.main(["--env-id", "CartPol-v1", "--runs-dir", str(tmp_path), "--no-progress"])
    assert "CartPole-v1" in capsys.readouterr().err  # suggests the close match


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_everyday_mistakes_are_one_line_with_status_2(tmp_path, capsys, monkeypatch):
    small = ["--no-progress", "--total-steps", "400", "--learning-starts", "100", "--eval-interval", "0",
             "--eval-episodes", "1"]
    for argv, expected in [
        (["--resume", str(tmp_path / "nope" / "checkpoint.pt")], "error: checkpoint not found: "),
        (["--runs-dir", str(tmp_path / "file"), *small], "error: cannot create the run directory "),
    ]:
        (tmp_path / "file").write_text("in the way")
        with pytest.raises(SystemExit) as e:
            dqn.main(argv)
        assert e.value.code == 2 and _error_line(capsys).startswith(expected)
    _, run_dir = driver.train(_args(tmp_path / "runs", total_steps=400, learning_starts=100), dqn.ALGORITHM,
                              stop_step=200)
    checkpoint = run_dir / "checkpoint.pt"
    # a checkpoint copied without its replay file: resumes (not exactly) with one warning
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "checkpoint.pt").write_bytes(checkpoint.read_bytes())
    assert load_checkpoint(copy / "checkpoint.pt")["replay_file"] is not None
    assert dqn.main(["--resume", str(copy / "checkpoint.pt")]).step == 400
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert warning == [f"warning: the checkpoint's replay file {copy / 'replay-200.pt'} is missing; resuming "
                       "with an empty buffer (not exact: updates wait until it holds the warm-up's transitions "
                       "again)"]
    # a truncated checkpoint: one line naming the file
    (copy / "checkpoint.pt").write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(SystemExit) as e:
        dqn.main(["--resume", str(copy / "checkpoint.pt")])
    line = _error_line(capsys)
    assert e.value.code == 2 and line.startswith(f"error: cannot load checkpoint {copy / 'checkpoint.pt'}")
    # a full disk while checkpointing: the message says which file and that the last one is intact
    import torch as torch_module

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 2048 vs 1920\nmore")

    monkeypatch.setattr(torch_module, "save", full)
    import shutil

    monkeypatch.setattr("foundations.runlog.shutil.disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(SystemExit) as e:
        dqn.main(["--runs-dir", str(tmp_path / "full"), *small])
    line = _error_line(capsys)
    assert e.value.code == 2 and line.startswith("error: no space left on device while writing ")
    assert line.endswith("no earlier checkpoint exists")


def test_atari_run_stores_frames_once_logs_and_checkpoints_what_is_stored(tmp_path):
    argv = ["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", "--preset", "drq_eps",
            "--total-steps", "300", "--learning-starts", "100", "--eval-interval", "0",
            "--eval-episodes", "1", "--log-interval", "100", "--max-episode-frames", "400"]
    args = driver.parse_args(argv, dqn_atari.DEFAULTS, dqn_atari.ALGORITHM, "")
    assert args.env_id == "ALE/Breakout-v5" and args.agent.dueling and args.agent.n_step == 10
    result, run_dir = driver.train(args, dqn_atari.ALGORITHM)
    assert result.step == 300 and len(result.evaluations) == 1
    state = load_checkpoint(run_dir / "checkpoint.pt")
    replay_file = run_dir / state["replay_file"]
    replay = load_checkpoint(replay_file)["replay"]
    frames = replay["tensors"]["frames"]  # [envs, filled slots, 84, 84]: frames stored once
    assert frames.shape[0] == 1 and 300 <= frames.shape[1] <= 320 and frames.shape[2:] == (84, 84)
    assert args.agent.buffer_size == 100_000  # a 700 MB buffer; its checkpoint holds the 300 steps
    assert replay_file.stat().st_size < 300 * 84 * 84 + 1_000_000
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())


@pytest.mark.slow
def test_cartpole_preset_solves_cartpole_within_50k_steps(tmp_path):
    argv = ["--runs-dir", str(tmp_path), "--no-progress", "--device", "cpu", "--seed", "1",
            "--eval-interval", "5000", "--no-save-replay"]
    args = driver.parse_args(argv, dqn.Args(), dqn.ALGORITHM, "")
    assert args.agent == PRESETS["cartpole"] and args.agent.total_steps == 50_000
    result, _ = driver.train(args, dqn.ALGORITHM)
    final = result.evaluations[-1]
    assert final[0] == 50_000 and final[1] >= 475, result.evaluations  # the policy it ends with, not its best
