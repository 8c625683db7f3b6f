"""Character-level language model on a text file, with samples at a chosen temperature.

    python -m experiments.char_lm                                  # a generated corpus
    python -m experiments.char_lm --text-file my_book.txt --steps 20000 --hidden-size 512
    python -m experiments.char_lm --text-file my_book.txt --cell gru --temperature 0.6

The last ``--val-fraction`` of the text is held out. Training batches are random windows of the
training text (one gather on the device per batch); validation runs over the whole held-out text
in parallel contiguous streams with the recurrent state carried across chunks, so ``eval/loss``
is the exact per-character cross-entropy (nats) of the held-out text. The unigram model's loss on
the same text is printed and logged once (``eval/unigram_loss``) as the baseline to beat.
TensorBoard: ``train/loss``, ``eval/loss``, ``eval/bits_per_char``, text ``samples``. The
checkpoint (model, optimizer, vocabulary, step) is written atomically at every evaluation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from experiments.common import parse_and_run, resolve_device
from foundations import optim
from foundations.checks import positive_int
from foundations.runlog import RunLogger, Tags, save_checkpoint
from foundations.seeding import get_rng_state, seed_everything
from foundations.sequence import CharLM, CharVocab, unigram_loss
from foundations.synthetic import sentences


@dataclasses.dataclass(frozen=True)
class CharLMArgs:
    """Options of the character language-model experiment."""

    text_file: str | None = None
    """UTF-8 text to model (default: 4,000 generated sentences)."""
    val_fraction: float = 0.1
    seq_len: int = 128
    """characters per training window (truncated backpropagation length)."""
    batch_size: int = 64
    steps: int = 2000
    cell: Literal["lstm", "gru"] = "lstm"
    embedding_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1
    lr: float = 2e-3
    clip_grad_norm: float = 1.0
    eval_every: int = 250
    sample_length: int = 300
    temperature: float = 0.8
    prompt: str = "The "
    """start of each sample (characters must occur in the text)."""
    seed: int = 1
    device: str = "auto"
    root: str = "runs"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("seq_len", "batch_size", "steps", "eval_every", "sample_length"):
            positive_int(name, getattr(self, name))
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")


def read_text(args: CharLMArgs) -> str:
    """The corpus: the user's file, or the generated default."""
    if args.text_file is None:
        return sentences(4000, seed=args.seed)
    path = Path(args.text_file)
    if not path.is_file():
        raise ValueError(f"text file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if len(text) < 10 * args.seq_len:
        raise ValueError(f"{path} has {len(text)} characters; need at least 10 x seq_len = {10 * args.seq_len}")
    return text


@torch.no_grad()
def stream_loss(model: CharLM, ids: Tensor, seq_len: int, streams: int = 32) -> float:
    """Mean next-character cross-entropy over ``ids [n]``, read as ``streams`` contiguous parts
    processed in parallel with the state carried from chunk to chunk."""
    was_training = model.training
    model.eval()
    streams = max(1, min(streams, len(ids) // (seq_len + 1)))
    per = len(ids) // streams
    grid = ids[: per * streams].view(streams, per)
    total, count, state = 0.0, 0, None
    for start in range(0, per - 1, seq_len):
        chunk = grid[:, start : start + seq_len + 1]
        logits, state = model(chunk[:, :-1], state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, model.vocab_size), chunk[:, 1:].reshape(-1), reduction="sum")
        total += loss.item()
        count += chunk[:, 1:].numel()
    model.train(was_training)
    return total / count


def run(args: CharLMArgs) -> dict[str, Any]:
    """Train; returns run_dir, the final validation and unigram losses, a sample, the model."""
    device = resolve_device(args.device)
    seed_everything(args.seed)
    text = read_text(args)
    vocab = CharVocab.from_text(text)
    prompt = vocab.encode(args.prompt).to(device)  # checks the prompt's characters early
    ids = vocab.encode(text).to(device)
    split = int(len(ids) * (1 - args.val_fraction))
    train_ids, val_ids = ids[:split], ids[split:]
    if len(train_ids) <= args.seq_len + 1 or len(val_ids) <= args.seq_len + 1:
        raise ValueError(f"text too short for seq_len {args.seq_len} with val_fraction {args.val_fraction}")
    model = CharLM(len(vocab), args.embedding_dim, args.hidden_size, args.num_layers, args.cell, args.dropout).to(device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    baseline = unigram_loss(train_ids, val_ids, len(vocab))
    window = torch.arange(args.seq_len + 1, device=device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    logger = RunLogger(Path(args.text_file).stem if args.text_file else "generated", "char_lm", args.seed, args,
                       root=args.root, total_steps=args.steps, progress=args.progress,
                       metrics=(Tags.EVAL_LOSS,))  # fmt: skip
    val_loss = math.nan
    sample = ""
    try:
        logger.log_scalar("eval/unigram_loss", baseline, 0)
        running = torch.zeros((), device=device)
        for step in range(1, args.steps + 1):
            starts = torch.randint(0, len(train_ids) - args.seq_len - 1, (args.batch_size,), device=device, generator=gen)
            batch = train_ids[starts[:, None] + window]  # [batch, seq_len + 1]
            loss, _ = model.loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad_norm)
            opt.step()
            running += loss.detach()
            if step % args.eval_every == 0 or step == args.steps:
                span = args.eval_every if step % args.eval_every == 0 else step % args.eval_every
                logger.log_scalar(Tags.TRAIN_LOSS, running / span, step)
                running.zero_()
                val_loss = stream_loss(model, val_ids, args.seq_len)
                logger.log_scalar(Tags.EVAL_LOSS, val_loss, step)
                logger.log_scalar("eval/bits_per_char", val_loss / math.log(2), step)
                sample_gen = torch.Generator().manual_seed(args.seed + step)
                sample = args.prompt + vocab.decode(
                    model.sample(prompt, args.sample_length, args.temperature, generator=sample_gen)
                )
                logger.writer.add_text("samples", "    " + sample.replace("\n", "\n    "), step)
                save_checkpoint(logger.checkpoint_path(), {
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "vocab": "".join(vocab.chars),
                    "step": step, "args": dataclasses.asdict(args), "rng": get_rng_state(),
                })  # fmt: skip
            logger.progress(step)
    finally:
        logger.close()
    return {"run_dir": logger.run_dir, "val_loss": val_loss, "unigram_loss": baseline, "sample": sample,
            "model": model, "vocab": vocab}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point; prints the losses and a sample."""
    args, r = parse_and_run(CharLMArgs, run, argv, __doc__)
    print(f"validation loss {r['val_loss']:.4f} nats/char ({r['val_loss'] / math.log(2):.3f} bits), "
          f"unigram baseline {r['unigram_loss']:.4f}")  # fmt: skip
    print(f"sample (temperature {args.temperature}):\n{r['sample']}")
    print(f"logs and checkpoint: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
