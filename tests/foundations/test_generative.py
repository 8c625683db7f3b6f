"""VAE and GAN: closed forms, shapes, and learning."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from foundations import optim
from foundations.generative import (
    VAE,
    DCGANDiscriminator,
    DCGANGenerator,
    gan_step,
    kl_diagonal_gaussian,
    mlp_discriminator,
    mlp_generator,
)
from foundations.synthetic import gaussian_ring, glyphs, modes_covered


def test_kl_term_equals_the_closed_form_for_diagonal_gaussians() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(7, 4, generator=g, dtype=torch.float64)
    ref = kl_divergence(
        Independent(Normal(mu, (0.5 * logvar).exp()), 1), Independent(Normal(torch.zeros_like(mu), 1.0), 1)
    )
    torch.testing.assert_close(kl_diagonal_gaussian(mu, logvar), ref)
    vae = VAE((6,), latent_dim=4, hidden=(8,)).double()
    x = torch.rand(7, 6, dtype=torch.float64)
    terms = vae.elbo(x, torch.Generator().manual_seed(0))
    m, lv = vae.encode(x)
    torch.testing.assert_close(terms.kl, kl_diagonal_gaussian(m, lv))
    torch.testing.assert_close(terms.elbo, terms.reconstruction - terms.kl)


def test_reparameterisation_passes_gradients_and_has_the_right_moments() -> None:
    mu = torch.full((20_000, 1), 2.0, requires_grad=True)
    logvar = torch.full((20_000, 1), 2 * torch.log(torch.tensor(3.0)).item(), requires_grad=True)
    z = VAE.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert abs(z.mean().item() - 2.0) < 0.05 and abs(z.std().item() - 3.0) < 0.05
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None and mu.grad.abs().sum() > 0


def test_gaussian_decoder_log_likelihood_is_the_normal_density() -> None:
    vae = VAE((3,), latent_dim=2, hidden=(4,), decoder="gaussian").double()
    with torch.no_grad():
        vae.log_scale.copy_(torch.tensor([0.0, 0.5, -0.5], dtype=torch.float64))
    x = torch.randn(5, 3, dtype=torch.float64)
    mean = torch.randn(5, 3, dtype=torch.float64)
    ref = Normal(mean, vae.log_scale.exp()).log_prob(x).sum(1)
    torch.testing.assert_close(vae.log_likelihood(x, mean), ref)


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_vae_heldout_elbo_improves_and_samples_interpolations(decoder: str) -> None:
    torch.manual_seed(0)
    train = glyphs(2000, seed=0).x.float() / 255
    test = glyphs(500, seed=1).x.float() / 255
    vae = VAE((1, 28, 28), latent_dim=8, hidden=(256,), decoder=decoder)  # type: ignore[arg-type]
    opt = optim.Adam(vae.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)

    def heldout() -> float:
        with torch.no_grad():
            return vae.elbo(test, torch.Generator().manual_seed(1)).elbo.mean().item()

    before = heldout()
    for _epoch in range(3):
        for s in range(0, 2000, 100):
            loss = -vae.elbo(train[s : s + 100], g).elbo.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = heldout()
    assert after > before + 50  # nats per image
    samples = vae.sample(6, torch.Generator().manual_seed(0))
    assert samples.shape == (6, 1, 28, 28)
    path = vae.interpolate(test[0], test[1], steps=5)
    assert path.shape == (5, 1, 28, 28)
    mu0, _ = vae.encode(test[:1])
    torch.testing.assert_close(path[0], vae.mean(mu0)[0])
    if decoder == "bernoulli":
        assert 0.0 <= samples.min() and samples.max() <= 1.0


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_dcgan_shapes(size: int, channels: int) -> None:
    gen = DCGANGenerator(latent_dim=16, channels=channels, image_size=size, width=8)
    disc = DCGANDiscriminator(channels=channels, image_size=size, width=8)
    images = gen(torch.randn(4, 16))
    assert images.shape == (4, channels, size, size) and images.abs().max() <= 1.0
    assert disc(images).shape == (4,)
    assert disc(torch.zeros(2, channels, size, size, dtype=torch.uint8)).shape == (2,)
    with pytest.raises(ValueError, match=r"image_size must be one of \[28, 32, 64\], got 48"):
        DCGANGenerator(image_size=48)


def test_gan_step_updates_both_players_with_the_non_saturating_loss() -> None:
    torch.manual_seed(0)
    gen, disc = mlp_generator(2, 2, 16, 2), mlp_discriminator(2, 16, 2)
    g0 = [p.detach().clone() for p in gen.parameters()]
    d0 = [p.detach().clone() for p in disc.parameters()]
    real, _ = gaussian_ring(64, seed=0)
    out = gan_step(gen, disc, real, optim.Adam(gen.parameters(), 1e-3), optim.Adam(disc.parameters(), 1e-3), 2,
                   torch.Generator().manual_seed(0))  # fmt: skip
    assert set(out) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(not torch.equal(a, b) for a, b in zip(g0, gen.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(d0, disc.parameters(), strict=True))
    # at the start D outputs ~0.5 everywhere: d_loss ~ 2 log 2
    assert out["d_loss"] == pytest.approx(2 * torch.log(torch.tensor(2.0)).item(), abs=0.1)


@pytest.mark.slow
def test_gan_covers_most_modes_of_a_ring_of_gaussians() -> None:
    torch.set_num_threads(1)  # GAN dynamics amplify float-summation order: one thread, one trajectory
    torch.manual_seed(0)
    gen, disc = mlp_generator(2, 2, 128, 3), mlp_discriminator(2, 128, 3)
    opt_g = optim.Adam(gen.parameters(), lr=5e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(disc.parameters(), lr=5e-4, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(0)
    for _ in range(3000):
        real, centres = gaussian_ring(256, std=0.02, seed=g)
        gan_step(gen, disc, real, opt_g, opt_d, 2, g)
    with torch.no_grad():
        samples = gen(torch.randn(2000, 2, generator=g))
    # a mode counts when >= 1% of the samples lie within 3 std of its centre
    assert modes_covered(samples, centres, std=0.02) >= 6
