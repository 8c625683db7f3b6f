"""Agent memory cores: resets at episode starts, sequences equal to steps, bad options."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from agents.cores import CORES, AgentCore, CoreSpec

SMALL = {"size": 8, "memory_slots": 6, "word_size": 4, "window": 3, "heads": 2}


def _spec(kind: str) -> CoreSpec:
    from agents.cores import OPTIONS

    return CoreSpec(kind=kind, **{k: v for k, v in SMALL.items() if k in OPTIONS[kind]})


@pytest.mark.parametrize("kind", CORES)
def test_an_episode_start_resets_the_core_for_that_env_only(kind: str) -> None:
    """Two envs; env 0 starts a new episode at step 4. Its outputs from there equal a fresh core's
    on the same inputs (nothing leaks from the old episode); env 1's equal an unbroken run."""
    torch.manual_seed(0)
    core = AgentCore(5, _spec(kind)).eval()
    x = torch.randn(9, 2, 5)
    starts = torch.zeros(9, 2, dtype=torch.bool)
    starts[4, 0] = True
    y, _ = core(x, core.initial_state(2), starts)
    fresh, _ = core(x[4:, :1], core.initial_state(1), torch.zeros(5, 1, dtype=torch.bool))
    torch.testing.assert_close(y[4:, :1], fresh, atol=1e-5, rtol=1e-5)
    unbroken, _ = core(x[:, 1:], core.initial_state(1), torch.zeros(9, 1, dtype=torch.bool))
    torch.testing.assert_close(y[:, 1:], unbroken, atol=1e-5, rtol=1e-5)
    if kind != "none":  # the test can fail: without the reset, env 0's memory does change its outputs
        leaky, _ = core(x[:, :1], core.initial_state(1), torch.zeros(9, 1, dtype=torch.bool))
        assert (leaky[4:] - fresh).abs().max() > 1e-5


@pytest.mark.parametrize("kind", CORES)
def test_a_sequence_equals_its_steps_and_select_picks_envs(kind: str) -> None:
    torch.manual_seed(1)
    core = AgentCore(5, _spec(kind)).eval()
    x = torch.randn(6, 3, 5)
    starts = torch.zeros(6, 3, dtype=torch.bool)
    starts[0] = True
    starts[2, 1] = starts[4, 2] = True
    y, final = core(x, core.initial_state(3), starts)
    state, steps = core.initial_state(3), []
    for t in range(6):
        out, state = core(x[t:t + 1], state, starts[t:t + 1])
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps), y, atol=1e-5, rtol=1e-5)
    for a, b in zip(final, state, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    envs = torch.tensor([2, 0])
    y_sel, _ = core(x[:, envs], core.select(core.initial_state(3), envs), starts[:, envs])
    torch.testing.assert_close(y_sel, y[:, envs], atol=1e-5, rtol=1e-5)
    assert y.shape == (6, 3, core.output_size) and core.recurrent == (kind != "none")


def test_unknown_cores_and_options_of_other_cores_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown core 'ltsm'; allowed: none, lstm, gru, ntm, dnc, transformer"):
        CoreSpec(kind="ltsm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--core-memory-slots is an option of the ntm/dnc cores, not of --core lstm"):
        CoreSpec(kind="lstm", memory_slots=64)
    with pytest.raises(ValueError, match="--core-window is an option of the transformer core, not of --core dnc"):
        CoreSpec(kind="dnc", window=8)
    with pytest.raises(ValueError, match="size must be"):
        CoreSpec(kind="gru", size=0)


def test_a_new_core_is_one_entry_in_the_table(monkeypatch):
    """An Elman RNN added as an adapter (nothing else edited): PPO acts and learns with it, its
    state resets at episode starts, and an option it does not read is refused."""
    import dataclasses as dc

    from agents import cores
    from agents.ppo import PPO, PPOConfig

    def run(module, x, state):
        y, h = module(x, state[0])
        return y, (h,)

    elman = cores.CoreAdapter(
        build=lambda input_size, spec: torch.nn.RNN(input_size, spec.size), options=("size",),
        batch_dims=lambda m: (1,),
        initial_state=lambda m, spec, b, like: (torch.zeros(1, b, spec.size, dtype=like.dtype),), run=run)
    monkeypatch.setitem(cores.ADAPTERS, "elman", elman)
    core = cores.AgentCore(3, cores.CoreSpec(kind="elman", size=5))
    x = torch.randn(6, 2, 3)
    starts = torch.zeros(6, 2, dtype=torch.bool)
    starts[3, 0] = True
    y, _ = core(x, core.initial_state(2), starts)
    fresh, _ = core(x[3:, :1], core.initial_state(1), torch.zeros(3, 1, dtype=torch.bool))
    torch.testing.assert_close(y[3:, :1], fresh)  # env 0 restarted at step 3
    with pytest.raises(ValueError, match="--core-window is an option of the transformer core, not of --core elman"):
        cores.CoreSpec(kind="elman", window=8)
    torch.manual_seed(0)
    agent = PPO(PPOConfig(num_envs=2, num_steps=4, num_minibatches=1, update_epochs=1,
                          core=cores.CoreSpec(kind="elman", size=8)),
                (3,), torch.float32, gym.spaces.Discrete(2))
    before = [p.detach().clone() for p in agent.policy.core.parameters()]
    for t in range(4):
        obs = torch.randn(2, 3)
        agent.explore(obs, t)
        agent.rollout.record(torch.ones(2), torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool))
    agent._next_obs = torch.randn(2, 3)
    assert agent.train(8, 2) is not None
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.core.parameters(), strict=True))
    assert dc.replace(agent.config).core_spec.adapter is elman
