"""PCA against NumPy's SVD, autoencoders, word2vec on a corpus with planted structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foundations import optim
from foundations.embeddings import (
    PCA,
    Vocabulary,
    Word2Vec,
    autoencoder_loss,
    cbow_examples,
    conv_autoencoder,
    mlp_autoencoder,
    skipgram_pairs,
    subsample,
)
from foundations.synthetic import glyphs, planted_corpus


def _correlated(n: int = 300, d: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) * torch.linspace(3, 0.1, d, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + 5.0


def test_pca_matches_numpy_svd() -> None:
    x = _correlated()
    pca = PCA().fit(x)
    xn = x.numpy()
    centred = xn - xn.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    variance = s**2 / (len(xn) - 1)
    np.testing.assert_allclose(pca.explained_variance.numpy(), variance, atol=1e-5, rtol=0)
    np.testing.assert_allclose(pca.explained_variance_ratio.numpy(), variance / variance.sum(), atol=1e-5)
    for ours, ref in zip(pca.components.numpy(), vt, strict=True):  # equal up to sign
        sign = np.sign(ours @ ref)
        np.testing.assert_allclose(ours, sign * ref, atol=1e-5, rtol=0)
    assert np.allclose(np.cov(pca.transform(x).numpy().T), np.diag(variance), atol=1e-8)


def test_pca_reconstruction_whitening_and_component_choice() -> None:
    x = _correlated()
    full = PCA().fit(x)
    torch.testing.assert_close(full.inverse_transform(full.transform(x)), x)  # all components: exact
    white = PCA(3, whiten=True).fit(x)
    z = white.transform(x)
    torch.testing.assert_close(z.var(0), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(white.inverse_transform(z), PCA(3).fit(x).inverse_transform(PCA(3).fit(x).transform(x)))
    k = PCA(0.9).fit(x).components.shape[0]
    cum = full.explained_variance_ratio.cumsum(0)
    assert cum[k - 1] >= 0.9 and (k == 1 or cum[k - 2] < 0.9)
    assert torch.all(PCA(2).fit(x).components.abs().argmax(1) >= 0)


def test_pca_state_dict_roundtrip_and_errors() -> None:
    x = _correlated()
    pca = PCA(2).fit(x)
    fresh = PCA(2)
    fresh.load_state_dict(pca.state_dict())
    torch.testing.assert_close(fresh.transform(x), pca.transform(x))
    with pytest.raises(RuntimeError, match="not fitted"):
        PCA().transform(x)
    with pytest.raises(ValueError, match="x must have 6 columns, got 5"):
        pca.transform(x[:, :5])
    with pytest.raises(ValueError, match="exceeds min"):
        PCA(7).fit(x)
    with pytest.raises(ValueError, match=r"fractional n_components must be in \(0, 1\)"):
        PCA(1.5)


@pytest.mark.parametrize("build", [mlp_autoencoder, conv_autoencoder], ids=["mlp", "conv"])
@pytest.mark.parametrize("variant", [dict(), dict(noise_std=0.2), dict(sparsity="l1"), dict(sparsity="kl", sparsity_weight=0.1)])
def test_autoencoders_learn_to_reconstruct(build, variant: dict) -> None:
    torch.manual_seed(0)
    data = glyphs(512, seed=0).x
    model = build((1, 28, 28), latent_dim=16)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    first = None
    for step in range(60):
        batch = data[(step * 64) % 512 : (step * 64) % 512 + 64]
        loss, parts = autoencoder_loss(model, batch, generator=g, **variant)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = parts["reconstruction"].item() if first is None else first
    recon, code = model(data[:8])
    assert recon.shape == (8, 1, 28, 28) and code.shape == (8, 16)
    assert parts["reconstruction"].item() < 0.7 * first


def test_sparsity_penalties_have_their_closed_forms() -> None:
    model = mlp_autoencoder((4,), latent_dim=2, hidden=())
    with torch.no_grad():
        model.encoder[1].weight.zero_()
        model.encoder[1].bias.copy_(torch.tensor([1.0, -2.0]))
    x = torch.rand(5, 4)
    _, l1 = autoencoder_loss(model, x, sparsity="l1", sparsity_weight=0.5)
    assert l1["sparsity"].item() == pytest.approx(0.5 * 3.0)
    _, kl = autoencoder_loss(model, x, sparsity="kl", sparsity_weight=1.0, target_activation=0.1)
    rho_hat = torch.sigmoid(torch.tensor([1.0, -2.0]))
    expected = (0.1 * torch.log(0.1 / rho_hat) + 0.9 * torch.log(0.9 / (1 - rho_hat))).sum()
    assert kl["sparsity"].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="sparsity must be 'none', 'l1' or 'kl'"):
        autoencoder_loss(model, x, sparsity="l2")  # type: ignore[arg-type]


def test_vocabulary_subsampling_and_pair_generation() -> None:
    vocab = Vocabulary.build("b a c a b a d".split(), min_count=1)
    assert vocab.words == ["a", "b", "c", "d"] and vocab.counts.tolist() == [3, 2, 1, 1]
    assert vocab.encode(["a", "zzz", "d"]).tolist() == [0, 3]
    with pytest.raises(ValueError, match="'zzz' is not in the vocabulary"):
        vocab.id("zzz")
    ids = torch.arange(5)
    centers, contexts = skipgram_pairs(ids, 1)
    pairs = sorted(zip(centers.tolist(), contexts.tolist(), strict=True))
    assert pairs == [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3)]
    c2, o2 = skipgram_pairs(torch.arange(1000), 5, torch.Generator().manual_seed(0))
    dist = (c2 - o2).abs()
    assert dist.max() == 5 and (dist == 1).sum() > (dist == 5).sum() * 3  # near words more often
    contexts, mask, targets = cbow_examples(torch.tensor([7, 8, 9]), 1)
    assert contexts.tolist()[1] == [7, 9] and mask.tolist() == [[False, True], [True, True], [True, False]]
    assert targets.tolist() == [7, 8, 9]
    freq_ids = torch.zeros(10_000, dtype=torch.int64)  # one word is the whole corpus
    kept = subsample(freq_ids, torch.tensor([10_000.0]), 1e-2, torch.Generator().manual_seed(0))
    expected = (0.01**0.5 + 0.01) * 10_000
    assert abs(len(kept) - expected) < 100


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_word2vec_recovers_planted_neighbours(mode: str) -> None:
    tokens, groups = planted_corpus(sentences_count=1500, seed=0)
    vocab = Vocabulary.build(tokens)
    ids = vocab.encode(tokens)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = Word2Vec(len(vocab), 32, vocab.counts, negatives=5)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        kept = subsample(ids, vocab.counts, 1e-2, g)
        if mode == "skipgram":
            centers, contexts = skipgram_pairs(kept, 3, g)
            order = torch.randperm(len(centers), generator=g)
            for s in range(0, len(order), 512):
                idx = order[s : s + 512]
                loss = model.loss(centers[idx], contexts[idx], g)
                opt.zero_grad()
                loss.backward()
                opt.step()
        else:
            ctx, mask, tgt = cbow_examples(kept, 3)
            order = torch.randperm(len(tgt), generator=g)
            for s in range(0, len(order), 256):
                idx = order[s : s + 256]
                loss = model.cbow_loss(ctx[idx], mask[idx], tgt[idx], g)
                opt.zero_grad()
                loss.backward()
                opt.step()
    hits = total = 0
    for group in groups:
        for word in group:
            neighbours, _ = model.nearest(vocab.id(word), k=len(group) - 1)
            hits += len({vocab.words[i] for i in neighbours.tolist()} & set(group))
            total += len(group) - 1
    assert hits / total >= 0.95
    a, b, c = (vocab.id(w) for w in ("g0_w0", "g0_w1", "g1_w0"))
    best, _ = model.analogy(a, b, c, k=3)
    assert not {a, b, c} & set(best.tolist())
