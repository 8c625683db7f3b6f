"""The Atari-100k parts of the DQN agent: C51's projection and loss, noisy layers, DrQ's shift
augmentation inside the update, the warm-up epsilon schedule and the presets."""

import dataclasses

import pytest
import torch

from agents.dqn import DQN, PRESETS, DQNConfig, QNetwork
from agents.replay import PrioritizedReplayBuffer, ReplayBatch
from agents.targets import categorical_projection, categorical_q_learning_target
from foundations.nets import NoisyLinear, reset_noise


# ------------------------------------------------------------------------ C51 projection
def test_categorical_projection_hand_computed():
    support = torch.tensor([0.0, 1.0, 2.0, 3.0])
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    r = torch.tensor([0.5, 1.25, 10.0])
    discount = torch.tensor([0.5, 0.0, 0.9])
    out = categorical_projection(r, discount, probs, support)
    # row 0: atoms land on 0.5, 1.0, 1.5, 2.0 -> 0.05 | 0.05 + 0.2 + 0.15 | 0.15 + 0.4 | 0
    # row 1: terminal, all mass at 1.25 -> 0.75 on atom 1, 0.25 on atom 2
    # row 2: beyond v_max, clipped onto the last atom
    expected = torch.tensor([[0.05, 0.4, 0.55, 0.0], [0.0, 0.75, 0.25, 0.0], [0.0, 0.0, 0.0, 1.0]])
    torch.testing.assert_close(out, expected)


def test_categorical_projection_conserves_mass_and_the_mean_inside_the_support():
    g = torch.Generator().manual_seed(0)
    support = torch.linspace(-10, 10, 51)
    probs = torch.rand(256, 51, generator=g).softmax(dim=1)
    r = torch.randn(256, generator=g) * 30  # many beyond [-10, 10]
    discount = torch.rand(256, generator=g) * (torch.rand(256, generator=g) > 0.2)
    out = categorical_projection(r, discount, probs, support)
    assert bool((out >= 0).all())
    torch.testing.assert_close(out.sum(1), torch.ones(256))
    # where no shifted atom is clipped, the projection (linear interpolation) keeps the mean exactly
    shifted = r[:, None] + discount[:, None] * support
    inside = ((shifted >= -10) & (shifted <= 10)).all(1)
    assert int(inside.sum()) > 20
    torch.testing.assert_close((out * support).sum(1)[inside], (probs * shifted).sum(1)[inside], atol=1e-4, rtol=0)


def test_categorical_target_takes_the_selectors_best_action_and_checks_shapes():
    support = torch.tensor([-1.0, 0.0, 1.0])
    logits = torch.tensor([[[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])  # action 0 near -1, action 1 near +1
    r, d = torch.zeros(1), torch.ones(1)
    target = categorical_q_learning_target(r, d, logits, torch.tensor([[0.0, 1.0]]), support)
    torch.testing.assert_close(target, logits[:, 1].softmax(-1))
    target = categorical_q_learning_target(r, d, logits, torch.tensor([[1.0, 0.0]]), support)
    torch.testing.assert_close(target, logits[:, 0].softmax(-1))
    with pytest.raises(ValueError, match="atoms >= 2"):
        categorical_projection(r, d, torch.ones(1, 1), torch.zeros(1))
    with pytest.raises(ValueError, match=r"probs_t must be \[batch, 3\]"):
        categorical_projection(r, d, torch.ones(1, 4) / 4, support)


def _reference_c51_loss(q: QNetwork, target: QNetwork, batch: ReplayBatch, double: bool) -> torch.Tensor:
    """Bellemare et al. 2017, Algorithm 1, with explicit loops over the batch and the atoms."""
    support = q.support
    v_min, v_max, atoms = float(support[0]), float(support[-1]), support.numel()
    delta = (v_max - v_min) / (atoms - 1)
    losses = []
    for i in range(batch.obs.shape[0]):
        with torch.no_grad():
            p_next = target.logits(batch.next_obs[i : i + 1])[0].softmax(-1)  # [actions, atoms]
            chooser = q(batch.next_obs[i : i + 1])[0] if double else (p_next * support).sum(-1)
            p = p_next[int(chooser.argmax())]
            m = torch.zeros(atoms)
            for j in range(atoms):
                tz = min(max(float(batch.rewards[i] + batch.discounts[i] * support[j]), v_min), v_max)
                b = (tz - v_min) / delta
                lo, hi = int(torch.floor(torch.tensor(b))), int(torch.ceil(torch.tensor(b)))
                if lo == hi:
                    m[lo] += p[j]
                else:
                    m[lo] += p[j] * (hi - b)
                    m[hi] += p[j] * (b - lo)
        log_p = q.logits(batch.obs[i : i + 1])[0, int(batch.actions[i])].log_softmax(-1)
        losses.append(-(m * log_p).sum())
    return torch.stack(losses).mean()


@pytest.mark.parametrize("double,dueling", [(False, False), (True, True)])
def test_c51_update_matches_algorithm_1(double, dueling):
    torch.manual_seed(0)
    config = DQNConfig(buffer_size=100, learning_starts=0, double=double, dueling=dueling, num_atoms=11,
                       v_min=-2.0, v_max=2.0, learning_rate=1e-3)
    agent = DQN(config, (3,), torch.float32, 2)
    with torch.no_grad():
        for p in agent.target.parameters():
            p.add_(0.1)
    g = torch.Generator().manual_seed(1)
    batch = ReplayBatch(obs=torch.randn(6, 3, generator=g), actions=torch.tensor([0, 1, 1, 0, 1, 0]),
                        rewards=torch.tensor([0.0, 1.0, -1.5, 3.0, 0.3, 0.0]), next_obs=torch.randn(6, 3, generator=g),
                        discounts=torch.tensor([0.9, 0.0, 0.81, 0.9, 0.5, 1.0]), indices=torch.arange(6),
                        weights=torch.ones(6))
    ref_q = QNetwork((3,), 2, dueling, config.hidden_sizes, num_atoms=11, v_min=-2.0, v_max=2.0)
    ref_q.load_state_dict(agent.q.state_dict())
    loss = _reference_c51_loss(ref_q, agent.target, batch, double)
    ref_opt = torch.optim.Adam(ref_q.parameters(), lr=1e-3, eps=config.adam_eps)
    ref_opt.zero_grad()
    loss.backward()
    ref_opt.step()
    metrics = agent.update(batch)
    torch.testing.assert_close(metrics["losses/td_loss"], loss.detach())
    for a, b in zip(agent.q.parameters(), ref_q.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_c51_q_values_are_the_distribution_means():
    torch.manual_seed(0)
    net = QNetwork((3,), 4, dueling=True, num_atoms=51)
    obs = torch.randn(5, 3)
    logits = net.logits(obs)
    assert logits.shape == (5, 4, 51)
    torch.testing.assert_close(net(obs), (logits.softmax(-1) * torch.linspace(-10, 10, 51)).sum(-1))
    plain = QNetwork((3,), 4)  # one atom: the values themselves, same parameters as before
    assert plain(obs).shape == (5, 4) and "support" not in plain.state_dict()


# -------------------------------------------------------------------------- noisy layers
def test_noisy_linear_init_noise_and_eval_mode():
    torch.manual_seed(0)
    layer = NoisyLinear(16, 4, sigma0=0.5)
    bound = 1 / 16**0.5
    assert float(layer.weight_mu.detach().abs().max()) <= bound and float(layer.bias_mu.detach().abs().max()) <= bound
    torch.testing.assert_close(layer.weight_sigma, torch.full((4, 16), 0.5 * bound))
    x = torch.randn(8, 16)
    a, b = layer(x), layer(x)
    assert torch.equal(a, b)  # the same noise until it is reset
    layer.reset_noise()
    c = layer(x)
    assert not torch.allclose(a, c)
    # factorised: the weight noise is f(eps_out) f(eps_in)^T with f(u) = sign(u) sqrt|u|
    w = layer.weight_mu + layer.weight_sigma * torch.outer(layer.eps_out, layer.eps_in)
    torch.testing.assert_close(c, x @ w.T + layer.bias_mu + layer.bias_sigma * layer.eps_out)
    layer.eval()
    e1 = layer(x)
    layer.reset_noise()
    torch.testing.assert_close(e1, layer(x))  # eval mode: the means only, deterministic
    torch.testing.assert_close(e1, x @ layer.weight_mu.T + layer.bias_mu)


def test_noisy_noise_follows_the_generator_and_is_saved():
    layers = [NoisyLinear(5, 3) for _ in range(2)]
    for layer in layers:
        layer.reset_noise(torch.Generator().manual_seed(7))
    assert torch.equal(layers[0].eps_in, layers[1].eps_in) and torch.equal(layers[0].eps_out, layers[1].eps_out)
    u = torch.randn(5, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(layers[0].eps_in, u.sign() * u.abs().sqrt())
    assert {"eps_in", "eps_out"} <= set(layers[0].state_dict())
    with pytest.raises(ValueError, match="sigma0 must be > 0"):
        NoisyLinear(2, 2, sigma0=0.0)


def test_noisy_dqn_resamples_noise_per_action_and_update_and_not_in_evaluation():
    torch.manual_seed(0)
    config = DQNConfig(buffer_size=100, learning_starts=0, noisy=True, batch_size=4)
    agent = DQN(config, (3,), torch.float32, 4, seed=0)
    noisy = [m for m in agent.q.modules() if isinstance(m, NoisyLinear)]
    assert len(noisy) == 3  # two trunk layers and the head
    before = noisy[0].eps_in.clone()
    agent.act(torch.randn(2, 3), 0.0)
    assert not torch.equal(before, noisy[0].eps_in)
    with agent.evaluation():
        assert not agent.q.training
        before = noisy[0].eps_in.clone()
        obs = torch.randn(64, 3)
        assert torch.equal(agent.act(obs, 0.0), agent.act(obs, 0.0))
        assert torch.equal(before, noisy[0].eps_in)
    assert agent.q.training
    target_noise = next(m for m in agent.target.modules() if isinstance(m, NoisyLinear)).eps_in.clone()
    batch = ReplayBatch(obs=torch.randn(4, 3), actions=torch.tensor([0, 1, 2, 3]), rewards=torch.ones(4),
                        next_obs=torch.randn(4, 3), discounts=torch.full((4,), 0.9), indices=torch.arange(4),
                        weights=torch.ones(4))
    agent.update(batch)
    assert not torch.equal(target_noise, next(m for m in agent.target.modules() if isinstance(m, NoisyLinear)).eps_in)
    reset_noise(torch.nn.Linear(2, 2))  # no noisy layer: nothing to do


# -------------------------------------------------------------------- DrQ augmentation
def test_shift_augmentation_is_applied_to_obs_and_next_obs_independently(monkeypatch):
    torch.manual_seed(0)
    config = DQNConfig(buffer_size=100, learning_starts=0, augmentation="shift", batch_size=4)
    agent = DQN(config, (4, 84, 84), torch.uint8, 3, seed=0)
    frames = torch.randint(0, 256, (4, 4, 84, 84), dtype=torch.uint8)
    seen = {}

    def spy(obs, actions, rewards, next_obs, discounts, weights=None):
        seen["obs"], seen["next_obs"] = obs, next_obs
        return agent.loss(obs, actions, rewards, next_obs, discounts, weights)

    monkeypatch.setattr(agent, "_loss", spy)
    batch = ReplayBatch(obs=frames, actions=torch.tensor([0, 1, 2, 0]), rewards=torch.zeros(4), next_obs=frames.clone(),
                        discounts=torch.full((4,), 0.9), indices=torch.arange(4), weights=torch.ones(4))
    agent.update(batch)
    assert seen["obs"].shape == frames.shape and seen["obs"].dtype == torch.uint8
    assert not torch.equal(seen["obs"], frames)  # shifted...
    assert not torch.equal(seen["obs"], seen["next_obs"])  # ...with independent offsets
    # the agent's generator decides the shifts: the same seed gives the same update
    twin = DQN(config, (4, 84, 84), torch.uint8, 3, seed=0)
    assert torch.equal(twin.augment(frames), DQN(config, (4, 84, 84), torch.uint8, 3, seed=0).augment(frames))


def test_intensity_follows_the_shift_per_image_within_its_bounds():
    """DrQ(eps) as Dopamine runs it: shift, then each image scaled by 1 + 0.05 * clip(n, -2, 2)."""
    config = DQNConfig(buffer_size=100, augmentation="shift", intensity_scale=0.05)
    frames = torch.randint(1, 256, (64, 4, 84, 84), dtype=torch.uint8)
    out = DQN(config, (4, 84, 84), torch.uint8, 3, seed=0).augment(frames)
    shifted = DQN(dataclasses.replace(config, intensity_scale=0.0), (4, 84, 84), torch.uint8, 3, seed=0)
    base = shifted.augment(frames).float() / 255  # the same generator draws the same shifts first
    ratio = out / base  # one factor per image, shared by its pixels and frames
    per_image = ratio.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5)
    assert per_image[:, 0].min() >= 0.9 - 1e-6 and per_image[:, 0].max() <= 1.1 + 1e-6
    assert per_image[:, 0].std() > 0.02  # about 0.05: it does vary between images
    with pytest.raises(ValueError, match=r"intensity_scale=0\.05 applies with augmentation='shift'"):
        DQNConfig(intensity_scale=0.05)
    with pytest.raises(ValueError, match="intensity_scale must be >= 0"):
        DQNConfig(augmentation="shift", intensity_scale=-0.1)


def test_shift_augmentation_refuses_vector_observations():
    with pytest.raises(ValueError, match=r"augmentation='shift' needs image observations \[C, H, W\], got \[4\]"):
        DQN(DQNConfig(buffer_size=100, augmentation="shift"), (4,), torch.float32, 2)
    with pytest.raises(ValueError, match="'none' or 'shift', got 'crop'"):
        DQNConfig(augmentation="crop")  # type: ignore[arg-type]


# ---------------------------------------------------------------- schedules and presets
def test_epsilon_decays_after_the_warm_up_when_asked():
    agent = DQN(PRESETS["drq_eps"], (4, 84, 84), torch.uint8, 3)
    # Dopamine's linearly_decaying_epsilon: 1 through the 1,600 warm-up steps, then to 0.01 over 5,000
    assert agent.epsilon(0) == agent.epsilon(1_600) == 1.0
    assert agent.epsilon(1_600 + 2_500) == pytest.approx(0.505)
    assert agent.epsilon(6_600) == agent.epsilon(50_000) == pytest.approx(0.01)
    # DER.gin: the same function over 2,000 steps (noisy nets act besides it)
    der = DQN(dataclasses.replace(PRESETS["der"], buffer_size=100), (4, 84, 84), torch.uint8, 3)
    assert der.epsilon(0) == der.epsilon(1_600) == 1.0
    assert der.epsilon(1_600 + 1_000) == pytest.approx(0.505)
    assert der.epsilon(3_600) == der.epsilon(50_000) == pytest.approx(0.01)


def test_presets_are_the_published_settings():
    drq, der = PRESETS["drq_eps"], PRESETS["der"]
    assert (drq.n_step, drq.train_frequency, drq.target_update_interval, drq.learning_starts) == (10, 1, 1, 1_600)
    assert drq.double and drq.dueling and drq.augmentation == "shift" and drq.eval_epsilon == 0.001
    assert drq.intensity_scale == 0.05 and der.intensity_scale == 0.0
    assert not drq.noisy and drq.num_atoms == 1 and not drq.prioritized
    assert (der.n_step, der.num_atoms, der.v_min, der.v_max, der.target_update_interval) == (20, 51, -10, 10, 2_000)
    assert der.noisy and der.noisy_sigma == 0.1 and der.prioritized and der.per_alpha == 0.5
    assert der.augmentation == "none" and der.cnn_features == 256
    for p in (drq, der):
        assert (p.total_steps, p.learning_rate, p.adam_eps, p.batch_size) == (100_000, 1e-4, 1.5e-4, 32)
    with pytest.raises(ValueError, match="does not apply with num_atoms > 1"):
        dataclasses.replace(der, loss="mse")
    with pytest.raises(ValueError, match="v_min must be < v_max"):
        dataclasses.replace(der, v_min=10.0)


def test_prioritized_sampling_with_long_n_step_windows_right_after_the_warm_up():
    """The newest n-1 transitions (open windows, highest priority) may fill whole strata of
    the priority mass: they are redrawn from the whole mass instead of failing."""
    buf = PrioritizedReplayBuffer(capacity=1_000, obs_shape=(2,), obs_dtype=torch.float32, action_shape=(),
                                  action_dtype=torch.int64, n_step=20, gamma=0.99, alpha=0.5)
    for t in range(200):
        x = torch.full((1, 2), float(t))
        buf.add(x, torch.tensor([0]), torch.tensor([1.0]), x + 1, torch.tensor([False]), torch.tensor([False]))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        batch = buf.sample(32, generator=g)
        assert bool(buf.ready(batch.indices).all())
        torch.testing.assert_close(batch.discounts, torch.full((32,), 0.99**20))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_c51_update_on_cuda_matches_cpu():
    """The C51 loss and update on CUDA (noise and shifts come from each device's own generator, so
    those are compared by their statistics elsewhere; this checks the distributional math)."""
    config = DQNConfig(buffer_size=100, learning_starts=0, double=True, dueling=True, num_atoms=51, batch_size=6)
    g = torch.Generator().manual_seed(1)
    batch = ReplayBatch(obs=torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8, generator=g),
                        actions=torch.tensor([0, 1, 2, 0, 1, 2]), rewards=torch.tensor([0.0, 1.0, -1.0, 3.0, 0.3, 0.0]),
                        next_obs=torch.randint(0, 256, (6, 4, 84, 84), dtype=torch.uint8, generator=g),
                        discounts=torch.tensor([0.9, 0.0, 0.81, 0.9, 0.5, 1.0]), indices=torch.arange(6),
                        weights=torch.ones(6))
    agents, metrics = {}, {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        agents[device] = DQN(config, (4, 84, 84), torch.uint8, 3, device=device, seed=0)
        moved = ReplayBatch(**{k: v.to(device) for k, v in vars(batch).items()})
        metrics[device] = agents[device].update(moved)
    torch.testing.assert_close(metrics["cpu"]["losses/td_loss"], metrics["cuda"]["losses/td_loss"].cpu(),
                               atol=1e-4, rtol=1e-4)
    for a, b in zip(agents["cpu"].q.parameters(), agents["cuda"].q.parameters(), strict=True):
        torch.testing.assert_close(a, b.cpu(), atol=1e-4, rtol=1e-3)
