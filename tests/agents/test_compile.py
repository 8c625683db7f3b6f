"""``compile=True`` runs the same definition through torch.compile: after several updates the
compiled and the eager agent hold the same parameters and act alike (CPU here; CUDA graphs under
the ``gpu`` marker)."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from agents.a2c import A2C, A2CConfig
from agents.dqn import DQN, DQNConfig
from agents.ppo import PPO, PPOConfig
from agents.reinforce import REINFORCE, REINFORCEConfig
from envs.vector import EpisodeStats, StepResult
from foundations import compiling

pytestmark = pytest.mark.slow  # each compile takes 10-40 s of Inductor on 2 cores
OBS = 4
SPACE = gym.spaces.Discrete(3)


def _close(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)


def _dqn(compile: bool, device: str, **changes) -> tuple[DQN, torch.Tensor]:
    torch.manual_seed(0)
    config = DQNConfig(buffer_size=64, learning_starts=0, batch_size=16, hidden_sizes=(16, 16), double=True,
                       prioritized=True, max_grad_norm=1.0, learning_rate=1e-2, compile=compile, **changes)
    agent = DQN(config, (OBS,), torch.float32, 3, device=device, seed=0)
    g = torch.Generator().manual_seed(1)
    for t in range(40):
        obs = torch.randn(1, OBS, generator=g).to(device)
        agent.replay.add(obs, torch.tensor([t % 3], device=device), torch.tensor([1.0], device=device), obs + 0.1,
                         torch.tensor([t % 9 == 8], device=device), torch.tensor([False], device=device))
    for step in range(5):
        agent.update(agent.replay.sample(16, generator=torch.Generator(device).manual_seed(step), beta=0.5))
    return agent, agent.act(torch.randn(64, OBS, generator=g).to(device), 0.0)


def _actor_critic(cls, config, compile: bool, device: str = "cpu"):
    torch.manual_seed(0)
    agent = cls(dataclasses_replace(config, compile=compile), (OBS,), torch.float32, SPACE, device=device, seed=0)
    g = torch.Generator().manual_seed(1)
    n = config.num_envs
    for _ in range(3):  # three rollouts and updates
        for t in range(config.num_steps):
            agent.explore(torch.randn(n, OBS, generator=g).to(device), t)
            ended = (torch.rand(n, generator=g) < 0.1).to(device)
            agent.rollout.record(torch.randn(n, generator=g).to(device), ended,
                                 torch.zeros(n, dtype=torch.bool, device=device))
        agent._next_obs = torch.randn(n, OBS, generator=g).to(device)
        agent.train(config.batch_size, n)
    return agent, agent.act(torch.randn(64, OBS, generator=g).to(device))


def dataclasses_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


def _reinforce(compile: bool):
    torch.manual_seed(0)
    agent = REINFORCE(REINFORCEConfig(num_envs=2, compile=compile), (OBS,), torch.float32, SPACE, seed=0)
    g = torch.Generator().manual_seed(1)
    none = EpisodeStats(torch.zeros(0, dtype=torch.int64), torch.zeros(0), torch.zeros(0, dtype=torch.int64))
    for t in range(24):
        obs = torch.randn(2, OBS, generator=g)
        agent.explore(obs, t)
        done = torch.tensor([t % 6 == 5, t % 4 == 3])
        agent.observe(obs, None, StepResult(obs, torch.randn(2, generator=g), done, torch.zeros(2, dtype=torch.bool),
                                            obs, done, none))
        agent.train(t, 2)
    assert agent.updates >= 3
    return agent, agent.act(torch.randn(64, OBS, generator=g))


@pytest.mark.parametrize("changes", [{}, {"num_atoms": 11, "noisy": True, "dueling": True}], ids=["dqn", "rainbow"])
def test_compiled_dqn_equals_eager(changes):
    (eager, a), (compiled, b) = _dqn(False, "cpu", **changes), _dqn(True, "cpu", **changes)
    _close(eager.q, compiled.q)
    assert torch.equal(a, b)
    torch.testing.assert_close(eager.replay.tree, compiled.replay.tree, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cls,config", [
    (PPO, PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2)),
    (A2C, A2CConfig(num_envs=4, num_steps=8)),
], ids=["ppo", "a2c"])
def test_compiled_actor_critic_equals_eager(cls, config):
    (eager, a), (compiled, b) = _actor_critic(cls, config, False), _actor_critic(cls, config, True)
    _close(eager.policy, compiled.policy)
    assert torch.equal(a, b)


def test_compiled_reinforce_equals_eager():
    (eager, a), (compiled, b) = _reinforce(False), _reinforce(True)
    _close(eager.policy, compiled.policy)
    assert torch.equal(a, b)


def test_compile_without_a_working_backend_fails_at_start_with_one_line(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Compiler: cc not found\nlong traceback text")

    monkeypatch.setattr(compiling, "_CHECKED", {})
    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(compiling.CompileUnavailableError, match=r"--compile needs a working torch\.compile backend "
                       r"on cpu .*RuntimeError: Compiler: cc not found\. Run without --compile") as e:
        DQN(DQNConfig(buffer_size=64, compile=True), (OBS,), torch.float32, 3)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)  # experiments print it as one line and exit 2


@pytest.mark.gpu
def test_compiled_agents_on_cuda_use_cuda_graphs_and_equal_eager():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    (eager, a), (compiled, b) = _dqn(False, "cuda"), _dqn(True, "cuda")
    _close(eager.q, compiled.q)
    assert torch.equal(a, b)
    config = PPOConfig(num_envs=4, num_steps=8, num_minibatches=2, update_epochs=2)
    (eager, a), (compiled, b) = _actor_critic(PPO, config, False, "cuda"), _actor_critic(PPO, config, True, "cuda")
    _close(eager.policy, compiled.policy)
    assert torch.equal(a, b)
