"""Command-line errors of every experiment come out as one line with exit status 2."""

from __future__ import annotations

import pytest

from experiments import compare, dqn, ppo


@pytest.mark.parametrize("main,argv,expected", [
    (ppo.main, ["--core", "lstn"], "error: invalid choice 'lstn' for argument '--core'. Expected one of ("),
    (ppo.main, ["--num-envs", "abc"], "error: Error parsing --num-envs: invalid literal for int() with base 10: 'abc'"),
    (ppo.main, ["--nmu-envs", "3"], "error: Unrecognized options: --nmu-envs, 3"),
    (ppo.main, ["--core-window", "4"], "error: --core-window configure a memory core; give --core (none, lstm, gru, "
                                       "ntm, dnc or transformer) too"),
    (dqn.main, ["--buffer-size", "0", "--prioritized"],
     "error: DQNConfig.buffer_size must be >= 1, got 0 (prioritized replay needs a replay buffer)"),
    (compare.main, ["--score", "mean"], "error: invalid choice 'mean' for argument '--score'. Expected one of ("),
])  # fmt: skip
def test_a_bad_command_line_is_one_line(main, argv, expected, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--no-progress", "--runs-dir", str(tmp_path)] if main is not compare.main else [*argv, "x"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(expected) and err.count("\n") == 1, err


def test_help_still_prints_in_full(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        ppo.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage: ") and "--core" in out and "--preset" in out
