"""The committed summaries redraw the README's pictures: each loads as compare runs, and every
picture the README shows exists."""

import re
from pathlib import Path

from experiments import compare

ROOT = Path(__file__).resolve().parents[1]
#: summary -> (tag, evaluations per run)
SUMMARIES = {"results/cartpole/eval.csv": ("eval/episodic_return", 10), "results/memory/copy.csv": ("eval/bit_error", 10),
             "results/memory-agents/cartpole-po.csv": ("eval/episodic_return", 10),
             "results/memory-agents/popgym.csv": ("eval/episodic_return", 6)}


def test_each_summary_loads_with_its_runs_and_points():
    for path, (tag, points) in SUMMARIES.items():
        runs = compare.read_summary(ROOT / path, tag)
        assert runs and all(r.steps.size >= points and r.steps.size == r.values.size for r in runs), path


def test_every_picture_the_readme_shows_exists_and_the_results_stay_small():
    readme = (ROOT / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme)
    assert len(pictures) >= 2
    assert [p for p in pictures if not (ROOT / p).is_file()] == []
    big = [p for p in (ROOT / "results").rglob("*") if p.is_file() and p.stat().st_size > 5_000_000]
    assert big == []  # summaries and tables, not event files or replays
