"""bAbI question answering (Weston et al. 2015) read from the standard files, DNC-style encoding.

The files are not shipped or downloaded: pass the directory of the ``en-10k`` set (from
``tasks_1-20_v1-2.tar.gz``), which holds ``qa1_single-supporting-fact_train.txt`` and so on.

File format: numbered lines; the number restarts at 1 for a new story; a question line has
``question<TAB>answer<TAB>supporting line ids``. As in the DNC paper, each story becomes one
sequence: its words in order, each question followed by one ``-`` token per answer word, and
the answer words are the targets at the ``-`` positions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

ANSWER = "-"
PAD = "<pad>"
_TOKEN = re.compile(r"[A-Za-z]+|[.?]")
SOURCE = "https://dl.fbaipublicfiles.com/babi/tasks_1-20_v1-2.tar.gz"


@dataclasses.dataclass(frozen=True)
class Story:
    """One story: ``tokens`` (answer slots as ``-``) and, per slot in order, the answer word."""

    tokens: tuple[str, ...]
    answers: tuple[str, ...]


def task_file(directory: str | Path, task: int, split: str) -> Path:
    """The file of bAbI task ``task`` (1-20) and ``split`` (``train``/``test``/``valid``) in ``directory``."""
    if not 1 <= task <= 20:
        raise ValueError(f"bAbI task must be in 1..20, got {task}")
    if split not in ("train", "test", "valid"):
        raise ValueError(f"split must be 'train', 'test' or 'valid', got {split!r}")
    root = Path(directory)
    matches = sorted(root.glob(f"qa{task}_*_{split}.txt")) if root.is_dir() else []
    if not matches:
        raise FileNotFoundError(
            f"no bAbI file qa{task}_*_{split}.txt in {str(root)!r}; download {SOURCE}, extract it, "
            f"and pass the en-10k directory (it holds qa1_single-supporting-fact_train.txt ...)"
        )
    return matches[0]


def parse(lines: Iterable[str], source: str = "<lines>") -> list[Story]:
    """Stories from bAbI-format lines; a malformed line is a ``ValueError`` naming it."""
    stories: list[Story] = []
    tokens: list[str] = []
    answers: list[str] = []
    last = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        head, _, rest = line.partition(" ")
        if not head.isdigit():
            raise ValueError(f"{source}:{number}: expected a line number first, got {line!r}")
        index = int(head)
        if index <= last and tokens:  # numbering restarted: a new story
            stories.append(Story(tuple(tokens), tuple(answers)))
            tokens, answers = [], []
        last = index
        if "\t" in rest:
            fields = rest.split("\t")
            if len(fields) < 2 or not fields[1]:
                raise ValueError(f"{source}:{number}: a question needs '<question>\\t<answer>', got {line!r}")
            tokens += [t.lower() for t in _TOKEN.findall(fields[0])]
            words = [w.strip().lower() for w in fields[1].split(",") if w.strip()]
            tokens += [ANSWER] * len(words)
            answers += words
        else:
            tokens += [t.lower() for t in _TOKEN.findall(rest)]
    if tokens:
        stories.append(Story(tuple(tokens), tuple(answers)))
    return stories


def load(directory: str | Path, task: int, split: str = "train") -> list[Story]:
    """Stories of one bAbI task and split from ``directory`` (see :func:`task_file`)."""
    path = task_file(directory, task, split)
    with open(path, encoding="utf-8") as f:
        return parse(f, str(path))


class Vocabulary:
    """Word <-> index; index 0 is padding, 1 the answer slot ``-``."""

    def __init__(self, stories: Sequence[Story]) -> None:
        words = sorted({w for s in stories for w in (*s.tokens, *s.answers)} - {ANSWER})
        self.words = [PAD, ANSWER, *words]
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, stories: Sequence[Story], device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch of stories -> ``(tokens [T, B] long, targets [T, B] long)``.

        ``targets`` holds the answer word's index at ``-`` slots and ``-100`` (ignored by
        ``cross_entropy``) elsewhere; shorter stories are padded with index 0.
        """
        t = max(len(s.tokens) for s in stories)
        tokens = torch.zeros(t, len(stories), dtype=torch.long)
        targets = torch.full((t, len(stories)), -100, dtype=torch.long)
        for j, story in enumerate(stories):
            unknown = [w for w in (*story.tokens, *story.answers) if w not in self.index]
            if unknown:
                raise ValueError(f"words not in the vocabulary: {sorted(set(unknown))[:10]}")
            tokens[: len(story.tokens), j] = torch.tensor([self.index[w] for w in story.tokens])
            slots = [i for i, w in enumerate(story.tokens) if w == ANSWER]
            targets[slots, j] = torch.tensor([self.index[w] for w in story.answers], dtype=torch.long)
        return tokens.to(device), targets.to(device)
