"""Learned representations: PCA, autoencoders (MLP and convolutional; denoising, sparse), and
word2vec (skip-gram and CBOW with negative sampling).

- :class:`PCA`: ``fit`` / ``transform`` / ``inverse_transform`` via ``torch.linalg.svd`` on the
  centred data; components ``[k, d]`` with a fixed sign (largest-magnitude entry positive),
  explained variance and its ratio, optional whitening. An ``nn.Module`` with buffers, so it
  moves with ``.to(device)`` and saves with ``state_dict()``.
- :class:`Autoencoder`: an encoder and a decoder (``mlp_autoencoder``, ``conv_autoencoder``
  build them); :func:`autoencoder_loss` adds input noise (denoising) and an L1 or KL sparsity
  penalty on the code.
- Word2vec (Mikolov et al. 2013): :class:`Vocabulary`, :func:`subsample` (frequent words),
  :func:`skipgram_pairs` / :func:`cbow_examples` (dynamic windows, vectorised), :class:`Word2Vec`
  with the negative-sampling loss (noise from the unigram distribution to the 3/4 power),
  nearest neighbours and analogies by cosine similarity.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from foundations.checks import positive_int
from foundations.encoders import unit_pixels

__all__ = [
    "PCA",
    "Autoencoder",
    "Vocabulary",
    "Word2Vec",
    "autoencoder_loss",
    "cbow_examples",
    "conv_autoencoder",
    "mlp_autoencoder",
    "skipgram_pairs",
    "subsample",
]


# ---------------------------------------------------------------------------------------- PCA
class PCA(nn.Module):
    """Principal component analysis of ``x [n, d]``.

    After :meth:`fit`: ``mean [d]``, ``components [k, d]`` (rows: unit principal axes, by
    decreasing variance), ``explained_variance [k]`` (sample variance along each axis, divisor
    ``n - 1``) and ``explained_variance_ratio [k]`` (share of the total variance).

    Args:
      n_components: ``k`` (default: ``min(n, d)``); a float in (0, 1) keeps the fewest
        components whose variance ratios add up to at least that fraction.
      whiten: scale the projections to unit variance.
    """

    def __init__(self, n_components: int | float | None = None, whiten: bool = False) -> None:
        super().__init__()
        if isinstance(n_components, float) and not 0.0 < n_components < 1.0:
            raise ValueError(f"a fractional n_components must be in (0, 1), got {n_components}")
        if isinstance(n_components, int):
            positive_int("n_components", n_components)
        self.n_components, self.whiten = n_components, whiten
        for name in ("mean", "components", "explained_variance", "explained_variance_ratio"):
            self.register_buffer(name, torch.empty(0))

    @property
    def fitted(self) -> bool:
        return self.components.numel() > 0

    @torch.no_grad()
    def fit(self, x: Tensor) -> PCA:
        """Fit to ``x [n, d]`` (n >= 2). Returns ``self``."""
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"PCA.fit expects x [n >= 2, d], got shape {list(x.shape)}")
        x = x if x.is_floating_point() else x.float()
        n, d = x.shape
        mean = x.mean(0)
        _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
        variance = s**2 / (n - 1)
        total = variance.sum()
        ratio = variance / total if total > 0 else torch.zeros_like(variance)
        k = self._count(ratio, min(n, d))
        components = vh[:k]
        # Fix each axis' sign: its largest-magnitude entry is positive (SVD signs are arbitrary).
        pivot = components.gather(1, components.abs().argmax(1, keepdim=True))
        components = components * torch.where(pivot < 0, -1.0, 1.0).to(components.dtype)
        self.mean, self.components = mean, components
        self.explained_variance, self.explained_variance_ratio = variance[:k], ratio[:k]
        return self

    def _count(self, ratio: Tensor, limit: int) -> int:
        if self.n_components is None:
            return limit
        if isinstance(self.n_components, float):
            reached = (ratio.cumsum(0) >= self.n_components - 1e-12).nonzero()
            return int(reached[0]) + 1 if len(reached) else limit
        if self.n_components > limit:
            raise ValueError(f"n_components={self.n_components} exceeds min(n_samples, n_features) = {limit}")
        return self.n_components

    def _check(self, width: int, what: str) -> None:
        if not self.fitted:
            raise RuntimeError("PCA is not fitted: call fit(x) first")
        expected = self.components.shape[1] if what == "x" else self.components.shape[0]
        if width != expected:
            raise ValueError(f"{what} must have {expected} columns, got {width}")

    def transform(self, x: Tensor) -> Tensor:
        """Project ``x [n, d]`` onto the components: ``[n, k]`` (unit variance when whitening)."""
        self._check(x.shape[-1], "x")
        z = (x.to(self.mean.dtype) - self.mean) @ self.components.T
        return z / self.explained_variance.clamp_min(1e-12).sqrt() if self.whiten else z

    def inverse_transform(self, z: Tensor) -> Tensor:
        """Map projections ``z [n, k]`` back to the input space ``[n, d]``."""
        self._check(z.shape[-1], "z")
        if self.whiten:
            z = z * self.explained_variance.clamp_min(1e-12).sqrt()
        return z @ self.components + self.mean

    def fit_transform(self, x: Tensor) -> Tensor:
        return self.fit(x).transform(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.transform(x)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Buffers start empty; take the saved shapes before the default loader copies values.
        for name in ("mean", "components", "explained_variance", "explained_variance_ratio"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


# ------------------------------------------------------------------------------- autoencoders
class Autoencoder(nn.Module):
    """``encoder: x -> code [batch, latent]``, ``decoder: code -> reconstruction logits``.

    Inputs are images ``[batch, C, H, W]`` or vectors ``[batch, d]``, uint8 (scaled by 1/255) or
    float in [0, 1]; the decoder returns logits of the same shape (``sigmoid`` gives pixels).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, latent_dim

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(unit_pixels(x))

    def decode(self, code: Tensor) -> Tensor:
        return self.decoder(code)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(reconstruction logits, code)``."""
        code = self.encode(x)
        return self.decode(code), code


def mlp_autoencoder(input_shape: Sequence[int], latent_dim: int = 32, hidden: Sequence[int] = (256, 128)) -> Autoencoder:
    """Fully connected autoencoder; inputs of any shape are flattened and restored."""
    positive_int("latent_dim", latent_dim)
    shape = tuple(int(s) for s in input_shape)
    d = math.prod(shape)
    enc: list[nn.Module] = [nn.Flatten()]
    width = d
    for h in hidden:
        enc += [nn.Linear(width, h), nn.ReLU()]
        width = h
    enc.append(nn.Linear(width, latent_dim))
    dec: list[nn.Module] = []
    width = latent_dim
    for h in reversed(hidden):
        dec += [nn.Linear(width, h), nn.ReLU()]
        width = h
    dec += [nn.Linear(width, d), nn.Unflatten(1, shape)]
    return Autoencoder(nn.Sequential(*enc), nn.Sequential(*dec), latent_dim)


def conv_autoencoder(input_shape: Sequence[int] = (1, 28, 28), latent_dim: int = 32, width: int = 32) -> Autoencoder:
    """Convolutional autoencoder for ``[C, H, W]`` images with H, W divisible by 4: two stride-2
    convolutions down, a linear code, two transposed convolutions up."""
    c, h, w = (int(s) for s in input_shape)
    if h % 4 or w % 4:
        raise ValueError(f"conv_autoencoder needs height and width divisible by 4, got {h}x{w}")
    positive_int("latent_dim", latent_dim)
    flat = 2 * width * (h // 4) * (w // 4)
    encoder = nn.Sequential(
        nn.Conv2d(c, width, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(flat, latent_dim),
    )  # fmt: skip
    decoder = nn.Sequential(
        nn.Linear(latent_dim, flat), nn.ReLU(), nn.Unflatten(1, (2 * width, h // 4, w // 4)),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(width, c, 4, 2, 1),
    )  # fmt: skip
    return Autoencoder(encoder, decoder, latent_dim)


def autoencoder_loss(
    model: Autoencoder,
    x: Tensor,
    noise_std: float = 0.0,
    sparsity: Literal["none", "l1", "kl"] = "none",
    sparsity_weight: float = 1e-3,
    target_activation: float = 0.05,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Reconstruction loss (binary cross-entropy against pixels in [0, 1], summed over pixels,
    mean over the batch) plus an optional sparsity penalty; returns ``(loss, parts)``.

    Args:
      noise_std: denoising autoencoder (Vincent et al. 2008): encode ``x + N(0, noise_std^2)``
        (clipped to [0, 1]), reconstruct the clean ``x``.
      sparsity: "l1": ``weight * mean |code|`` summed over units; "kl": ``weight * sum_j
        KL(rho || rho_hat_j)`` with ``rho_hat_j`` the batch mean of ``sigmoid(code_j)`` (Ng's
        sparse autoencoder) and ``rho = target_activation``.
    """
    clean = unit_pixels(x)
    noisy = clean
    if noise_std > 0:
        noise = torch.randn(clean.shape, generator=generator, device=generator.device if generator else clean.device)
        noisy = (clean + noise_std * noise.to(clean.device)).clamp(0.0, 1.0)
    elif noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    code = model.encoder(noisy)
    logits = model.decoder(code)
    recon = F.binary_cross_entropy_with_logits(logits, clean, reduction="sum") / clean.shape[0]
    if sparsity == "none":
        penalty = recon.new_zeros(())
    elif sparsity == "l1":
        penalty = sparsity_weight * code.abs().mean(0).sum()
    elif sparsity == "kl":
        if not 0.0 < target_activation < 1.0:
            raise ValueError(f"target_activation must be in (0, 1), got {target_activation}")
        rho = target_activation
        rho_hat = torch.sigmoid(code).mean(0).clamp(1e-6, 1 - 1e-6)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        penalty = sparsity_weight * kl.sum()
    else:
        raise ValueError(f"sparsity must be 'none', 'l1' or 'kl', got {sparsity!r}")
    return recon + penalty, {"reconstruction": recon.detach(), "sparsity": penalty.detach()}


# ------------------------------------------------------------------------------------ word2vec
class Vocabulary:
    """Words with their counts, most frequent first (ties: alphabetical); id = rank."""

    def __init__(self, counts: Counter[str], min_count: int = 1, max_size: int | None = None) -> None:
        positive_int("min_count", min_count)
        items = sorted(((w, c) for w, c in counts.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        if max_size is not None:
            items = items[: positive_int("max_size", max_size)]
        if not items:
            raise ValueError(f"no word occurs at least min_count={min_count} times")
        self.words = [w for w, _ in items]
        self.counts = torch.tensor([c for _, c in items], dtype=torch.float64)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, tokens: Iterable[str], min_count: int = 1, max_size: int | None = None) -> Vocabulary:
        return cls(Counter(tokens), min_count, max_size)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def encode(self, tokens: Iterable[str]) -> Tensor:
        """Ids ``[n]`` of the tokens in the vocabulary (others are dropped, as in word2vec)."""
        return torch.tensor([self.index[t] for t in tokens if t in self.index], dtype=torch.int64)

    def id(self, word: str) -> int:
        try:
            return self.index[word]
        except KeyError:
            raise ValueError(f"{word!r} is not in the vocabulary ({len(self)} words)") from None


def subsample(ids: Tensor, counts: Tensor, threshold: float = 1e-3, generator: torch.Generator | None = None) -> Tensor:
    """Drop frequent words: keep word ``w`` with probability ``min(1, sqrt(t / f_w) + t / f_w)``
    (the word2vec code's rule), ``f_w`` its corpus frequency and ``t = threshold``."""
    if threshold <= 0:
        return ids
    freq = counts / counts.sum()
    keep_p = ((threshold / freq).sqrt() + threshold / freq).clamp(max=1.0).to(torch.float32)
    draws = torch.rand(ids.shape, generator=generator)
    return ids[draws < keep_p[ids.cpu()]]


def skipgram_pairs(ids: Tensor, window: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``(center [p], context [p])`` pairs within a dynamic window: for each position a window
    ``b`` is drawn uniformly from 1..``window`` and every word at distance <= ``b`` is a context
    (nearer words are used more often, as in word2vec). Vectorised: a loop over distances only."""
    positive_int("window", window)
    n = ids.shape[0]
    spans = torch.randint(1, window + 1, (n,), generator=generator).to(ids.device)
    centers, contexts = [], []
    pos = torch.arange(n, device=ids.device)
    for d in range(1, window + 1):
        for sign in (-1, 1):
            other = pos + sign * d
            ok = (other >= 0) & (other < n) & (spans >= d)
            centers.append(ids[pos[ok]])
            contexts.append(ids[other[ok]])
    return torch.cat(centers), torch.cat(contexts)


def cbow_examples(ids: Tensor, window: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(contexts [n, 2 window], mask [n, 2 window], targets [n])``: every position's target word
    and the ids within ``window`` on each side (``mask`` False past either end of ``ids``)."""
    positive_int("window", window)
    n = ids.shape[0]
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)]).to(ids.device)
    where = torch.arange(n, device=ids.device)[:, None] + offsets
    mask = (where >= 0) & (where < n)
    contexts = ids[where.clamp(0, n - 1)]
    return contexts, mask, ids.clone()


class Word2Vec(nn.Module):
    """Input (``in_embed``) and output (``out_embed``) word vectors trained with negative sampling.

    ``loss(centers, contexts)`` for skip-gram, ``cbow_loss(contexts, mask, targets)`` for CBOW:
    ``-log sigma(u_o . v) - sum_k log sigma(-u_k . v)`` with ``k`` negatives per positive drawn
    from ``counts^0.75`` (pass the vocabulary counts). ``vectors`` are the input embeddings.
    """

    def __init__(self, vocab_size: int, dim: int = 100, counts: Tensor | None = None, negatives: int = 5) -> None:
        super().__init__()
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.negatives = positive_int("negatives", negatives)
        self.in_embed = nn.Embedding(vocab_size, positive_int("dim", dim))
        self.out_embed = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out_embed.weight)
        noise = torch.ones(vocab_size) if counts is None else counts.float().pow(0.75)
        if noise.shape != (vocab_size,):
            raise ValueError(f"counts must have shape [{vocab_size}], got {list(noise.shape)}")
        self.register_buffer("noise", noise / noise.sum())

    def _negative_loss(self, v: Tensor, positives: Tensor, generator: torch.Generator | None) -> Tensor:
        u_pos = self.out_embed(positives)  # [b, dim]
        sampled = torch.multinomial(self.noise.cpu() if generator is not None else self.noise,
                                    v.shape[0] * self.negatives, replacement=True, generator=generator)  # fmt: skip
        u_neg = self.out_embed(sampled.to(v.device).view(v.shape[0], self.negatives))  # [b, k, dim]
        pos = F.logsigmoid((u_pos * v).sum(-1))
        neg = F.logsigmoid(-torch.bmm(u_neg, v.unsqueeze(2)).squeeze(2)).sum(-1)
        return -(pos + neg).mean()

    def loss(self, centers: Tensor, contexts: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Skip-gram negative-sampling loss of ``centers [b]`` predicting ``contexts [b]``."""
        return self._negative_loss(self.in_embed(centers), contexts, generator)

    def cbow_loss(
        self, contexts: Tensor, mask: Tensor, targets: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """CBOW negative-sampling loss: the mean of the (unmasked) context vectors predicts the target."""
        m = mask.unsqueeze(-1).to(self.in_embed.weight.dtype)
        v = (self.in_embed(contexts) * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self._negative_loss(v, targets, generator)

    @property
    def vectors(self) -> Tensor:
        """Word vectors ``[vocab, dim]`` (the input embeddings)."""
        return self.in_embed.weight.detach()

    @torch.no_grad()
    def nearest(self, query: int | Tensor, k: int = 5, exclude: Sequence[int] = ()) -> tuple[Tensor, Tensor]:
        """The ``k`` words most cosine-similar to word id or vector ``query``: ``(ids [k], similarities [k])``.
        A word id query excludes itself."""
        positive_int("k", k)
        unit = F.normalize(self.vectors, dim=1)
        if isinstance(query, int):
            vec = unit[query]
            exclude = (*exclude, query)
        else:
            vec = F.normalize(query.to(unit.dtype), dim=0)
        sims = unit @ vec
        if exclude:
            sims[torch.tensor(list(exclude), device=sims.device)] = -math.inf
        top = sims.topk(min(k, self.vocab_size - len(set(exclude))))
        return top.indices, top.values

    def analogy(self, a: int, b: int, c: int, k: int = 1) -> tuple[Tensor, Tensor]:
        """``a : b :: c : ?`` — nearest words to ``b - a + c`` (unit vectors), excluding a, b, c."""
        unit = F.normalize(self.vectors, dim=1)
        return self.nearest(unit[b] - unit[a] + unit[c], k, exclude=(a, b, c))
