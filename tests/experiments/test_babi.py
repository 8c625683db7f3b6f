"""experiments.babi on generated stories in the bAbI file format (the real set is not shipped):
answers scored per question, logs and test table, exact resume, refusals before any training."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from experiments import babi as babi_experiment
from experiments.babi import BabiArgs, epoch_batches, question_errors, train
from memory_nets import babi

PEOPLE = ("mary", "john", "sandra", "daniel")
PLACES = ("kitchen", "garden", "office", "hallway")
THINGS = ("apple", "football", "milk")


def _write_task(path: Path, stories: int, seed: int, lists: bool = False, moves: tuple[int, int] = (2, 4)) -> None:
    """Stories of ``moves`` (least, most) moves and a question (task 1 style), or (``lists``) what
    someone carries with one- and two-word answers (task 8 style); numbering restarts per story."""
    rng = random.Random(seed)
    lines = []
    for _ in range(stories):
        n = 0
        if lists:
            who = rng.choice(PEOPLE)
            held = rng.sample(THINGS, rng.choice((1, 2)))
            for thing in held:
                n += 1
                lines.append(f"{n} {who.title()} picked up the {thing}.")
            n += 1
            lines.append(f"{n} What is {who.title()} carrying?\t{','.join(held)}\t1")
            continue
        where = {}
        for _ in range(rng.randint(*moves)):
            who, place = rng.choice(PEOPLE), rng.choice(PLACES)
            where[who] = place
            n += 1
            lines.append(f"{n} {who.title()} went to the {place}.")
        who = rng.choice(sorted(where))
        n += 1
        lines.append(f"{n} Where is {who.title()}?\t{where[who]}\t1")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "babi" / "en-10k"
    root.mkdir(parents=True)
    for split, n, seed in (("train", 60, 1), ("test", 20, 2)):
        _write_task(root / f"qa1_single-supporting-fact_{split}.txt", n, seed)
        _write_task(root / f"qa8_lists-sets_{split}.txt", n, seed + 10, lists=True)
    return tmp_path / "babi"


def _args(tmp_path: Path, data_dir: Path, **kw) -> BabiArgs:
    options = dict(data_dir=str(data_dir), verify=False, download=False, tasks=("1", "8"), controller_size=16,
                   memory_slots=8, word_size=6, read_heads=1, batch_size=4, num_stories=24, eval_every=12,
                   checkpoint_every=12, runs_dir=str(tmp_path / "runs"), device="cpu", progress=False)
    options.update(kw)
    if options.get("model") in ("lstm", "transformer"):
        for name in ("memory_slots", "word_size", "read_heads"):
            options.pop(name)
    if options.get("model") == "transformer":
        options.pop("controller_size")
    return BabiArgs(**options)


def test_a_question_is_wrong_when_any_of_its_answer_words_is():
    stories = [babi.Story(("a", "-", "b", "-", "-"), ("x", "y", "z"), (1, 2))]
    vocab = babi.Vocabulary(stories)

    class Fixed(torch.nn.Module):  # predicts given words at the answer slots
        def __init__(self, words):
            super().__init__()
            self.words = words

        def forward(self, tokens):
            logits = torch.zeros(*tokens.shape, len(vocab))
            slots = (tokens[:, 0] == vocab.index["-"]).nonzero().squeeze(1)
            for slot, word in zip(slots.tolist(), self.words, strict=True):
                logits[slot, 0, vocab.index[word]] = 1.0
            return logits

    assert question_errors(Fixed(["x", "y", "z"]), stories, vocab, torch.device("cpu")) == (0, 2)
    assert question_errors(Fixed(["x", "y", "x"]), stories, vocab, torch.device("cpu")) == (1, 2)  # second word wrong
    assert question_errors(Fixed(["y", "z", "y"]), stories, vocab, torch.device("cpu")) == (2, 2)


@pytest.mark.parametrize("model", ["dnc", "lstm", "ntm", "transformer"])
def test_each_model_trains_and_writes_the_test_table(tmp_path, data_dir, model):
    result = train(_args(tmp_path, data_dir, model=model))
    assert result["stories"] == 24
    test = result["test"]
    assert set(test) == {"test/error/qa1", "test/error/qa8", "test/mean_error", "test/failed_tasks"}
    assert all(0.0 <= test[f"test/error/qa{t}"] <= 1.0 for t in (1, 8))
    rows = list(csv.reader(open(result["run_dir"] / "test_errors.csv")))
    assert rows[0] == ["task", "name", "test_error"] and rows[1][:2] == ["1", "single-supporting-fact"]
    assert rows[2][:2] == ["8", "lists-sets"] and rows[3][0] == "mean"
    assert result["run_dir"].name.startswith(f"babi-qa1-qa8__babi-{model}__1__")


def test_training_lowers_the_error_on_the_generated_task(tmp_path):
    """An LSTM (64 units, Adam 3e-3) on 500 generated one-move stories ("Mary went to the
    kitchen. Where is Mary? kitchen"): the test error falls from chance (four places: 0.75) to
    under 0.1 within 1,000 updates of 16 stories (seed 1; it leaves chance after about 500):
    the answer slots are where the loss and the score are taken."""
    root = tmp_path / "babi"
    root.mkdir()
    _write_task(root / "qa1_single-supporting-fact_train.txt", 560, 1, moves=(1, 1))
    _write_task(root / "qa1_single-supporting-fact_test.txt", 200, 2, moves=(1, 1))
    result = train(_args(tmp_path, root, model="lstm", tasks=("1",), controller_size=64, optimizer="adam",
                         learning_rate=3e-3, batch_size=16, num_stories=16_000, eval_every=4000,
                         checkpoint_every=16_000))
    assert result["test"]["test/error/qa1"] < 0.1, result["test"]


@pytest.mark.parametrize("options", [{}, {"anneal_lr": True, "bypass_dropout": 0.2}])
def test_resume_continues_to_the_same_parameters(tmp_path, data_dir, options):
    """Exact resume, also with the step size annealed (a function of the story count) and the
    DNC's bypass dropout (its masks come from the saved random state)."""
    straight = train(_args(tmp_path / "a", data_dir, num_stories=40, **options))
    first = train(_args(tmp_path / "b", data_dir, num_stories=40, **options), stop_at=20)
    assert first["stories"] == 20 and not first["test"]
    resumed = train(_args(tmp_path / "c", data_dir, resume=str(first["run_dir"] / "checkpoint.pt")))
    assert resumed["run_dir"] == first["run_dir"] and resumed["stories"] == 40
    for (name, a), b in zip(straight["model"].state_dict().items(), resumed["model"].state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert resumed["test"] == straight["test"]


def test_epoch_batches_are_a_function_of_seed_and_epoch():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    first = epoch_batches(lengths, 2, seed=1, epoch=0)
    assert first == epoch_batches(lengths, 2, seed=1, epoch=0) != epoch_batches(lengths, 2, seed=1, epoch=1)
    assert sorted(i for b in first for i in b) == list(range(7))
    assert all(len(b) <= 2 for b in first)


@pytest.mark.parametrize("argv,message", [
    (["--tasks", "21"], "--tasks takes bAbI task numbers 1-20 or 'all', got '21'"),
    (["--tasks", "1", "--model", "lstm", "--read-heads", "4"], "--read-heads is an option of --model ntm/dnc"),
    (["--tasks", "2", "--no-verify"], "no bAbI file qa2_*_train.txt"),
    (["--tasks", "1"], "qa1_single-supporting-fact_train.txt is not the bAbI en-10k v1.2 file"),
    (["--batch-size", "0"], "batch_size must be"),
    (["--tasks", "1", "--model", "lstm", "--bypass-dropout", "0.1"], "--bypass-dropout is an option of --model ntm/dnc"),
    (["--tasks", "1", "--bypass-dropout", "1"], "--bypass-dropout must be in [0, 1), got 1.0"),
])
def test_bad_input_is_one_line_exit_2_before_any_training(tmp_path, data_dir, capsys, argv, message):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as e:
        babi_experiment.main([*argv, "--data-dir", str(data_dir), "--no-download", "--runs-dir", str(runs)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not runs.exists()


def test_a_truncated_file_is_refused(tmp_path, data_dir):
    from foundations.data import DataError

    path = next((data_dir / "en-10k").glob("qa1_*_test.txt"))
    path.write_text(path.read_text()[:200])
    with pytest.raises(DataError, match=r"is not the bAbI en-10k v1\.2 file"):
        babi_experiment.load_data(_args(tmp_path, data_dir, verify=True))
