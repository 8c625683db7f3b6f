"""bAbI question answering (Weston et al. 2015) read from the standard files, DNC-style encoding.

The files are not shipped: pass the directory of the ``en-10k`` set of ``tasks_1-20_v1-2.tar.gz``
(which holds ``qa1_single-supporting-fact_train.txt`` and so on), or let :func:`fetch` download
and extract it when online. :func:`check_files` compares each file with the published v1.2 one
(its MD5, or where none is recorded its number of questions), so a truncated file or another
version of the set is refused with a line naming it.

File format: numbered lines; the number restarts at 1 for a new story; a question line has
``question<TAB>answer<TAB>supporting line ids``. As in the DNC paper, each story becomes one
sequence: its words in order, each question followed by one ``-`` token per answer word, and
the answer words are the targets at the ``-`` positions.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from foundations.data import DataError, default_root, download, md5sum

ANSWER = "-"
PAD = "<pad>"
_TOKEN = re.compile(r"[A-Za-z]+|[.?]")
SOURCE = "https://dl.fbaipublicfiles.com/babi/tasks_1-20_v1-2.tar.gz"
ARCHIVE_FOLDER = "tasks_1-20_v1-2/en-10k"
TASKS = tuple(range(1, 21))
QUESTIONS = {"train": 10_000, "test": 1_000}
"""Questions per task file in en-10k (each task: 10,000 to train on, 1,000 to test)."""

#: MD5 of each en-10k v1.2 file (from the published archive's files). The archive has no published
#: checksum of its own, so a download is checked file by file after extraction; the one file
#: without a recorded sum (task 3's training file) is checked by its number of questions.
MD5: dict[str, str] = {
    "qa1_single-supporting-fact_test.txt": "d33488e97ced71fabb9381ee273a66d3",
    "qa1_single-supporting-fact_train.txt": "1835e9ea97b02d6546071b41987bcd8b",
    "qa2_two-supporting-facts_test.txt": "dd4b3eb2de365efe93eecfa67b3988f0",
    "qa2_two-supporting-facts_train.txt": "14833d98880fb69fff2fce0974cef008",
    "qa3_three-supporting-facts_test.txt": "c78f5b0c59c278deae7493dbc5f65626",
    "qa4_two-arg-relations_test.txt": "70d4cec7286d2a5ce73501eabba4ffdc",
    "qa4_two-arg-relations_train.txt": "36fd2672afb792f569c1beedb287379e",
    "qa5_three-arg-relations_test.txt": "2cf6f2134b9dac40d1e57a75ed1f4b35",
    "qa5_three-arg-relations_train.txt": "bd196dcf7bea77bae010ad53810fdfa8",
    "qa6_yes-no-questions_test.txt": "aecebb00ca94af658ea6dd3e2d5a1004",
    "qa6_yes-no-questions_train.txt": "a432ff0605af014256e5249c8cb8f205",
    "qa7_counting_test.txt": "f1e78a8a0fd0ed94de4e872a48fe1b28",
    "qa7_counting_train.txt": "a2241cbc504b337f2b5e7d115e7da974",
    "qa8_lists-sets_test.txt": "56166f60577ebbac4d195133b54551f0",
    "qa8_lists-sets_train.txt": "5f9c366ffae3c6c80f187a6c1d1d19f0",
    "qa9_simple-negation_test.txt": "69b8ed3da50e03b56c0ad1e44f410731",
    "qa9_simple-negation_train.txt": "62849af8f5f2b904041a37e299278fdf",
    "qa10_indefinite-knowledge_test.txt": "f0d77cf3e646b9daa4ec3c2a21a8401d",
    "qa10_indefinite-knowledge_train.txt": "46f3fd379151b9a200c9393edeef467b",
    "qa11_basic-coreference_test.txt": "037385cbc6f74433d906cb61b5bf0f44",
    "qa11_basic-coreference_train.txt": "d93a83045f7bf219e2e74c9cdfd95b4d",
    "qa12_conjunction_test.txt": "4b599627b9452558cc9a1875e59dafa9",
    "qa12_conjunction_train.txt": "2693c1418c3a06f77148d477007aa2fd",
    "qa13_compound-coreference_test.txt": "96f6dbbb74b719706d4dfb79546150b8",
    "qa13_compound-coreference_train.txt": "a4e8d8b2da1b14b709a3ac530ed13b2a",
    "qa14_time-reasoning_test.txt": "2f5c0cd4e42f53925be1b677db999cb1",
    "qa14_time-reasoning_train.txt": "50ecd63d697eec07b98cd70e16689a79",
    "qa15_basic-deduction_test.txt": "135db07bf613444c5c9636aa051fb93d",
    "qa15_basic-deduction_train.txt": "77bda02acf275b237bc9e1bbce49cc0c",
    "qa16_basic-induction_test.txt": "9ee715176a82862d8fc65440cd1c71d8",
    "qa16_basic-induction_train.txt": "9954363c22188393d922df3f2c7d74f7",
    "qa17_positional-reasoning_test.txt": "bb108b8290f963cd361c26f7ef058ec5",
    "qa17_positional-reasoning_train.txt": "d34fbdd56033b1ee85924e9749dfd09c",
    "qa18_size-reasoning_test.txt": "a2af390670baf39c72e4052e5c15d083",
    "qa18_size-reasoning_train.txt": "13e898920894a19b1bdd480b2824b7e0",
    "qa19_path-finding_test.txt": "b317a287f6780b941bb876047418e6ca",
    "qa19_path-finding_train.txt": "a57ccc8192f0308d387c3d623b37d0a6",
    "qa20_agents-motivations_test.txt": "3238749cfa9731bcdb0c4d01114385bd",
    "qa20_agents-motivations_train.txt": "8b76b199ac0a06274324d3474ff5ca2d",
}
TASK_NAMES = {int(name[2:name.index("_")]): name[name.index("_") + 1:name.rindex("_")] for name in MD5}


@dataclasses.dataclass(frozen=True)
class Story:
    """One story: ``tokens`` (answer slots as ``-``), per slot in order the answer word, and per
    question in order how many slots (answer words) it has (task 8's lists and task 19's paths
    have several; the others one)."""

    tokens: tuple[str, ...]
    answers: tuple[str, ...]
    words_per_question: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.words_per_question and self.answers:  # one word per question unless told
            object.__setattr__(self, "words_per_question", (1,) * len(self.answers))
        if sum(self.words_per_question) != len(self.answers):
            raise ValueError(f"words_per_question {self.words_per_question} do not add up to {len(self.answers)} answers")


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
    counts: list[int] = []
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
            stories.append(Story(tuple(tokens), tuple(answers), tuple(counts)))
            tokens, answers, counts = [], [], []
        last = index
        if "\t" in rest:
            fields = rest.split("\t")
            if len(fields) < 2 or not fields[1]:
                raise ValueError(f"{source}:{number}: a question needs '<question>\\t<answer>', got {line!r}")
            tokens += [t.lower() for t in _TOKEN.findall(fields[0])]
            words = [w.strip().lower() for w in fields[1].split(",") if w.strip()]
            tokens += [ANSWER] * len(words)
            answers += words
            counts.append(len(words))
        else:
            tokens += [t.lower() for t in _TOKEN.findall(rest)]
    if tokens:
        stories.append(Story(tuple(tokens), tuple(answers), tuple(counts)))
    return stories


def load(directory: str | Path, task: int, split: str = "train") -> list[Story]:
    """Stories of one bAbI task and split from ``directory`` (see :func:`task_file`)."""
    path = task_file(directory, task, split)
    with open(path, encoding="utf-8") as f:
        return parse(f, str(path))


def count_questions(path: str | Path) -> int:
    """Question lines (those with a tab) in a bAbI file."""
    with open(path, encoding="utf-8") as f:
        return sum("\t" in line for line in f)


def check_files(directory: str | Path, tasks: Sequence[int], splits: Sequence[str] = ("train", "test")) -> None:
    """Refuse (``DataError``, one line) a missing task file, or one that is not the published
    en-10k v1.2 file: another MD5 where one is recorded, else another number of questions
    (the en 1k set has 1,000 per training file, a truncated file fewer)."""
    for task in tasks:
        for split in splits:
            try:
                path = task_file(directory, task, split)
            except FileNotFoundError as e:
                raise DataError(str(e)) from None
            expected = MD5.get(path.name)
            if expected is not None:
                if (got := md5sum(path)) != expected:
                    n = count_questions(path)
                    raise DataError(f"{path} is not the bAbI en-10k v1.2 file (MD5 {got}, expected {expected}; "
                                    f"{n:,} questions, expected {QUESTIONS[split]:,}): a truncated file or another "
                                    f"version of the set; replace it from {SOURCE} ({ARCHIVE_FOLDER}/)")
            elif (n := count_questions(path)) != QUESTIONS[split]:
                raise DataError(f"{path} has {n:,} questions, the en-10k v1.2 file {QUESTIONS[split]:,}: a truncated "
                                f"file or another version of the set; replace it from {SOURCE} ({ARCHIVE_FOLDER}/)")


def find_directory(data_dir: str | Path | None) -> Path:
    """The en-10k directory under ``data_dir`` (default ``$SANDBOX_DATA/babi``, i.e. ``./data/babi``
    without it): ``data_dir`` itself when it holds the task files, else its ``en-10k`` or
    ``tasks_1-20_v1-2/en-10k`` folder (as the archive extracts)."""
    root = Path(data_dir) if data_dir is not None else default_root() / "babi"
    for candidate in (root, root / "en-10k", root / ARCHIVE_FOLDER):
        if any(candidate.glob("qa*_*_t*.txt")):
            return candidate
    return root


def fetch(data_dir: str | Path | None, timeout: float = 60.0) -> Path:
    """Download ``tasks_1-20_v1-2.tar.gz`` into the data directory, extract its en-10k folder
    there and check every file (:func:`check_files`); returns that folder. ``OSError`` offline."""
    root = Path(data_dir) if data_dir is not None else default_root() / "babi"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        archive = download(SOURCE, Path(tmp) / "tasks_1-20_v1-2.tar.gz", timeout=timeout)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(ARCHIVE_FOLDER + "/")
                       and "/" not in m.name[len(ARCHIVE_FOLDER) + 1:]]
            target = root / "en-10k"
            target.mkdir(exist_ok=True)
            for member in members:  # only plain files of that folder, by their base name
                with tar.extractfile(member) as src, open(target / os.path.basename(member.name), "wb") as dst:
                    dst.write(src.read())
    check_files(target, TASKS)
    return target


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
