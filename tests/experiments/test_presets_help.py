"""Every experiment with presets names them (with a purpose and a source) in --help, and
``--preset list`` prints their values side by side."""

import dataclasses

import pytest

from experiments import a2c, dqn, dqn_atari, ppo, ppo_atari, reinforce

EXPERIMENTS = [(dqn, dqn.Args()), (dqn_atari, dqn_atari.DEFAULTS), (ppo, ppo.Args()),
               (ppo_atari, ppo_atari.DEFAULTS), (a2c, a2c.Args()), (reinforce, reinforce.Args())]


@pytest.mark.parametrize("module,defaults", EXPERIMENTS, ids=lambda m: getattr(m, "__name__", ""))
def test_help_lists_every_preset_with_its_purpose(module, defaults, capsys):
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--preset list" in out
    for name, note in module.ALGORITHM.notes.items():
        assert f"{name}: " in out and note.split(" (")[0][:40] in " ".join(out.split())
    assert set(module.ALGORITHM.notes) == set(module.ALGORITHM.presets)


@pytest.mark.parametrize("module,defaults", EXPERIMENTS[:3], ids=["dqn", "dqn_atari", "ppo"])
def test_preset_list_prints_every_value_side_by_side(module, defaults, capsys):
    with pytest.raises(SystemExit) as e:
        module.main(["--preset", "list"])
    assert e.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    presets = module.ALGORITHM.presets
    assert lines[0].split() == ["field", *presets]
    fields = dataclasses.fields(next(iter(presets.values())))
    assert len(lines) == 2 + len(fields)
    rows = {line.split()[0]: line for line in lines[2:]}
    for f in fields:
        row, at = rows[f.name], len(f.name)
        for p in presets.values():  # each preset's value, in the column order of the header
            at = row.index(repr(getattr(p, f.name)), at) + 1
    assert rows["total_steps"].split()[1:] == [str(p.total_steps) for p in presets.values()]


def test_a_preset_without_a_note_is_refused():
    from experiments import driver

    with pytest.raises(ValueError, match="preset notes"):
        driver.Algorithm("x", {"a": 1, "b": 2}, lambda *a: None, lambda *a: None, {"a": "only a"})
