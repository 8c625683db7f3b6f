"""PQN: its Q(lambda) returns against hand computations and their limits, the agent's update,
exploration per env, checkpoints, compile equal to eager."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch
from torch import nn

from agents import targets
from agents.pqn import PQN, PRESETS, PQNConfig
from envs.vector import EpisodeStats, StepResult

OBS = 4


# ------------------------------------------------------------------------ Q(lambda) returns
def test_q_lambda_returns_by_hand():
    # one env, three steps, gamma 0.5, lambda 0.5; no episode ends
    r = torch.tensor([[1.0], [2.0], [3.0]])
    d = torch.full((3, 1), 0.5)
    v = torch.tensor([[10.0], [20.0], [30.0]])  # max_a Q of each step's successor
    cut = torch.zeros(3, 1, dtype=torch.bool)
    g2 = 3 + 0.5 * 30  # the last step bootstraps: 18
    g1 = 2 + 0.5 * (0.5 * 20 + 0.5 * g2)  # 11.5
    g0 = 1 + 0.5 * (0.5 * 10 + 0.5 * g1)  # 6.375
    out = targets.q_lambda_returns(r, d, v, cut, 0.5)
    torch.testing.assert_close(out, torch.tensor([[g0], [g1], [g2]]))
    # the episode ends at step 1 by termination (discount 0): step 0 still sees step 1's return,
    # step 1 is its reward alone
    d_term = torch.tensor([[0.5], [0.0], [0.5]])
    cut_term = torch.tensor([[False], [True], [False]])
    out = targets.q_lambda_returns(r, d_term, v, cut_term, 0.5)
    torch.testing.assert_close(out, torch.tensor([[1 + 0.5 * (0.5 * 10 + 0.5 * 2)], [2.0], [g2]]))
    # truncated at step 1: it bootstraps from the final observation's value and the trace stops
    out = targets.q_lambda_returns(r, d, v, cut_term, 0.5)
    torch.testing.assert_close(out[1], torch.tensor([2 + 0.5 * 20]))


def test_q_lambda_returns_at_lambda_0_are_one_step_targets_and_at_1_monte_carlo():
    g = torch.Generator().manual_seed(0)
    t, n, actions = 16, 5, 3
    r = torch.randn(t, n, generator=g)
    q_next = torch.randn(t, n, actions, generator=g)
    terminated = torch.rand(t, n, generator=g) < 0.15
    d = 0.9 * (~terminated).float()
    v = q_next.amax(dim=2)
    one_step = targets.q_learning_target(r.flatten(), d.flatten(), q_next.flatten(0, 1)).view(t, n)
    torch.testing.assert_close(targets.q_lambda_returns(r, d, v, terminated, 0.0), one_step)
    monte_carlo = targets.discounted_returns(r, d, terminated, bootstrap=v[-1])
    torch.testing.assert_close(targets.q_lambda_returns(r, d, v, terminated, 1.0), monte_carlo)


def test_q_lambda_returns_refuse_bad_input():
    x = torch.zeros(4, 2)
    cut = torch.zeros(4, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"lambda_ must be in \[0, 1\], got 1.5"):
        targets.q_lambda_returns(x, x, x, cut, 1.5)
    with pytest.raises(ValueError, match="must all be"):
        targets.q_lambda_returns(x, x, torch.zeros(3, 2), cut, 0.5)


# ------------------------------------------------------------------------------- agent
SMALL = PQNConfig(total_steps=10_000, num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2,
                  hidden_sizes=(16, 16), learning_rate=1e-2)
NO_EPISODES = EpisodeStats(torch.zeros(0, dtype=torch.int64), torch.zeros(0), torch.zeros(0, dtype=torch.int64))


def _agent(config: PQNConfig = SMALL, **changes) -> PQN:
    torch.manual_seed(0)
    return PQN(dataclasses.replace(config, **changes), (OBS,), torch.float32, 3, seed=0)


def _fill(agent: PQN, seed: int = 1) -> None:
    """A rollout of fixed observations, rewards and endings (actions from the agent)."""
    g = torch.Generator().manual_seed(seed)
    n = agent.config.num_envs
    obs = torch.randn(n, OBS, generator=g)
    for t in range(agent.config.num_steps):
        actions = agent.explore(obs, t * n)
        next_obs = torch.randn(n, OBS, generator=g)
        ended = torch.rand(n, generator=g) < 0.1
        agent.observe(obs, actions, StepResult(next_obs, torch.randn(n, generator=g), ended,
                                               torch.zeros(n, dtype=torch.bool), next_obs, ended, NO_EPISODES))
        obs = next_obs


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_the_update_regresses_q_on_the_rollouts_q_lambda_returns():
    agent = _agent()
    _fill(agent)
    returns = agent.returns()
    r = agent.rollout
    # the same returns by hand from what the rollout recorded
    v = torch.cat([r.values[1:], agent.q(agent._next_obs).amax(1).detach().unsqueeze(0)])
    expected = targets.q_lambda_returns(r.rewards, 0.99 * (~r.terminated).float(), v, r.terminated, 0.65)
    torch.testing.assert_close(returns, expected)
    # values recorded while acting are max_a Q of the observations acted on
    torch.testing.assert_close(r.values, agent.q(r.obs.flatten(0, 1)).amax(1).view_as(r.values).detach())
    loss, _ = agent.loss(r.obs[0], r.actions[0], returns[0])
    torch.testing.assert_close(loss, ((agent.q(r.obs[0]).gather(1, r.actions[0, :, None]).squeeze(1) - returns[0]) ** 2).mean())
    before = _params(agent.q)
    metrics = agent.train(agent.config.batch_size, agent.config.num_envs)
    assert metrics is not None and set(metrics) == {"losses/td_loss", "losses/q_values"}
    assert agent.updates == 2 * 2 and agent.rollout.t == 0  # epochs x minibatches, a fresh rollout
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(agent.q), strict=True))


def test_an_edit_of_q_lambda_returns_in_agents_targets_reaches_the_update(monkeypatch):
    def update() -> list[torch.Tensor]:
        agent = _agent()
        _fill(agent)
        agent.train(agent.config.batch_size, agent.config.num_envs)
        return _params(agent.q)

    before = update()
    original = targets.q_lambda_returns
    monkeypatch.setattr(targets, "q_lambda_returns", lambda *a, **k: original(*a, **k) + 1.0)
    after = update()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_truncated_episodes_bootstrap_from_their_final_observation():
    agent = _agent(num_envs=2, num_steps=2, num_minibatches=1)
    obs = torch.randn(2, OBS)
    final = torch.randn(2, OBS) * 3
    truncated = torch.tensor([True, False])
    stats = EpisodeStats(torch.tensor([0]), torch.tensor([1.0]), torch.tensor([1]))
    actions = agent.explore(obs, 0)
    agent.observe(obs, actions, StepResult(obs, torch.ones(2), torch.zeros(2, dtype=torch.bool), truncated, final,
                                           truncated, stats))
    with torch.no_grad():
        assert float(agent.rollout.final_values[0, 0]) == pytest.approx(float(agent.q(final[:1]).amax()))
    agent.observe(obs, agent.explore(obs, 2), StepResult(obs, torch.ones(2), torch.zeros(2, dtype=torch.bool),
                                                          torch.zeros(2, dtype=torch.bool), obs,
                                                          torch.zeros(2, dtype=torch.bool), NO_EPISODES))
    returns = agent.returns()
    assert float(returns[0, 0]) == pytest.approx(1 + 0.99 * float(agent.rollout.final_values[0, 0]))


def test_each_env_explores_with_its_own_coin():
    agent = _agent(num_envs=4000)
    obs = torch.randn(4000, OBS)
    greedy = agent.q(obs).argmax(1)
    actions, values = agent.act(obs, 0.5)
    share = float((actions != greedy).float().mean())
    assert share == pytest.approx(0.5 * 2 / 3, abs=0.03)  # half explore, a third of those pick the greedy action
    torch.testing.assert_close(values, agent.q(obs).amax(1).detach())
    assert torch.equal(agent.act(obs, 0.0)[0], greedy)


def test_state_dict_round_trip_continues_identically():
    a = _agent()
    _fill(a)
    a.train(a.config.batch_size, a.config.num_envs)
    _fill(a, seed=2)
    buffer = io.BytesIO()  # through bytes, as a checkpoint goes (the state holds live tensors)
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    b = _agent()
    b.load_state_dict(state)
    for x in (a, b):
        x.train(x.config.batch_size, x.config.num_envs)
    for p, q in zip(_params(a.q), _params(b.q), strict=True):
        assert torch.equal(p, q)
    assert np.array_equal(a.rng.random(3), b.rng.random(3))


def test_config_refuses_bad_values_naming_them():
    with pytest.raises(ValueError, match=r"num_envs \* num_steps = 4 \* 8 = 32 must divide into num_minibatches = 3"):
        dataclasses.replace(SMALL, num_minibatches=3)
    with pytest.raises(ValueError, match=r"q_lambda must be in \[0, 1\], got -0.1"):
        dataclasses.replace(SMALL, q_lambda=-0.1)
    with pytest.raises(ValueError, match="optimizer must be 'radam' or 'adam'"):
        dataclasses.replace(SMALL, optimizer="sgd")


def test_presets_carry_clean_rls_values():
    assert PRESETS["cartpole"] == PQNConfig()  # pqn.py's defaults
    authors = PRESETS["cartpole_authors"]  # purejaxql's pqn_cartpole.yaml
    assert (authors.num_envs, authors.num_steps, authors.num_minibatches, authors.learning_rate, authors.q_lambda,
            authors.reward_scale, authors.hidden_sizes) == (32, 64, 16, 1e-4, 0.95, 0.1, (256, 256))
    atari = PRESETS["atari"]
    assert (atari.num_envs, atari.num_steps, atari.epsilon_end, atari.exploration_fraction) == (8, 128, 0.01, 0.10)
    net = PQN(atari, (4, 84, 84), torch.uint8, 4).q
    assert sum(isinstance(m, nn.LayerNorm) for m in net.modules()) == 4  # three convs and the dense layer


def test_compiled_pqn_equals_eager():
    def run(compile: bool) -> PQN:
        agent = _agent(compile=compile)
        for k in range(2):
            _fill(agent, seed=k + 1)
            agent.train(agent.config.batch_size * (k + 1), agent.config.num_envs)
        return agent

    eager, compiled = run(False), run(True)
    for p, q in zip(_params(eager.q), _params(compiled.q), strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


def test_reward_scale_scales_what_the_learner_sees_only():
    agent = _agent(reward_scale=0.1, num_envs=2, num_steps=2, num_minibatches=1)
    obs = torch.randn(2, OBS)
    stats = EpisodeStats(torch.tensor([1]), torch.tensor([7.0]), torch.tensor([3]))
    result = StepResult(obs, torch.tensor([2.0, 3.0]), torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool),
                        obs, torch.zeros(2, dtype=torch.bool), stats)
    agent.observe(obs, agent.explore(obs, 0), result)
    torch.testing.assert_close(agent.rollout.rewards[0], torch.tensor([0.2, 0.3]))
    assert float(result.episodes.returns[0]) == 7.0  # the statistics the loop logs stay raw
    with pytest.raises(ValueError, match="reward_scale must be > 0, got 0"):
        dataclasses.replace(SMALL, reward_scale=0)
