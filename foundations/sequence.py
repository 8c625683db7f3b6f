"""Recurrent sequence models: a sequence classifier, a character language model with sampling,
and an encoder-decoder with attention.

Shapes are batch-first: tokens ``[batch, time]`` (int64), features ``[batch, time, features]``.
Variable-length batches are right-padded and come with ``lengths [batch]``; the recurrent
layers run on packed sequences, so padding never reaches a hidden state and a padded batch
gives the same result as each sequence run alone (tests check this).

- :class:`SequenceClassifier`: embedding (or features) -> LSTM/GRU (bidirectional optional) ->
  the final hidden state(s) -> linear logits ``[batch, classes]``.
- :class:`CharLM`: embedding -> LSTM/GRU -> logits ``[batch, time, vocab]`` over the next
  character; :meth:`CharLM.sample` continues a prompt at a temperature. :class:`CharVocab`
  maps text to ids and back.
- :class:`Seq2Seq`: bidirectional GRU encoder, GRU decoder attending over the encoder states
  (Luong "general" or Bahdanau additive scores), teacher forcing with a ratio, greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from foundations.checks import choose, positive_int

__all__ = ["CharLM", "CharVocab", "Seq2Seq", "SequenceClassifier", "unigram_loss"]

Cell = Literal["lstm", "gru"]
_CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}
State = Tensor | tuple[Tensor, Tensor]
"""A recurrent state: ``h [layers, batch, hidden]`` (GRU) or ``(h, c)`` (LSTM)."""


def _lengths(lengths: Tensor | Sequence[int] | None, batch: int, time: int) -> Tensor:
    """Validated lengths on the CPU (what ``pack_padded_sequence`` wants)."""
    if lengths is None:
        return torch.full((batch,), time, dtype=torch.int64)
    lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape [{batch}], got {list(lengths.shape)}")
    if len(lengths) and (lengths.min() < 1 or lengths.max() > time):
        raise ValueError(f"lengths must be in [1, {time}] (the padded length), got {lengths.tolist()}")
    return lengths


def _check_tokens(tokens: Tensor, vocab_size: int, name: str = "tokens") -> None:
    if tokens.ndim != 2 or tokens.dtype != torch.int64:
        raise ValueError(f"{name} must be int64 [batch, time], got {tokens.dtype} {list(tokens.shape)}")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"{name} must be ids in [0, {vocab_size}), got {tokens.min().item()}..{tokens.max().item()}")


class SequenceClassifier(nn.Module):
    """Classify whole sequences from the recurrent net's final hidden state.

    Args:
      num_classes: output width.
      vocab_size: token inputs ``[batch, time]`` are embedded (``embedding_dim``) ...
      input_size: ... or feature inputs ``[batch, time, input_size]`` go in directly (give one).
      hidden_size / num_layers / cell / bidirectional / dropout: the recurrent stack
        (``dropout`` between layers and before the output layer).
    """

    def __init__(
        self,
        num_classes: int,
        vocab_size: int | None = None,
        input_size: int | None = None,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        cell: Cell = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        padding_idx: int | None = 0,
    ) -> None:
        super().__init__()
        positive_int("num_classes", num_classes)
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (token inputs) and input_size (feature inputs)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.vocab_size = vocab_size
        self.embedding = (
            nn.Embedding(positive_int("vocab_size", vocab_size), embedding_dim, padding_idx=padding_idx)
            if vocab_size is not None
            else None
        )
        rnn_in = embedding_dim if vocab_size is not None else positive_int("input_size", input_size)
        self.rnn = choose("cell", cell, _CELLS)(
            rnn_in, positive_int("hidden_size", hidden_size), positive_int("num_layers", num_layers),
            batch_first=True, bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
        )  # fmt: skip
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * self.directions, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | Sequence[int] | None = None) -> Tensor:
        """``x``: tokens ``[batch, time]`` or features ``[batch, time, input_size]``; ``lengths``
        ``[batch]`` (default: all full) -> logits ``[batch, num_classes]``."""
        if self.embedding is not None:
            _check_tokens(x, self.vocab_size)  # type: ignore[arg-type]
            x = self.embedding(x)
        elif x.ndim != 3:
            raise ValueError(f"feature inputs must be [batch, time, features], got {list(x.shape)}")
        lens = _lengths(lengths, x.shape[0], x.shape[1])
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)
        h_n = h[0] if isinstance(h, tuple) else h  # [layers * directions, batch, hidden]
        last = h_n[-self.directions :]  # the top layer's final state in each direction
        features = last.transpose(0, 1).reshape(x.shape[0], -1)  # [batch, directions * hidden]
        return self.head(self.dropout(features))


class CharVocab:
    """Characters <-> ids. Built from a text (sorted characters), so the same text gives the
    same ids on every machine."""

    def __init__(self, chars: Sequence[str]) -> None:
        self.chars = list(dict.fromkeys(chars))
        if not self.chars or any(len(c) != 1 for c in self.chars):
            raise ValueError("CharVocab needs a non-empty sequence of single characters")
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        """``[len(text)]`` int64 ids; characters outside the vocabulary are an error."""
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]}")
        return torch.tensor([self.index[c] for c in text], dtype=torch.int64)

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)


class CharLM(nn.Module):
    """A character-level language model: ``p(c_{t+1} | c_{<=t})``.

    ``forward(tokens [batch, time], state) -> (logits [batch, time, vocab], state)``; train
    with cross-entropy against the tokens shifted by one (:meth:`loss`), carrying ``state``
    (detached) across consecutive chunks for truncated backpropagation through time.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 2,
        cell: Cell = "lstm",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.embedding = nn.Embedding(vocab_size, positive_int("embedding_dim", embedding_dim))
        self.rnn = choose("cell", cell, _CELLS)(
            embedding_dim, positive_int("hidden_size", hidden_size), positive_int("num_layers", num_layers),
            batch_first=True, dropout=dropout if num_layers > 1 else 0.0,
        )  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``tokens [batch, time]`` -> ``(logits [batch, time, vocab], state)``."""
        _check_tokens(tokens, self.vocab_size)
        out, state = self.rnn(self.embedding(tokens), state)
        return self.head(self.dropout(out)), state

    def loss(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Mean next-character cross-entropy (nats) of ``tokens [batch, time]`` (predicting
        ``tokens[:, 1:]`` from ``tokens[:, :-1]``) and the final state."""
        if tokens.shape[1] < 2:
            raise ValueError(f"need at least 2 time steps to predict a next character, got {tokens.shape[1]}")
        logits, state = self(tokens[:, :-1], state)
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), tokens[:, 1:].reshape(-1)), state

    @torch.no_grad()
    def sample(
        self,
        prompt: Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue ``prompt [batch, time]`` (or ``[time]``) by ``length`` characters.

        Each character is drawn from ``softmax(logits / temperature)`` (``temperature -> 0``:
        greedy; ``temperature = 0`` is exactly greedy), restricted to the ``top_k`` most likely
        when given. Returns the new ids ``[batch, length]`` (``[length]`` for a 1-d prompt).
        """
        squeeze = prompt.ndim == 1
        prompt = prompt[None] if squeeze else prompt
        positive_int("length", length)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None:
            positive_int("top_k", top_k)
        if prompt.shape[1] < 1:
            raise ValueError("prompt must hold at least one character")
        was_training = self.training
        self.eval()
        try:
            logits, state = self(prompt)
            last = logits[:, -1]
            out = []
            for _ in range(length):
                if top_k is not None and top_k < self.vocab_size:
                    kth = last.topk(top_k, dim=-1).values[:, -1:]
                    last = last.masked_fill(last < kth, float("-inf"))
                if temperature == 0:
                    nxt = last.argmax(-1, keepdim=True)
                else:
                    probs = F.softmax(last / temperature, dim=-1)
                    nxt = torch.multinomial(probs.cpu() if generator is not None else probs, 1, generator=generator)
                    nxt = nxt.to(prompt.device)
                out.append(nxt)
                logits, state = self(nxt, state)
                last = logits[:, -1]
        finally:
            self.train(was_training)
        ids = torch.cat(out, dim=1)
        return ids[0] if squeeze else ids


def unigram_loss(train_ids: Tensor, eval_ids: Tensor, vocab_size: int, smoothing: float = 1.0) -> float:
    """Cross-entropy (nats per character) on ``eval_ids`` of the unigram model fitted to
    ``train_ids`` with add-``smoothing`` counts: the baseline a language model must beat."""
    counts = torch.bincount(train_ids.flatten().cpu(), minlength=vocab_size).double() + smoothing
    log_p = counts.log() - counts.sum().log()
    return float(-log_p[eval_ids.flatten().cpu()].mean())


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015).

    The encoder is a bidirectional GRU over the embedded, packed source; the decoder is a GRU
    cell whose input at step t is the embedded previous target token and the previous attention
    output. At each step it scores every encoder state against its hidden state ("general":
    ``h^T W e``; "additive": ``v^T tanh(W_h h + W_e e)``), masks padding, and combines the
    softmax-weighted context with the hidden state into the output ``tanh(W_c [context; h])``.

    Token conventions: ``bos`` starts decoding, ``eos`` ends a greedy decode, ``pad`` (id 0 by
    default) pads targets and is ignored by :meth:`loss`.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        attention: Literal["general", "additive"] = "general",
        pad: int = 0,
        bos: int = 1,
        eos: int = 2,
    ) -> None:
        super().__init__()
        self.src_vocab = positive_int("src_vocab", src_vocab)
        self.tgt_vocab = positive_int("tgt_vocab", tgt_vocab)
        for name, token in (("pad", pad), ("bos", bos), ("eos", eos)):
            if not 0 <= token < tgt_vocab:
                raise ValueError(f"{name} id must be in [0, {tgt_vocab}), got {token}")
        self.pad, self.bos, self.eos = pad, bos, eos
        self.attention = choose("attention", attention, {"general": "general", "additive": "additive"})
        h = positive_int("hidden_size", hidden_size)
        self.src_embedding = nn.Embedding(src_vocab, embedding_dim, padding_idx=pad if pad < src_vocab else None)
        self.tgt_embedding = nn.Embedding(tgt_vocab, embedding_dim, padding_idx=pad)
        self.encoder = nn.GRU(embedding_dim, h, batch_first=True, bidirectional=True)
        self.enc_to_dec = nn.Linear(2 * h, h)  # encoder states (2h) live in the decoder's space (h)
        self.bridge = nn.Linear(2 * h, h)  # final encoder states -> initial decoder state
        self.decoder = nn.GRUCell(embedding_dim + h, h)
        if attention == "general":
            self.score_w = nn.Linear(h, h, bias=False)
        else:
            self.score_h = nn.Linear(h, h, bias=False)
            self.score_e = nn.Linear(h, h)
            self.score_v = nn.Linear(h, 1, bias=False)
        self.combine = nn.Linear(2 * h, h)
        self.out = nn.Linear(h, tgt_vocab)

    def encode(
        self, src: Tensor, src_lengths: Tensor | Sequence[int] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``src [batch, S]`` -> encoder states ``[batch, S, hidden]``, mask ``[batch, S]`` (True
        on real tokens) and the initial decoder state ``[batch, hidden]``."""
        _check_tokens(src, self.src_vocab, "src")
        lens = _lengths(src_lengths, src.shape[0], src.shape[1])
        packed = pack_padded_sequence(self.src_embedding(src), lens, batch_first=True, enforce_sorted=False)
        states, h_n = self.encoder(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lens.to(src.device)[:, None]
        h0 = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1)))
        return self.enc_to_dec(states), mask, h0

    def _attend(self, h: Tensor, keys: Tensor, mask: Tensor, projected: Tensor | None) -> tuple[Tensor, Tensor]:
        """Attention weights ``[batch, S]`` and context ``[batch, hidden]`` for decoder state ``h``."""
        if self.attention == "general":
            scores = torch.bmm(keys, self.score_w(h).unsqueeze(2)).squeeze(2)
        else:
            scores = self.score_v(torch.tanh(projected + self.score_h(h).unsqueeze(1))).squeeze(2)
        weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return weights, torch.bmm(weights.unsqueeze(1), keys).squeeze(1)

    def _decode(
        self,
        memory: tuple[Tensor, Tensor, Tensor],
        steps: int,
        tgt_in: Tensor | None,
        teacher_forcing: float,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:
        keys, mask, h = memory
        batch = keys.shape[0]
        projected = self.score_e(keys) if self.attention == "additive" else None
        attn_out = keys.new_zeros(batch, keys.shape[2])
        token = torch.full((batch,), self.bos, dtype=torch.int64, device=keys.device)
        logits, weights = [], []
        for t in range(steps):
            if tgt_in is not None:
                if teacher_forcing >= 1.0 or t == 0:
                    token = tgt_in[:, t]
                elif teacher_forcing > 0.0:
                    coin = torch.rand(batch, generator=generator).to(keys.device) < teacher_forcing
                    token = torch.where(coin, tgt_in[:, t], token)
            h = self.decoder(torch.cat([self.tgt_embedding(token), attn_out], dim=-1), h)
            w, context = self._attend(h, keys, mask, projected)
            attn_out = torch.tanh(self.combine(torch.cat([context, h], dim=-1)))
            step_logits = self.out(attn_out)
            logits.append(step_logits)
            weights.append(w)
            token = step_logits.argmax(-1)
        return torch.stack(logits, 1), torch.stack(weights, 1)

    def forward(
        self,
        src: Tensor,
        tgt_in: Tensor,
        src_lengths: Tensor | Sequence[int] | None = None,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Logits ``[batch, T, tgt_vocab]`` and attention ``[batch, T, S]`` for decoder inputs
        ``tgt_in [batch, T]`` (``bos`` followed by the target shifted right).

        ``teacher_forcing`` is the probability, per example and step, of feeding the true
        previous token rather than the model's own prediction (1: always, 0: free running).
        """
        _check_tokens(tgt_in, self.tgt_vocab, "tgt_in")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src and tgt_in batch sizes differ: {src.shape[0]} vs {tgt_in.shape[0]}")
        return self._decode(self.encode(src, src_lengths), tgt_in.shape[1], tgt_in, teacher_forcing, generator)

    def loss(self, logits: Tensor, tgt_out: Tensor) -> Tensor:
        """Mean cross-entropy over non-``pad`` target tokens ``tgt_out [batch, T]``."""
        return F.cross_entropy(logits.reshape(-1, self.tgt_vocab), tgt_out.reshape(-1), ignore_index=self.pad)

    @torch.no_grad()
    def greedy_decode(
        self, src: Tensor, max_length: int, src_lengths: Tensor | Sequence[int] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Greedy output ids ``[batch, max_length]`` (``pad`` after each sequence's ``eos``) and
        attention ``[batch, max_length, S]``."""
        positive_int("max_length", max_length)
        was_training = self.training
        self.eval()
        try:
            logits, weights = self._decode(self.encode(src, src_lengths), max_length, None, 0.0, None)
        finally:
            self.train(was_training)
        ids = logits.argmax(-1)
        ended = (ids == self.eos).long().cumsum(1)
        after_eos = (ended - (ids == self.eos).long()) > 0
        return ids.masked_fill(after_eos, self.pad), weights
