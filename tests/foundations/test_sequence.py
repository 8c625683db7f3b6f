"""Sequence models: padding invariance, sampling, attention masks, learning."""

from __future__ import annotations

import math

import pytest
import torch

from foundations import optim
from foundations.sequence import CharLM, CharVocab, Seq2Seq, SequenceClassifier, unigram_loss
from foundations.synthetic import sentences


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_padded_batch_equals_each_sequence_alone(cell: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    model = SequenceClassifier(4, vocab_size=20, embedding_dim=8, hidden_size=16, num_layers=2,
                               cell=cell, bidirectional=bidirectional).eval()  # fmt: skip
    lengths = [5, 2, 7]
    tokens = torch.zeros(3, 7, dtype=torch.int64)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(1, 20, (n,))
    batched = model(tokens, lengths)
    assert batched.shape == (3, 4)
    for i, n in enumerate(lengths):
        alone = model(tokens[i : i + 1, :n])
        torch.testing.assert_close(batched[i : i + 1], alone, atol=1e-6, rtol=0)
    tokens[1, 2:] = 13  # garbage in the padding changes nothing
    torch.testing.assert_close(model(tokens, lengths), batched)


def test_classifier_on_features_and_errors() -> None:
    model = SequenceClassifier(3, input_size=5, hidden_size=8)
    assert model(torch.randn(2, 4, 5), [4, 1]).shape == (2, 3)
    with pytest.raises(ValueError, match="give exactly one of vocab_size"):
        SequenceClassifier(3)
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 4\]"):
        model(torch.randn(2, 4, 5), [5, 1])
    with pytest.raises(ValueError, match=r"lengths must have shape \[2\]"):
        model(torch.randn(2, 4, 5), [4])
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        SequenceClassifier(3, input_size=5, cell="rnn")  # type: ignore[arg-type]
    tok = SequenceClassifier(3, vocab_size=10)
    with pytest.raises(ValueError, match=r"ids in \[0, 10\), got 0..12"):
        tok(torch.tensor([[0, 12]]))


@pytest.mark.slow
def test_classifier_learns_a_task_that_needs_memory() -> None:
    """Label = the first token of a variable-length sequence (must be carried to the end)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = SequenceClassifier(3, vocab_size=6, embedding_dim=8, hidden_size=32, cell="gru")
    opt = optim.Adam(model.parameters(), lr=1e-2)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lengths = torch.randint(3, 15, (n,), generator=g)
        tokens = torch.randint(3, 6, (n, 15), generator=g)
        tokens[:, 0] = torch.randint(0, 3, (n,), generator=g)
        return tokens, lengths, tokens[:, 0].clone()

    for _ in range(250):
        x, lengths, y = batch(64)
        loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, lengths, y = batch(500)
    with torch.no_grad():
        assert (model(x, lengths).argmax(1) == y).float().mean() > 0.97


def test_char_vocab_roundtrip_and_unknown() -> None:
    vocab = CharVocab.from_text("hello world")
    assert len(vocab) == 8 and vocab.chars[0] == " "
    assert vocab.decode(vocab.encode("low rod")) == "low rod"
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['z'\]"):
        vocab.encode("zero")


def test_unigram_loss_is_the_entropy_of_the_counts() -> None:
    ids = torch.tensor([0, 0, 0, 1])
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert unigram_loss(ids, ids, 2, smoothing=0.0) == pytest.approx(expected)


def test_char_lm_sampling_greedy_top_k_and_seeded() -> None:
    torch.manual_seed(0)
    lm = CharLM(7, embedding_dim=4, hidden_size=8, num_layers=1)
    prompt = torch.tensor([1, 2, 3])
    greedy = lm.sample(prompt, 10, temperature=0.0)
    assert greedy.shape == (10,)
    # Greedy continuation = argmax of the model run on the growing text.
    text = prompt.clone()
    for t in range(10):
        nxt = lm(text[None])[0][0, -1].argmax()
        assert nxt == greedy[t]
        text = torch.cat([text, nxt[None]])
    a = lm.sample(prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = lm.sample(prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(lm.sample(prompt, 10, top_k=1, generator=torch.Generator().manual_seed(2)), greedy)
    batch = lm.sample(torch.tensor([[1, 2], [3, 4]]), 5)
    assert batch.shape == (2, 5)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        lm.sample(prompt, 3, temperature=-1.0)


@pytest.mark.slow
def test_char_lm_beats_the_unigram_baseline() -> None:
    text = sentences(1500, seed=0)
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]
    torch.manual_seed(0)
    lm = CharLM(len(vocab), embedding_dim=32, hidden_size=128, num_layers=1)
    opt = optim.Adam(lm.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    seq = 64
    for _ in range(300):
        starts = torch.randint(0, len(train_ids) - seq - 1, (32,), generator=g)
        batch = torch.stack([train_ids[s : s + seq + 1] for s in starts.tolist()])
        loss, _ = lm.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        lm.eval()
        val_loss = lm.loss(val_ids[None])[0].item()
    baseline = unigram_loss(train_ids, val_ids, len(vocab))
    assert val_loss < 0.6 * baseline, (val_loss, baseline)


def _reversal_batch(n: int, g: torch.Generator, vocab: int = 10) -> tuple[torch.Tensor, ...]:
    """Reverse sequences of symbols 3..vocab-1 (0 pad, 1 bos, 2 eos)."""
    lengths = torch.randint(2, 8, (n,), generator=g)
    t = int(lengths.max())
    src = torch.zeros(n, t, dtype=torch.int64)
    tgt_in = torch.zeros(n, t + 1, dtype=torch.int64)
    tgt_out = torch.zeros(n, t + 1, dtype=torch.int64)
    for i, length in enumerate(lengths.tolist()):
        s = torch.randint(3, vocab, (length,), generator=g)
        src[i, :length] = s
        tgt_in[i, 0] = 1
        tgt_in[i, 1 : length + 1] = s.flip(0)
        tgt_out[i, :length] = s.flip(0)
        tgt_out[i, length] = 2
    return src, lengths, tgt_in, tgt_out


@pytest.mark.parametrize("attention", ["general", "additive"])
def test_seq2seq_attention_ignores_padding(attention: str) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(10, 10, 8, 16, attention=attention).eval()  # type: ignore[arg-type]
    src, lengths, tgt_in, _ = _reversal_batch(6, torch.Generator().manual_seed(0))
    logits, weights = model(src, tgt_in, lengths)
    assert logits.shape == (6, tgt_in.shape[1], 10) and weights.shape == (6, tgt_in.shape[1], src.shape[1])
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, tgt_in.shape[1]))
    pad = torch.arange(src.shape[1])[None, :] >= lengths[:, None]
    assert weights.masked_select(pad[:, None, :].expand_as(weights)).abs().max() == 0
    src2 = src.masked_fill(pad, 7)  # garbage in the padding changes nothing
    torch.testing.assert_close(model(src2, tgt_in, lengths)[0], logits)


def test_seq2seq_free_running_equals_greedy_decode() -> None:
    torch.manual_seed(0)
    model = Seq2Seq(10, 10, 8, 16).eval()
    src, lengths, tgt_in, _ = _reversal_batch(4, torch.Generator().manual_seed(1))
    logits, _ = model(src, tgt_in, lengths, teacher_forcing=0.0)
    ids, _ = model.greedy_decode(src, tgt_in.shape[1], lengths)
    raw = logits.argmax(-1)
    after_eos = ((raw == 2).long().cumsum(1) - (raw == 2).long()) > 0
    assert torch.equal(ids, raw.masked_fill(after_eos, 0))
    with pytest.raises(ValueError, match=r"teacher_forcing must be in \[0, 1\]"):
        model(src, tgt_in, lengths, teacher_forcing=1.5)
    with pytest.raises(ValueError, match=r"bos id must be in \[0, 10\)"):
        Seq2Seq(10, 10, bos=10)


@pytest.mark.slow
def test_seq2seq_learns_to_reverse() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = Seq2Seq(10, 10, 32, 64)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        src, lengths, tgt_in, tgt_out = _reversal_batch(64, g)
        logits, _ = model(src, tgt_in, lengths, teacher_forcing=0.9, generator=g)
        loss = model.loss(logits, tgt_out)
        opt.zero_grad()
        loss.backward()
        opt.step()
    src, lengths, _, tgt_out = _reversal_batch(300, torch.Generator().manual_seed(99))
    ids, _ = model.greedy_decode(src, tgt_out.shape[1], lengths)
    assert (ids == tgt_out).all(1).float().mean() > 0.95
