"""Generative models: a GAN with the non-saturating loss (DCGAN networks for images, MLPs for
low-dimensional data) and a variational autoencoder.

GAN (Goodfellow et al. 2014; DCGAN: Radford et al. 2016). :func:`gan_step` does one
discriminator update (``-log D(x) - log(1 - D(G(z)))``) and one generator update with the
non-saturating loss ``-log D(G(z))``, written with ``softplus`` on logits for stability.

VAE (Kingma & Welling 2014). Encoder ``q(z|x) = N(mu, diag(exp(logvar)))``, prior ``N(0, I)``,
decoder ``p(x|z)`` Bernoulli (logits; data in [0, 1]) or Gaussian (mean, with a learned
per-dimension log-variance). :meth:`VAE.elbo` returns the per-example ELBO, its reconstruction
log-likelihood and the KL term (closed form: :func:`kl_diagonal_gaussian`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from foundations.checks import positive_int
from foundations.encoders import unit_pixels

__all__ = [
    "ELBO",
    "VAE",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "gan_step",
    "kl_diagonal_gaussian",
    "mlp_discriminator",
    "mlp_generator",
]


# ----------------------------------------------------------------------------------------- GAN
class DCGANGenerator(nn.Module):
    """``z [batch, latent_dim] -> images [batch, channels, size, size]`` in (-1, 1) (tanh).

    A linear layer to a ``4x4`` (size 32, 64) or ``7x7`` (size 28) feature map, then stride-2
    transposed convolutions with batch norm and ReLU, doubling the size each time.
    """

    def __init__(self, latent_dim: int = 64, channels: int = 1, image_size: int = 28, width: int = 64) -> None:
        super().__init__()
        starts = {28: (7, 2), 32: (4, 3), 64: (4, 4)}
        if image_size not in starts:
            raise ValueError(f"image_size must be one of {sorted(starts)}, got {image_size}")
        self.latent_dim = positive_int("latent_dim", latent_dim)
        start, ups = starts[image_size]
        c = width * 2 ** (ups - 1)
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, c * start * start, bias=False),
            nn.Unflatten(1, (c, start, start)),
            nn.BatchNorm2d(c),
            nn.ReLU(),
        ]
        for i in range(ups):
            last = i == ups - 1
            out = channels if last else c // 2
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """``images [batch, channels, size, size]`` in [-1, 1] (or uint8, rescaled) -> logits ``[batch]``.

    Stride-2 convolutions with LeakyReLU(0.2) (no batch norm on the first), then a linear logit.
    """

    def __init__(self, channels: int = 1, image_size: int = 28, width: int = 64) -> None:
        super().__init__()
        if image_size not in (28, 32, 64):
            raise ValueError(f"image_size must be one of [28, 32, 64], got {image_size}")
        downs = {28: 2, 32: 3, 64: 4}[image_size]
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for i in range(downs):
            layers.append(nn.Conv2d(c_in, c, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2))
            c_in, c = c, c * 2
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, image_size, image_size)).shape[1]
        self.head = nn.Linear(flat, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div(127.5).sub(1.0)
        return self.head(self.features(x)).squeeze(1)


def mlp_generator(latent_dim: int = 2, out_dim: int = 2, hidden: int = 128, layers: int = 3) -> nn.Module:
    """An MLP generator for low-dimensional data (e.g. a 2-D mixture of Gaussians)."""
    mods: list[nn.Module] = []
    width = positive_int("latent_dim", latent_dim)
    for _ in range(positive_int("layers", layers)):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, positive_int("out_dim", out_dim)))
    net = nn.Sequential(*mods)
    net.latent_dim = latent_dim  # type: ignore[attr-defined]
    return net


def mlp_discriminator(in_dim: int = 2, hidden: int = 128, layers: int = 3) -> nn.Module:
    """An MLP discriminator ``[batch, in_dim] -> logits [batch]``."""
    mods: list[nn.Module] = []
    width = positive_int("in_dim", in_dim)
    for _ in range(positive_int("layers", layers)):
        mods += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    mods += [nn.Linear(width, 1), nn.Flatten(0)]
    return nn.Sequential(*mods)


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    real: Tensor,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    latent_dim: int,
    generator_rng: torch.Generator | None = None,
) -> dict[str, float]:
    """One discriminator and one generator update on a batch of ``real`` samples.

    Discriminator: ``softplus(-D(x)) + softplus(D(G(z)))`` (= ``-log D(x) - log(1 - D(G(z)))``
    with ``D = sigmoid(logit)``). Generator (non-saturating): ``softplus(-D(G(z)))``.
    Returns the two losses and the mean discriminator probabilities on real and fake samples.
    """
    batch = real.shape[0]
    device = real.device

    def noise() -> Tensor:
        gen_device = generator_rng.device if generator_rng is not None else device
        return torch.randn(batch, latent_dim, generator=generator_rng, device=gen_device).to(device)

    fake = generator(noise())
    real_logits = discriminator(real)
    fake_logits = discriminator(fake.detach())
    d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()

    g_logits = discriminator(generator(noise()))
    g_loss = F.softplus(-g_logits).mean()
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    with torch.no_grad():
        d_real = torch.sigmoid(real_logits).mean().item()
        d_fake = torch.sigmoid(fake_logits).mean().item()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "d_real": d_real, "d_fake": d_fake}


# ----------------------------------------------------------------------------------------- VAE
def kl_diagonal_gaussian(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` per example: ``[batch, d] -> [batch]``.

    Closed form: ``0.5 * sum(exp(logvar) + mu^2 - 1 - logvar)``.
    """
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(-1)


class ELBO(NamedTuple):
    """Per-example terms ``[batch]``: ``elbo = reconstruction - kl`` (nats)."""

    elbo: Tensor
    reconstruction: Tensor
    kl: Tensor


class VAE(nn.Module):
    """Variational autoencoder with MLP encoder and decoder.

    Args:
      input_shape: shape of one example, e.g. ``(1, 28, 28)`` or ``(10,)``; inputs may be uint8
        (scaled by 1/255) or float.
      latent_dim: size of ``z``.
      hidden: widths of the encoder's hidden layers (the decoder mirrors them).
      decoder: "bernoulli" (data in [0, 1]; decoder outputs logits) or "gaussian" (decoder
        outputs the mean; a learned log-variance per input dimension).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int = 2,
        hidden: Sequence[int] = (512, 256),
        decoder: Literal["bernoulli", "gaussian"] = "bernoulli",
    ) -> None:
        super().__init__()
        if decoder not in ("bernoulli", "gaussian"):
            raise ValueError(f"decoder must be 'bernoulli' or 'gaussian', got {decoder!r}")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.likelihood = decoder
        d = math.prod(self.input_shape)
        enc: list[nn.Module] = [nn.Flatten()]
        width = d
        for h in hidden:
            enc += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.encoder = nn.Sequential(*enc)
        self.to_stats = nn.Linear(width, 2 * latent_dim)
        dec: list[nn.Module] = []
        width = latent_dim
        for h in reversed(hidden):
            dec += [nn.Linear(width, h), nn.ReLU()]
            width = h
        dec += [nn.Linear(width, d), nn.Unflatten(1, self.input_shape)]
        self.decoder = nn.Sequential(*dec)
        self.log_scale = nn.Parameter(torch.zeros(self.input_shape)) if decoder == "gaussian" else None

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)``, each ``[batch, latent_dim]``."""
        mu, logvar = self.to_stats(self.encoder(unit_pixels(x))).chunk(2, dim=-1)
        return mu, logvar.clamp(-20.0, 10.0)

    def decode(self, z: Tensor) -> Tensor:
        """Decoder output ``[batch, *input_shape]``: logits (Bernoulli) or means (Gaussian)."""
        return self.decoder(z)

    def mean(self, z: Tensor) -> Tensor:
        """The decoded mean (pixel probabilities for Bernoulli)."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)``: differentiable in mu and logvar."""
        gen_device = generator.device if generator is not None else mu.device
        eps = torch.randn(mu.shape, generator=generator, device=gen_device, dtype=mu.dtype).to(mu.device)
        return mu + (0.5 * logvar).exp() * eps

    def log_likelihood(self, x: Tensor, out: Tensor) -> Tensor:
        """``log p(x | z)`` per example ``[batch]`` from the decoder output ``out``."""
        dims = tuple(range(1, x.ndim))
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(dims)
        assert self.log_scale is not None
        var = (2 * self.log_scale).exp()
        return (-0.5 * ((x - out) ** 2 / var + 2 * self.log_scale + math.log(2 * math.pi))).sum(dims)

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> ELBO:
        """One-sample ELBO per example: ``E_q[log p(x|z)] - KL(q(z|x) || p(z))``."""
        x = unit_pixels(x)
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        recon = self.log_likelihood(x, self.decode(z))
        kl = kl_diagonal_gaussian(mu, logvar)
        return ELBO(recon - kl, recon, kl)

    def forward(self, x: Tensor) -> Tensor:
        """The negative mean ELBO (a loss to minimise)."""
        return -self.elbo(x).elbo.mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` decoded means of ``z ~ N(0, I)``: ``[n, *input_shape]``."""
        device = next(self.parameters()).device
        gen_device = generator.device if generator is not None else device
        z = torch.randn(positive_int("n", n), self.latent_dim, generator=generator, device=gen_device).to(device)
        return self.mean(z)

    @torch.no_grad()
    def interpolate(self, x0: Tensor, x1: Tensor, steps: int = 8) -> Tensor:
        """Decoded means along the straight line between the posterior means of two examples
        ``x0, x1 [*input_shape]``: ``[steps, *input_shape]`` (ends included)."""
        if positive_int("steps", steps) < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        mu0, _ = self.encode(x0.unsqueeze(0))
        mu1, _ = self.encode(x1.unsqueeze(0))
        t = torch.linspace(0.0, 1.0, steps, device=mu0.device)[:, None]
        return self.mean((1 - t) * mu0 + t * mu1)
