import dataclasses
import math

import pytest
import torch

from agents.dqn import DQN, PRESETS, DQNConfig, QNetwork, preset
from agents.replay import ReplayBatch
from agents.schedules import linear_schedule
from agents.targets import (
    action_values,
    double_q_learning_target,
    munchausen_q_learning_target,
    q_learning_target,
    td_error,
)


def test_q_learning_target_hand_computed():
    r = torch.tensor([1.0, 0.5, -1.0])
    discount = torch.tensor([0.99, 0.0, 0.99**3])  # continuing, terminated, 3-step window
    q_t = torch.tensor([[1.0, 3.0], [10.0, 20.0], [-2.0, -1.0]])
    expected = torch.tensor([1.0 + 0.99 * 3.0, 0.5, -1.0 + 0.99**3 * -1.0])
    torch.testing.assert_close(q_learning_target(r, discount, q_t), expected)


def test_double_q_target_uses_online_argmax_and_target_value():
    r = torch.tensor([0.0, 1.0])
    discount = torch.tensor([0.9, 0.9])
    q_target = torch.tensor([[5.0, 1.0, 2.0], [0.0, 4.0, 8.0]])
    q_online = torch.tensor([[0.0, 9.0, 1.0], [3.0, 2.0, 1.0]])  # picks actions 1 and 0
    expected = torch.tensor([0.9 * 1.0, 1.0 + 0.9 * 0.0])
    torch.testing.assert_close(double_q_learning_target(r, discount, q_target, q_online), expected)
    # plain Q-learning would take the max instead
    torch.testing.assert_close(q_learning_target(r, discount, q_target), torch.tensor([4.5, 1.0 + 7.2]))


def test_munchausen_target_hand_computed_and_its_limits():
    r = torch.tensor([1.0, 0.0])
    discount = torch.tensor([0.9, 0.0])  # continuing, terminated
    q_tm1 = torch.tensor([[0.0, math.log(3.0)], [2.0, 2.0]])  # temperature 1: pi = [1/4, 3/4] and [1/2, 1/2]
    q_t = torch.tensor([[math.log(2.0), 0.0], [5.0, -5.0]])  # pi = [2/3, 1/3]
    a = torch.tensor([0, 1])
    # bonus: log(1/4) clipped to -1, then log(1/2); soft value: sum pi (q - log pi) = log(sum exp q) = log 3
    expected = torch.tensor([1.0 + 0.5 * -1.0 + 0.9 * math.log(3.0), 0.5 * math.log(0.5)])
    torch.testing.assert_close(munchausen_q_learning_target(r, discount, q_tm1, a, q_t, temperature=1.0, alpha=0.5,
                                                            log_policy_min=-1.0), expected)
    # no bonus and a cold softmax: Q-learning
    torch.manual_seed(0)
    q0, q1, a = torch.randn(6, 4), torch.randn(6, 4), torch.randint(0, 4, (6,))
    r, discount = torch.randn(6), torch.full((6,), 0.99)
    torch.testing.assert_close(munchausen_q_learning_target(r, discount, q0, a, q1, temperature=1e-5, alpha=0.0),
                               q_learning_target(r, discount, q1), atol=1e-4, rtol=0)
    # the bonus never rewards: it is at most 0
    assert (munchausen_q_learning_target(r, torch.zeros(6), q0, a, q1) <= r).all()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        munchausen_q_learning_target(r, discount, q0, a, q1, temperature=0.0)
    with pytest.raises(ValueError, match="q_tm1_target"):
        munchausen_q_learning_target(r, discount, q0[:, :3], a, q1)
    # a selector (double Q): its softmax weights the target network's values
    selector = torch.randn(6, 4)
    pi = torch.softmax(selector / 0.5, dim=1)
    soft = (pi * (q1 - 0.5 * torch.log(pi))).sum(dim=1)
    torch.testing.assert_close(munchausen_q_learning_target(r, discount, q0, a, q1, temperature=0.5, alpha=0.0,
                                                            q_t_selector=selector), r + discount * soft)
    torch.testing.assert_close(munchausen_q_learning_target(r, discount, q0, a, q1, q_t_selector=q1),
                               munchausen_q_learning_target(r, discount, q0, a, q1))


@pytest.mark.parametrize("double", [False, True])
def test_munchausen_dqn_updates_towards_its_target(double):
    config = DQNConfig(buffer_size=64, learning_starts=0, batch_size=8, munchausen=True, double=double,
                       hidden_sizes=(8,))
    torch.manual_seed(0)
    agent = DQN(config, (3,), torch.float32, 2)
    with torch.no_grad():  # the online net differs from the target from here on
        for p in agent.q.parameters():
            p.add_(0.1)
    obs, next_obs = torch.randn(8, 3), torch.randn(8, 3)
    actions, rewards, discounts = torch.randint(0, 2, (8,)), torch.randn(8), torch.full((8,), 0.99)
    loss, errors, q_sa = agent.loss(obs, actions, rewards, next_obs, discounts)
    with torch.no_grad():
        target = munchausen_q_learning_target(rewards, discounts, agent.target(obs), actions, agent.target(next_obs),
                                              config.munchausen_temperature, config.munchausen_alpha,
                                              q_t_selector=agent.q(next_obs) if double else None)
    torch.testing.assert_close(errors, target - q_sa)
    torch.testing.assert_close(loss, torch.nn.functional.huber_loss(q_sa, target))


def test_layer_norm_trunk():
    torch.manual_seed(0)
    net = QNetwork((4,), 2, hidden_sizes=(16, 16), layer_norm=True)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in net.modules()) == 2
    h = net.trunk[:2](torch.randn(5, 4) * 100)  # first linear layer and its norm
    torch.testing.assert_close(h.mean(dim=1), torch.zeros(5), atol=1e-5, rtol=0)
    # the Nature CNN: a norm after each conv (over C, H, W) and after the fully connected layer
    cnn = QNetwork((4, 84, 84), 2, layer_norm=True)
    norms = [m for m in cnn.trunk.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert [tuple(m.normalized_shape) for m in norms] == [(32, 20, 20), (64, 9, 9), (64, 7, 7), (512,)]
    x = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    h = cnn.trunk.body[:2](x.float() / 255)  # first conv and its norm
    torch.testing.assert_close(h.flatten(1).mean(dim=1), torch.zeros(3), atol=1e-5, rtol=0)
    plain = QNetwork((4, 84, 84), 2)  # without the option: the Nature DQN's modules, unchanged
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in plain.modules())
    assert sum(p.numel() for p in plain.trunk.parameters()) == 1_684_128


def test_action_values_td_error_and_bad_shapes():
    q0 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(action_values(q0, torch.tensor([1, 0])), torch.tensor([2.0, 3.0]))
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    td = td_error(q, torch.tensor([1, 0]), torch.tensor([5.0, 5.0]))
    torch.testing.assert_close(td, torch.tensor([3.0, 2.0]))
    td.sum().backward()
    torch.testing.assert_close(q.grad, torch.tensor([[0.0, -1.0], [-1.0, 0.0]]))
    with pytest.raises(ValueError, match="expected r_t"):
        q_learning_target(torch.zeros(3), torch.zeros(3), torch.zeros(2, 4))


def test_dueling_advantages_are_mean_zero():
    torch.manual_seed(0)
    net = QNetwork((4,), 5, dueling=True, hidden_sizes=(16,))
    obs = torch.randn(7, 4)
    q = net(obs)
    h = net.trunk(obs)
    # Q - V is the centred advantage: mean over actions is zero
    torch.testing.assert_close((q - net.value(h)).mean(dim=1), torch.zeros(7), atol=1e-6, rtol=0)
    adv = net.advantage(h)
    torch.testing.assert_close(q, net.value(h) + adv - adv.mean(1, keepdim=True))


def test_epsilon_schedule():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 100) == pytest.approx(0.1)
    assert linear_schedule(1.0, 0.1, 100, 10_000) == pytest.approx(0.1)
    agent = DQN(DQNConfig(total_steps=1000, exploration_fraction=0.5, epsilon_end=0.05, learning_starts=0,
                          buffer_size=100), (4,), torch.float32, 2)
    assert agent.epsilon(0) == 1.0 and agent.epsilon(250) == pytest.approx(0.525) and agent.epsilon(900) == 0.05


def test_annealed_learning_rate_reaches_the_optimizer_and_the_logs():
    config = DQNConfig(total_steps=1000, learning_rate=1e-3, anneal_lr=True, learning_starts=10, batch_size=4,
                       buffer_size=100, train_frequency=1)
    agent = DQN(config, (3,), torch.float32, 2, seed=0)
    for _ in range(20):
        obs = torch.randn(1, 3)
        result = type("R", (), {"reward": torch.ones(1), "next_obs": torch.randn(1, 3),
                                "terminated": torch.zeros(1, dtype=torch.bool),
                                "truncated": torch.zeros(1, dtype=torch.bool)})()
        agent.observe(obs, torch.zeros(1, dtype=torch.long), result)
    agent.train(250, 1)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(7.5e-4)
    assert agent.scalars(500)["charts/learning_rate"] == pytest.approx(5e-4)
    assert DQN(dataclasses.replace(config, anneal_lr=False), (3,), torch.float32, 2).learning_rate(500) == 1e-3


def test_act_is_greedy_at_epsilon_zero_and_uniform_at_one():
    torch.manual_seed(0)
    agent = DQN(DQNConfig(buffer_size=100, learning_starts=0), (3,), torch.float32, 4, seed=0)
    obs = torch.randn(4000, 3)
    greedy = agent.q(obs).argmax(1)
    assert torch.equal(agent.act(obs, 0.0), greedy)
    counts = torch.bincount(agent.act(obs, 1.0), minlength=4).double()
    assert ((counts - 1000).abs() < 150).all(), counts


def _batch(n: int = 4, n_actions: int = 2) -> ReplayBatch:
    g = torch.Generator().manual_seed(0)
    return ReplayBatch(
        obs=torch.randn(n, 3, generator=g), actions=torch.randint(0, n_actions, (n,), generator=g),
        rewards=torch.randn(n, generator=g), next_obs=torch.randn(n, 3, generator=g),
        discounts=torch.tensor([0.99, 0.0, 0.99**3, 0.99])[:n], indices=torch.arange(n), weights=torch.ones(n),
    )


@pytest.mark.parametrize("double", [False, True])
def test_update_matches_hand_written_step(double):
    torch.manual_seed(0)
    config = DQNConfig(buffer_size=100, learning_starts=0, double=double, loss="mse", learning_rate=1e-3)
    agent = DQN(config, (3,), torch.float32, 2)
    with torch.no_grad():  # make the target differ from the online net
        for p in agent.target.parameters():
            p.add_(0.1)
    batch = _batch()
    ref_q = QNetwork((3,), 2, hidden_sizes=config.hidden_sizes)
    ref_q.load_state_dict(agent.q.state_dict())
    ref_opt = torch.optim.Adam(ref_q.parameters(), lr=1e-3, eps=config.adam_eps)
    with torch.no_grad():
        q_next_target = agent.target(batch.next_obs)
        if double:
            a_star = ref_q(batch.next_obs).argmax(1)
            boot = q_next_target[torch.arange(4), a_star]
        else:
            boot = q_next_target.max(1).values
        y = batch.rewards + batch.discounts * boot
    q_sa = ref_q(batch.obs)[torch.arange(4), batch.actions]
    loss = ((y - q_sa) ** 2).mean()
    ref_opt.zero_grad()
    loss.backward()
    ref_opt.step()
    metrics = agent.update(batch)
    torch.testing.assert_close(metrics["losses/td_loss"], loss.detach())
    torch.testing.assert_close(metrics["losses/q_values"], q_sa.detach())
    for a, b in zip(agent.q.parameters(), ref_q.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_prioritized_update_writes_td_errors_as_priorities():
    torch.manual_seed(0)
    config = DQNConfig(buffer_size=64, learning_starts=0, prioritized=True, per_alpha=1.0, batch_size=4)
    agent = DQN(config, (3,), torch.float32, 2)
    for t in range(10):
        x = torch.full((1, 3), float(t))
        agent.replay.add(x, torch.tensor([t % 2]), torch.tensor([1.0]), x + 1, torch.tensor([False]), torch.tensor([False]))
    batch = agent.replay.sample(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        q_before = agent.q(batch.obs)[torch.arange(4), batch.actions]
        y = batch.rewards + batch.discounts * agent.target(batch.next_obs).max(1).values
    agent.update(batch)
    leaves = agent.replay.tree[agent.replay._leaves + batch.indices]
    torch.testing.assert_close(leaves.float(), (y - q_before).abs() + config.per_eps)


def test_train_schedules_updates_and_target_syncs():
    config = DQNConfig(total_steps=1000, buffer_size=200, learning_starts=20, train_frequency=4, gradient_steps=2,
                       target_update_interval=50, batch_size=4)
    torch.manual_seed(0)
    agent = DQN(config, (3,), torch.float32, 2)
    for step in range(1, 101):
        x = torch.randn(1, 3)
        agent.replay.add(x, torch.tensor([0]), torch.tensor([1.0]), x, torch.tensor([False]), torch.tensor([False]))
        agent.train(step, 1)
        if step == 49:
            assert any(not torch.equal(a, b) for a, b in zip(agent.q.parameters(), agent.target.parameters(), strict=True))
        if step == 50:
            assert all(torch.equal(a, b) for a, b in zip(agent.q.parameters(), agent.target.parameters(), strict=True))
    # steps 20..100 collect 81 steps: 20 full periods of 4 -> 40 updates
    assert agent.updates == 40


def test_config_and_preset_errors():
    with pytest.raises(ValueError, match="unknown preset 'natur'; choose one of"):
        preset("natur")
    with pytest.raises(ValueError, match=r"DQNConfig\.n_step must be an integer >= 1, got 0"):
        DQNConfig(n_step=0)
    with pytest.raises(ValueError, match="prioritized replay needs a replay buffer"):
        DQNConfig(buffer_size=0, prioritized=True)
    with pytest.raises(ValueError, match=r"DQNConfig\.gamma must be in"):
        DQNConfig(gamma=1.5)
    with pytest.raises(ValueError, match="QNetwork needs"):
        QNetwork((2, 3), 4)
    with pytest.raises(ValueError, match="munchausen takes scalar values"):
        DQNConfig(munchausen=True, num_atoms=51)
    assert DQNConfig(munchausen=True, double=True, n_step=3).munchausen  # composes with both
    with pytest.raises(ValueError, match="munchausen_temperature must be > 0"):
        DQNConfig(munchausen_temperature=0.0)
    assert set(PRESETS) == {"nature", "drq_eps", "der", "cartpole"}
    assert PRESETS["drq_eps"].train_frequency == 1 and PRESETS["drq_eps"].n_step > 1
    assert dataclasses.replace(PRESETS["nature"], double=True).double


@pytest.mark.gpu
@pytest.mark.parametrize("dueling", [True, False])
@pytest.mark.parametrize("obs_shape,dtype", [((3,), torch.float32), ((4, 84, 84), torch.uint8)])
def test_dqn_on_cuda_matches_cpu_update(obs_shape, dtype, dueling):
    config = DQNConfig(buffer_size=256, learning_starts=0, batch_size=8, double=True, dueling=dueling, n_step=2,
                       prioritized=True)
    agents = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        agents[device] = DQN(config, obs_shape, dtype, 4, device=device, seed=0)
    g = torch.Generator().manual_seed(0)
    for t in range(40):
        if dtype == torch.uint8:
            obs = torch.randint(0, 255, (1, *obs_shape), dtype=dtype, generator=g)
        else:
            obs = torch.randn(1, *obs_shape, generator=g)
        for device, agent in agents.items():
            agent.replay.add(obs.to(device), torch.tensor([t % 4], device=device), torch.tensor([1.0], device=device),
                             obs.to(device), torch.tensor([t % 9 == 8], device=device),
                             torch.tensor([False], device=device))
    idx = agents["cpu"].replay.valid_indices()[:8]
    for device, agent in agents.items():
        metrics = agent.update(agent.replay.get(idx.to(device)))
        assert metrics["losses/td_loss"].device.type == device
        assert agent.act(torch.zeros(2, *obs_shape, dtype=dtype, device=device), 0.5).device.type == device
    for a, b in zip(agents["cpu"].q.parameters(), agents["cuda"].q.parameters(), strict=True):
        torch.testing.assert_close(a, b.cpu(), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("double", [False, True])
def test_target_synced_every_step_is_the_online_net(double):
    """DrQ(eps)'s target sync at every step: the target is the online net itself, and training
    matches an agent whose separate target copy is synced after every step, to the bit."""
    config = DQNConfig(total_steps=200, buffer_size=200, learning_starts=8, train_frequency=1, batch_size=4,
                       target_update_interval=1, double=double, dueling=True, n_step=3, learning_rate=1e-2)
    torch.manual_seed(0)
    shared = DQN(config, (3,), torch.float32, 2, seed=1)
    assert shared.target is shared.q
    torch.manual_seed(0)
    copied = DQN(config, (3,), torch.float32, 2, seed=1)
    copied.target = QNetwork((3,), 2, dueling=True, hidden_sizes=config.hidden_sizes).requires_grad_(False)
    copied.target.load_state_dict(copied.q.state_dict())
    calls = []
    copied.target.register_forward_hook(lambda *_: calls.append(1))
    g = torch.Generator().manual_seed(2)
    for step in range(1, 41):
        x, r = torch.randn(1, 3, generator=g), torch.randn(1, generator=g)
        for agent in (shared, copied):
            agent.replay.add(x, torch.tensor([step % 2]), r, x + 1, torch.tensor([step % 7 == 0]), torch.tensor([False]))
            agent.train(step, 1)
    assert shared.updates == copied.updates == 33 and len(calls) == 33
    for a, b in zip(shared.q.parameters(), copied.q.parameters(), strict=True):
        assert torch.equal(a, b)
    # a separate target is kept where sharing would change the algorithm
    for changed in (dict(tau=0.5), dict(target_update_interval=2), dict(noisy=True)):
        agent = DQN(dataclasses.replace(config, **changed), (3,), torch.float32, 2)
        assert agent.target is not agent.q
    # a checkpoint of the shared agent restores it (its "target" entry is the online net)
    restored = DQN(config, (3,), torch.float32, 2)
    restored.load_state_dict(shared.state_dict())
    assert restored.target is restored.q
    for a, b in zip(restored.q.parameters(), shared.q.parameters(), strict=True):
        assert torch.equal(a, b)
