"""The code a researcher reads is the code that runs: an edit to a target or loss in
``agents/targets.py``, or to an activation module of a network, changes what the default agents
do, for acting and for learning (DQN, PPO, A2C, REINFORCE on vector observations)."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from torch import nn

from agents import targets
from agents.a2c import A2C, A2CConfig
from agents.dqn import DQN, DQNConfig
from agents.ppo import PPO, PPOConfig
from agents.reinforce import REINFORCE, REINFORCEConfig
from envs.vector import EpisodeStats, StepResult

OBS = 4
SPACE = gym.spaces.Discrete(3)


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _differ(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return any(not torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ----------------------------------------------------------------------------------- DQN
def _dqn(**overrides) -> DQN:
    torch.manual_seed(0)
    config = DQNConfig(buffer_size=64, learning_starts=0, batch_size=16, learning_rate=1e-2, hidden_sizes=(16, 16),
                       **overrides)
    agent = DQN(config, (OBS,), torch.float32, 3, seed=0)
    g = torch.Generator().manual_seed(1)
    for t in range(40):
        obs = torch.randn(1, OBS, generator=g)
        agent.replay.add(obs, torch.tensor([t % 3]), torch.tensor([1.0]), obs + 0.1, torch.tensor([t % 9 == 8]),
                         torch.tensor([False]))
    return agent


def _dqn_update(agent: DQN) -> list[torch.Tensor]:
    agent.update(agent.replay.sample(16, generator=torch.Generator().manual_seed(2)))
    return _params(agent.q)


@pytest.mark.parametrize("name,options", [("q_learning_target", {}), ("double_q_learning_target", {"double": True}),
                                          ("munchausen_q_learning_target", {"munchausen": True})])
def test_dqn_update_uses_the_target_in_agents_targets(monkeypatch, name, options):
    before = _dqn_update(_dqn(**options))
    original = getattr(targets, name)
    monkeypatch.setattr(targets, name, lambda *args, **kw: original(*args, **kw) + 1.0)  # a researcher's new target
    assert _differ(_dqn_update(_dqn(**options)), before)


def test_dqn_uses_the_trunks_activation_for_acting_and_learning():
    obs = torch.randn(512, OBS, generator=torch.Generator().manual_seed(3))
    relu = _dqn()
    actions_relu, after_relu = relu.act(obs, 0.0), _dqn_update(relu)
    tanh = _dqn()
    for net in (tanh.q, tanh.target):
        assert isinstance(net.trunk[1], nn.ReLU)
        net.trunk[1] = nn.Tanh()
    actions_tanh = tanh.act(obs, 0.0)
    assert not torch.equal(actions_tanh, actions_relu)
    torch.testing.assert_close(tanh.q(obs).argmax(1), actions_tanh, rtol=0, atol=0)
    assert _differ(_dqn_update(tanh), after_relu)


# ------------------------------------------------------------------- policy gradient
def _fill_rollout(agent) -> None:
    """A rollout of fixed observations, rewards and endings (actions sampled by the agent)."""
    g = torch.Generator().manual_seed(1)
    n = agent.config.num_envs
    for t in range(agent.config.num_steps):
        obs = torch.randn(n, OBS, generator=g)
        agent.explore(obs, t)
        ended = torch.rand(n, generator=g) < 0.1
        agent.rollout.record(torch.randn(n, generator=g), ended, torch.zeros(n, dtype=torch.bool))
    agent._next_obs = torch.randn(n, OBS, generator=g)


def _pg(cls, config, activation: type[nn.Module] | None = None):
    torch.manual_seed(0)
    agent = cls(config, (OBS,), torch.float32, SPACE, seed=0)
    if activation is not None:
        for body in (agent.policy.actor_body, agent.policy.critic_body):
            assert isinstance(body[1], nn.Tanh)
            body[1] = body[3] = activation()
    return agent


def _pg_update(cls, config, activation: type[nn.Module] | None = None) -> list[torch.Tensor]:
    agent = _pg(cls, config, activation)
    _fill_rollout(agent)
    agent.train(agent.config.batch_size, agent.config.num_envs)
    return _params(agent.policy)


PPO_CONFIG = PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2)
A2C_CONFIG = A2CConfig(num_envs=4, num_steps=8)


@pytest.mark.parametrize("cls,config,name", [
    (PPO, PPO_CONFIG, "ppo_losses"),
    (PPO, PPO_CONFIG, "generalized_advantages"),
    (A2C, A2C_CONFIG, "generalized_advantages"),
], ids=["ppo-loss", "ppo-gae", "a2c-gae"])
def test_actor_critic_updates_use_the_functions_in_agents_targets(monkeypatch, cls, config, name):
    before = _pg_update(cls, config)
    original = getattr(targets, name)
    if name == "ppo_losses":
        def changed(*args, **kwargs):  # a researcher's new surrogate: twice the policy loss
            terms = original(*args, **kwargs)
            return {**terms, "policy_loss": 2.0 * terms["policy_loss"]}
    else:
        def changed(*args, **kwargs):  # advantages shifted by one
            return original(*args, **kwargs) + 1.0
    monkeypatch.setattr(targets, name, changed)
    assert _differ(_pg_update(cls, config), before)


@pytest.mark.parametrize("cls,config", [(PPO, PPO_CONFIG), (A2C, A2C_CONFIG)], ids=["ppo", "a2c"])
def test_actor_critic_uses_the_bodies_activation_for_acting_and_learning(cls, config):
    obs = torch.randn(512, OBS, generator=torch.Generator().manual_seed(3))
    tanh, relu = _pg(cls, config), _pg(cls, config, nn.ReLU)
    assert not torch.equal(tanh.act(obs), relu.act(obs))  # the policy's mode
    assert _differ(_pg_update(cls, config, nn.ReLU), _pg_update(cls, config))


def _reinforce_update(activation: type[nn.Module] | None = None) -> list[torch.Tensor]:
    torch.manual_seed(0)
    agent = REINFORCE(REINFORCEConfig(num_envs=2), (OBS,), torch.float32, SPACE, seed=0)
    if activation is not None:
        agent.policy.actor_body[1] = agent.policy.actor_body[3] = activation()
    g = torch.Generator().manual_seed(1)
    none = EpisodeStats(torch.zeros(0, dtype=torch.int64), torch.zeros(0), torch.zeros(0, dtype=torch.int64))
    for t in range(6):
        obs = torch.randn(2, OBS, generator=g)
        agent.explore(obs, t)
        done = torch.tensor([t == 5, t == 3])
        agent.observe(obs, None, StepResult(obs, torch.randn(2, generator=g), done, torch.zeros(2, dtype=torch.bool),
                                            obs, done, none))
    assert agent.train(6, 2) is not None
    return _params(agent.policy)


def test_reinforce_uses_discounted_returns_from_agents_targets_and_the_bodies_activation(monkeypatch):
    before = _reinforce_update()
    assert _differ(_reinforce_update(nn.ReLU), before)
    original = targets.discounted_returns
    monkeypatch.setattr(targets, "discounted_returns", lambda *a, **k: original(*a, **k) * torch.linspace(0, 2, 6)[:, None])
    assert _differ(_reinforce_update(), before)
