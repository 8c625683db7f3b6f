"""bAbI question answering with a DNC, an NTM, an LSTM or a transformer, as the DNC paper trains it.

    python -m experiments.babi --model dnc --tasks 1                  # single supporting fact
    python -m experiments.babi --model dnc --tasks 1 2 --num-stories 200000
    python -m experiments.babi --model lstm --tasks all --data-dir ~/data/babi
    python -m experiments.babi --resume runs/<run>/checkpoint.pt

The DNC paper's setup (Graves et al. 2016, Methods, "bAbI"): the en-10k set (10,000 training
questions per task); each story is one sequence of words, each question followed by one ``-``
per answer word, the answer words predicted at the ``-`` slots and the loss taken only there;
word one-hots in (``--embedding-size N`` learns an embedding instead); joint training over the
chosen tasks with 10% of each task's training stories held out for validation; RMSProp, learning
rate 1e-4, momentum 0.9, gradient clipping. The paper's DNC has an LSTM controller of 256 units,
a 256 x 64 memory and 4 read heads; the defaults here are smaller (controller 128, memory
64 x 32, 2 read heads, batches of 16 stories of similar length) so that a run fits two CPU cores;
pass the paper's sizes as flags on a GPU.

A question counts as wrong when any of its answer words is wrong. TensorBoard: ``train/loss``;
at every evaluation ``eval/error/qa<k>`` per task on the validation stories, ``eval/mean_error``
and ``eval/failed_tasks`` (error above 5%, the paper's criterion), and the memory figure of one
validation story (``memory/figure``: input words, answers, output, every head's weighting and,
for the DNC, usage and links); at the end the same on the test set under ``test/...``, also
written to ``<run>/test_errors.csv``.

Data: ``--data-dir`` (default ``$SANDBOX_DATA/babi``, else ``./data/babi``) holding the en-10k
files of ``tasks_1-20_v1-2.tar.gz`` (that folder itself, ``en-10k/`` or
``tasks_1-20_v1-2/en-10k/``). Missing files are downloaded and extracted when the machine is
online; each file is compared with the published v1.2 file (MD5, or its question count) before
training, so a truncated file or another version is refused (``--no-verify`` for your own files).
"""

from __future__ import annotations

import csv
import dataclasses
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from experiments import memory_models
from experiments.common import parse_and_run, rebuild, resolve_device
from experiments.memory_pictures import log_memory_figure, trace
from foundations.checks import positive_int
from foundations.data import DataError
from foundations.interrupts import StopRequests
from foundations.perf import keep_freed_memory
from foundations.runlog import RunLogger, load_checkpoint, save_checkpoint
from foundations.seeding import get_rng_state, seed_everything, set_rng_state
from memory_nets import babi

EXPERIMENT = "babi"
CHECKPOINT_FORMAT = 1
FAILED = 0.05
"""A task is failed when its error is above this (the DNC paper's and Weston et al.'s criterion)."""
SPLIT_SEED = 0
"""The held-out validation stories are the same for every run and seed."""
BUCKET = 50
"""Batches are cut from runs of this many batches' worth of stories sorted by length (less padding)."""


@dataclasses.dataclass(frozen=True)
class BabiArgs:
    """Options of the bAbI experiment (defaults: the DNC paper's setup at a CPU size)."""

    model: Literal["dnc", "lstm", "ntm", "transformer"] = "dnc"
    tasks: tuple[str, ...] = ("1",)
    """task numbers 1-20 trained jointly, or all."""
    data_dir: str | None = None
    """the en-10k files (default: $SANDBOX_DATA/babi, else ./data/babi)."""
    download: bool = True
    """download and extract tasks_1-20_v1-2.tar.gz when files are missing (needs a network)."""
    verify: bool = True
    """compare each file with the published en-10k v1.2 file (MD5 or question count)."""
    embedding_size: int = 0
    """0: word one-hots in (the paper); N: a learned N-wide embedding."""
    controller: Literal["lstm", "feedforward"] = "lstm"
    controller_size: int = 128
    """controller hidden units (LSTM model: hidden units); paper 256."""
    memory_slots: int = 64
    """paper 256."""
    word_size: int = 32
    """paper 64."""
    read_heads: int = 2
    """paper 4."""
    write_heads: int = 1
    shift_range: int = 1
    """NTM: heads shift by -k..k slots per step."""
    memory_init: Literal["constant", "learned", "random"] = "constant"
    bypass_dropout: float = 0.0
    """NTM/DNC: dropout on the controller output's direct path to the output layer, in training
    (ADNC's bypass dropout, Franke et al. 2018; 0: off, as in the papers)."""
    controller_layer_norm: bool = False
    """NTM/DNC: layer normalisation in the LSTM controller (gates and cell; Ba et al. 2016, ADNC);
    off in the papers."""
    model_size: int = 64
    """transformer: width of the residual stream."""
    heads: int = 4
    """transformer: attention heads."""
    layers: int = 2
    """transformer: gated layers."""
    ff_size: int = 256
    """transformer: hidden units of each layer's MLP."""
    window: int = 1024
    """transformer: words each output attends back over (bAbI stories: up to ~1,400 in task 3)."""
    position: Literal["sinusoid", "alibi", "learned", "none"] = "alibi"
    """transformer: how positions enter (memory_nets.transformer)."""
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    learning_rate: float = 1e-4
    momentum: float = 0.9
    """RMSProp momentum (Adam ignores it)."""
    anneal_lr: bool = False
    """scale the step size down linearly to 0 over --num-stories."""
    grad_clip: float = 10.0
    """global gradient-norm clip (0 disables)."""
    batch_size: int = 16
    num_stories: int = 100_000
    """training stories in all (a story holds several questions: 5 in task 1)."""
    valid_fraction: float = 0.1
    """of each task's training stories, held out to evaluate on during training."""
    eval_every: int = 5_000
    """evaluate on the validation stories every this many training stories."""
    eval_stories: int = 0
    """validation stories per task at each evaluation (0: all of them)."""
    checkpoint_every: int = 10_000
    save_pictures: bool = False
    """also save each memory figure as <run dir>/pictures/memory-<stories>.png."""
    seed: int = 1
    device: str = "auto"
    compile: bool = False
    """torch.compile the DNC/NTM step."""
    runs_dir: str = "runs"
    resume: str | None = None
    """checkpoint.pt of a run to continue exactly."""
    progress: bool = True
    threads: int = 0
    """torch threads (0: torch's default)."""

    def __post_init__(self) -> None:
        parse_tasks(self.tasks)
        for name in ("batch_size", "num_stories", "eval_every", "checkpoint_every"):
            positive_int(name, getattr(self, name))
        for name in ("embedding_size", "eval_stories", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(f"--valid-fraction must be in (0, 1), got {self.valid_fraction}")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if self.grad_clip < 0:
            raise ValueError(f"--grad-clip must be >= 0 (0 disables), got {self.grad_clip}")
        memory_models.check_model_options(self)


def parse_tasks(values: Sequence[str]) -> tuple[int, ...]:
    """``("1", "2")`` -> ``(1, 2)``; ``("all",)`` -> 1..20; anything else a ``ValueError`` naming it."""
    if list(values) == ["all"]:
        return babi.TASKS
    tasks = []
    for value in values:
        if not str(value).isdigit() or not 1 <= int(value) <= 20:
            raise ValueError(f"--tasks takes bAbI task numbers 1-20 or 'all', got {value!r}")
        tasks.append(int(value))
    if not tasks:
        raise ValueError("--tasks needs at least one task number (1-20) or 'all'")
    return tuple(sorted(set(tasks)))


# ------------------------------------------------------------------------------------ data
@dataclasses.dataclass
class BabiData:
    """Stories per task and split, and the vocabulary of all of them."""

    tasks: tuple[int, ...]
    train: dict[int, list[babi.Story]]
    valid: dict[int, list[babi.Story]]
    test: dict[int, list[babi.Story]]
    vocab: babi.Vocabulary
    directory: Path


def load_data(args: BabiArgs) -> BabiData:
    """Read (downloading if needed) and check the tasks' files, split validation stories off."""
    tasks = parse_tasks(args.tasks)
    directory = babi.find_directory(args.data_dir)
    missing = [(t, s) for t in tasks for s in ("train", "test") if not any(directory.glob(f"qa{t}_*_{s}.txt"))]
    if missing and args.download:
        try:
            directory = babi.fetch(args.data_dir)
        except OSError as e:
            names = ", ".join(f"qa{t}_*_{s}.txt" for t, s in missing[:4]) + (" ..." if len(missing) > 4 else "")
            raise DataError(f"bAbI files missing in {directory} ({names}) and the download failed ({e}); put the "
                            f"en-10k folder of {babi.SOURCE} there, or pass --data-dir") from None
    if args.verify:
        babi.check_files(directory, tasks)
    else:  # still name a missing file in one line
        for t in tasks:
            for s in ("train", "test"):
                try:
                    babi.task_file(directory, t, s)
                except FileNotFoundError as e:
                    raise DataError(str(e)) from None
    train, valid, test = {}, {}, {}
    for t in tasks:
        stories = babi.load(directory, t, "train")
        order = torch.randperm(len(stories), generator=torch.Generator().manual_seed(SPLIT_SEED + t)).tolist()
        held = max(1, round(args.valid_fraction * len(stories)))
        if held >= len(stories):
            raise DataError(f"task {t} has {len(stories)} training stories: too few to hold {held} out")
        valid[t] = [stories[i] for i in order[:held]]
        train[t] = [stories[i] for i in order[held:]]
        test[t] = babi.load(directory, t, "test")
    vocab = babi.Vocabulary([s for split in (train, valid, test) for t in tasks for s in split[t]])
    return BabiData(tasks, train, valid, test, vocab, directory)


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch's batches of story indices: a fresh permutation from ``(seed, epoch)`` cut into runs
    of :data:`BUCKET` batches, each run sorted by length and cut into batches, the batches shuffled.
    A function of its arguments only, so a resumed run draws the same batches."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=gen).tolist()
    batches = []
    run = batch_size * BUCKET
    for start in range(0, len(order), run):
        chunk = sorted(order[start:start + run], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in shuffled]


# ----------------------------------------------------------------------------------- model
class BabiModel(nn.Module):
    """Words in, word logits out: ``tokens [T, B]`` -> ``[T, B, vocab]`` through a memory model.

    ``encode`` gives the model's inputs ``[T, B, in]``: word one-hots (``in = vocab``) or a learned
    embedding (``in = embedding_size``); ``core`` is the memory model (``memory_models.make_model``).
    """

    def __init__(self, args: BabiArgs, vocab_size: int, device: torch.device) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = (nn.Embedding(vocab_size, args.embedding_size, device=device)
                          if args.embedding_size else None)
        width = args.embedding_size or vocab_size
        self.core = memory_models.make_model(args, width, vocab_size, device)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            return self.embedding(tokens)
        return F.one_hot(tokens, self.vocab_size).float()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits, _ = self.core(self.encode(tokens))
        return logits


def answer_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at the answer slots only: ``logits [T, B, V]``, ``targets [T, B]`` (-100 elsewhere)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


@torch.no_grad()
def question_errors(model: BabiModel, stories: Sequence[babi.Story], vocab: babi.Vocabulary, device: torch.device,
                    batch_size: int = 32) -> tuple[int, int]:
    """``(wrong, questions)`` over ``stories``: a question is wrong when any of its answer words is."""
    wrong = total = 0
    order = sorted(range(len(stories)), key=lambda i: len(stories[i].tokens))
    for start in range(0, len(order), batch_size):
        batch = [stories[i] for i in order[start:start + batch_size]]
        tokens, targets = vocab.encode(batch, device)
        predictions = model(tokens).argmax(dim=-1)  # [T, B]
        for j, story in enumerate(batch):
            slots = targets[:, j] != -100
            correct = (predictions[slots, j] == targets[slots, j]).tolist()  # answer words in order
            at = 0
            for n in story.words_per_question:
                wrong += not all(correct[at:at + n])
                at += n
            total += len(story.words_per_question)
    return wrong, total


def error_table(model: BabiModel, stories: dict[int, list[babi.Story]], vocab: babi.Vocabulary,
                device: torch.device, prefix: str, limit: int = 0) -> dict[str, float]:
    """``{prefix/error/qa<k>: fraction wrong, prefix/mean_error, prefix/failed_tasks}``."""
    was_training = model.training
    model.eval()
    results: dict[str, float] = {}
    for task, task_stories in stories.items():
        wrong, total = question_errors(model, task_stories[:limit] if limit else task_stories, vocab, device)
        results[f"{prefix}/error/qa{task}"] = wrong / total
    errors = list(results.values())
    results[f"{prefix}/mean_error"] = sum(errors) / len(errors)
    results[f"{prefix}/failed_tasks"] = float(sum(e > FAILED for e in errors))
    model.train(was_training)
    return results


def log_figure(logger: RunLogger, model: BabiModel, story: babi.Story, vocab: babi.Vocabulary, step: int,
               device: torch.device, png_dir: Path | None) -> None:
    """The memory figure of one story: word one-hots (or embeddings) in, answer one-hots, output softmax."""
    tokens, targets = vocab.encode([story], device)
    with torch.no_grad():
        inputs = model.encode(tokens)[:, 0]  # [T, in]
    memory = trace(model.core, inputs)
    answers = torch.zeros(tokens.shape[0], len(vocab))
    slots = (targets[:, 0] != -100).cpu()
    answers[slots, targets[slots.to(targets.device), 0].cpu()] = 1.0
    png = None if png_dir is None else png_dir / f"memory-{step}.png"
    log_memory_figure(logger.writer, "memory/figure", step, inputs.cpu(), answers, memory, png=png,
                      title=f"{type(model.core).__name__} on a bAbI story after {step:,} stories", output="softmax")


# ----------------------------------------------------------------------------------- train
def train(args: BabiArgs, stop_at: int | None = None) -> dict[str, Any]:
    """Train (or resume) one run; returns ``{"run_dir", "stories", "eval", "test", "model", "interrupted"}``
    (``eval``: the last validation table; ``test``: the test table when the run finished).
    ``stop_at`` ends the run early at that many stories, leaving its checkpoint (tests of resuming)."""
    checkpoint = None
    if args.resume is not None:
        checkpoint = load_checkpoint(args.resume)
        if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint.get("experiment") != EXPERIMENT:
            raise ValueError(f"{args.resume} is not a {EXPERIMENT} checkpoint (format {CHECKPOINT_FORMAT})")
        saved = {**memory_models.OPTIONS_BEFORE_THEY_EXISTED, **checkpoint["args"]}
        args = dataclasses.replace(rebuild(args, saved), resume=args.resume)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_data(args)  # before any file is written: bad data is refused with nothing left behind
    if checkpoint is not None and checkpoint["vocab"] != data.vocab.words:
        raise ValueError(f"{args.resume} was trained on another vocabulary than the files in {data.directory} give")
    seed_everything(args.seed)
    model = BabiModel(args, len(data.vocab), device)
    optimizer = memory_models.make_optimizer(args, model)
    pool = [s for t in data.tasks for s in data.train[t]]
    lengths = [len(s.tokens) for s in pool]
    seen, epoch, position = 0, 0, 0
    run_dir = None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        set_rng_state(checkpoint["rng"])
        seen, epoch, position = int(checkpoint["stories"]), int(checkpoint["epoch"]), int(checkpoint["position"])
        run_dir = Path(args.resume).parent
    tasks_name = "babi-" + ("all" if data.tasks == babi.TASKS else "-".join(f"qa{t}" for t in data.tasks))
    logger = RunLogger(tasks_name, f"{EXPERIMENT}-{args.model}", args.seed, config=args, root=args.runs_dir,
                       total_steps=args.num_stories, progress=args.progress, run_dir=run_dir, start_step=seen,
                       metrics=("eval/mean_error",))
    pictures = logger.run_dir / "pictures" if args.save_pictures else None
    figure_story = data.valid[data.tasks[0]][0]
    draw = args.model in ("dnc", "ntm")

    def save() -> None:
        save_checkpoint(logger.checkpoint_path(), {
            "format": CHECKPOINT_FORMAT, "experiment": EXPERIMENT, "args": dataclasses.asdict(args),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": get_rng_state(),
            "stories": seen, "epoch": epoch, "position": position, "vocab": data.vocab.words,
        })

    def evaluate() -> dict[str, float]:
        results = error_table(model, data.valid, data.vocab, device, "eval", args.eval_stories)
        logger.log_scalars(results, seen)
        if draw:
            log_figure(logger, model, figure_story, data.vocab, seen, device, pictures)
        return results

    results: dict[str, float] = {}
    test: dict[str, float] = {}
    batches = epoch_batches(lengths, args.batch_size, args.seed, epoch)
    with StopRequests() as stop:  # Ctrl-C / SIGTERM: finish the step, checkpoint, return
        try:
            while seen < args.num_stories:
                if position >= len(batches):
                    epoch, position = epoch + 1, 0
                    batches = epoch_batches(lengths, args.batch_size, args.seed, epoch)
                indices = batches[position][: args.num_stories - seen]
                tokens, targets = data.vocab.encode([pool[i] for i in indices], device)
                loss = answer_loss(model(tokens), targets)
                optimizer.zero_grad(set_to_none=True)
                memory_models.set_learning_rate(
                    optimizer, memory_models.annealed_learning_rate(args, seen, args.num_stories))
                loss.backward()
                if args.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
                optimizer.step()
                position += 1
                before, seen = seen, seen + len(indices)
                if seen // 100 > before // 100 or seen >= args.num_stories:
                    logger.log_scalars({"train/loss": loss.item()}, seen)
                logger.progress(seen)
                if seen // args.eval_every > before // args.eval_every or seen >= args.num_stories:
                    results = evaluate()
                if seen // args.checkpoint_every > before // args.checkpoint_every or seen >= args.num_stories:
                    save()
                if (stop_at is not None and seen >= stop_at) or stop.requested:
                    save()
                    break
            if seen >= args.num_stories and not stop.requested:
                test = error_table(model, data.test, data.vocab, device, "test")
                logger.log_scalars(test, seen)
                write_test_errors(logger.run_dir / "test_errors.csv", data.tasks, test)
        finally:
            logger.close()
    return {"run_dir": logger.run_dir, "stories": seen, "eval": results, "test": test, "model": model,
            "interrupted": stop.signal}


def write_test_errors(path: Path, tasks: Sequence[int], test: dict[str, float]) -> None:
    """One row per task (number, name, test error), then the mean and the failed count."""
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["task", "name", "test_error"])
        for t in tasks:
            out.writerow([t, babi.TASK_NAMES[t], f"{test[f'test/error/qa{t}']:.4f}"])
        out.writerow(["mean", "", f"{test['test/mean_error']:.4f}"])
        out.writerow(["failed (> 5%)", "", int(test["test/failed_tasks"])])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point; prints the test errors and where the logs are."""
    keep_freed_memory()
    _, result = parse_and_run(BabiArgs, train, argv, __doc__)
    if result["interrupted"] is not None:
        checkpoint = Path(result["run_dir"]) / "checkpoint.pt"
        print(f"interrupted ({signal.Signals(result['interrupted']).name}) at {result['stories']:,} stories: "
              f"checkpoint {checkpoint}; continue with: python -m experiments.babi --resume {checkpoint}",
              file=sys.stderr)
        raise SystemExit(128 + result["interrupted"])
    for tag, value in result["test"].items():
        print(f"{tag}: {value:.4f}" if "failed" not in tag else f"{tag}: {int(value)}")
    print(f"logs and checkpoint: {result['run_dir']}")
    return result


if __name__ == "__main__":
    main()
