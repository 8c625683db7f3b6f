"""word2vec (skip-gram or CBOW with negative sampling) on a text file or a generated corpus.

    python -m experiments.word2vec                                   # planted word groups
    python -m experiments.word2vec --text-file corpus.txt --dim 100 --epochs 5 --min-count 5
    python -m experiments.word2vec --mode cbow --query king --query paris

The text is lower-cased and split on non-letters. The default corpus plants groups of words
that share contexts, so the run can check itself: ``eval/neighbour_precision`` is the share of
each planted word's nearest neighbours that belong to its group. TensorBoard: ``train/loss``,
text ``neighbours`` (a table for the query words, or the most frequent words), and the word
vectors in the PROJECTOR tab.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from experiments.common import parse_and_run, resolve_device
from foundations import optim
from foundations.checks import positive_int
from foundations.embeddings import Vocabulary, Word2Vec, cbow_examples, skipgram_pairs, subsample
from foundations.runlog import RunLogger, Tags, save_checkpoint
from foundations.seeding import seed_everything
from foundations.synthetic import planted_corpus


@dataclasses.dataclass(frozen=True)
class Word2VecArgs:
    """Options of the word2vec experiment."""

    text_file: str | None = None
    """UTF-8 text (default: a generated corpus with planted word groups)."""
    mode: Literal["skipgram", "cbow"] = "skipgram"
    dim: int = 50
    window: int = 3
    negatives: int = 5
    min_count: int = 1
    subsample_threshold: float = 1e-2
    """keep-probability threshold for frequent words (word2vec's -sample; 1e-3..1e-5 on real text)."""
    epochs: int = 3
    batch_size: int = 512
    lr: float = 1e-2
    neighbours: int = 5
    query: tuple[str, ...] = ()
    """words whose neighbours to list (default: the 10 most frequent)."""
    seed: int = 1
    device: str = "auto"
    root: str = "runs"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("dim", "window", "negatives", "epochs", "batch_size", "neighbours"):
            positive_int(name, getattr(self, name))


def tokenize(text: str) -> list[str]:
    """Lower-case words (runs of letters, apostrophes inside words kept)."""
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


def neighbour_precision(model: Word2Vec, vocab: Vocabulary, groups: list[list[str]]) -> float:
    """Share of each planted word's ``len(group) - 1`` nearest neighbours that are in its group."""
    hits = total = 0
    for group in groups:
        for word in group:
            if word not in vocab:
                continue
            ids, _ = model.nearest(vocab.id(word), k=len(group) - 1)
            hits += len({vocab.words[i] for i in ids.tolist()} & set(group))
            total += len(group) - 1
    return hits / max(total, 1)


def run(args: Word2VecArgs) -> dict[str, Any]:
    """Train; returns run_dir, the model, the vocabulary, the neighbour table (and precision)."""
    device = resolve_device(args.device)
    seed_everything(args.seed)
    groups: list[list[str]] = []
    if args.text_file is None:
        tokens, groups = planted_corpus(seed=args.seed)
    else:
        path = Path(args.text_file)
        if not path.is_file():
            raise ValueError(f"text file not found: {path}")
        tokens = tokenize(path.read_text(encoding="utf-8"))
    vocab = Vocabulary.build(tokens, min_count=args.min_count)
    for word in args.query:
        vocab.id(word)  # an unknown query word is an error before training, not after
    ids = vocab.encode(tokens).to(device)
    model = Word2Vec(len(vocab), args.dim, vocab.counts, args.negatives).to(device)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    result: dict[str, Any] = {}
    with RunLogger(Path(args.text_file).stem if args.text_file else "planted", "word2vec", args.seed, args,
                   root=args.root, progress=args.progress, metrics=("eval/neighbour_precision",)) as logger:  # fmt: skip
        step = 0
        for _ in range(args.epochs):
            kept = subsample(ids.cpu(), vocab.counts, args.subsample_threshold, g).to(device)
            if args.mode == "skipgram":
                centers, contexts = skipgram_pairs(kept, args.window, g)
                examples = (centers, contexts)
            else:
                examples = cbow_examples(kept, args.window)
            order = torch.randperm(len(examples[0]), generator=g).to(device)
            for start in range(0, len(order), args.batch_size):
                idx = order[start : start + args.batch_size]
                batch = [t[idx] for t in examples]
                loss = model.loss(*batch, g) if args.mode == "skipgram" else model.cbow_loss(*batch, g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step % 100 == 0:
                    logger.log_scalar(Tags.TRAIN_LOSS, loss, step)
                    logger.progress(step)
        queries = list(args.query) or vocab.words[:10]
        table = ["| word | nearest neighbours (cosine) |", "|---|---|"]
        rows = {}
        for word in queries:
            near, sims = model.nearest(vocab.id(word), k=args.neighbours)
            rows[word] = [(vocab.words[i], float(s)) for i, s in zip(near.tolist(), sims.tolist(), strict=True)]
            table.append(f"| {word} | " + ", ".join(f"{w} ({s:.2f})" for w, s in rows[word]) + " |")
        logger.writer.add_text("neighbours", "\n".join(table), step)
        logger.writer.add_embedding(model.vectors.cpu(), metadata=vocab.words, global_step=step, tag="words")
        if groups:
            result["neighbour_precision"] = neighbour_precision(model, vocab, groups)
            logger.log_scalar("eval/neighbour_precision", result["neighbour_precision"], step)
        save_checkpoint(logger.checkpoint_path(), {"model": model.state_dict(), "words": vocab.words,
                                                   "args": dataclasses.asdict(args)})  # fmt: skip
    return {**result, "run_dir": logger.run_dir, "model": model, "vocab": vocab, "neighbours": rows}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(Word2VecArgs, run, argv, __doc__)
    for word, near in r["neighbours"].items():
        print(f"{word:>12}: " + ", ".join(f"{w} ({s:.2f})" for w, s in near))
    if "neighbour_precision" in r:
        print(f"planted-group neighbour precision: {r['neighbour_precision']:.3f}")
    print(f"logs: {r['run_dir']}")
    return r


if __name__ == "__main__":
    main()
