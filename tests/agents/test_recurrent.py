"""Recurrent actor-critic agents: the learner re-runs exactly what the actor ran, episode resets
hold across the rollout, checkpoints carry the core, and bad configurations are refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agents.a2c import A2C, A2CConfig
from agents.cores import CoreSpec
from agents.ppo import PPO, PPOConfig
from envs import make_env
from envs.evaluate import evaluate
from experiments.driver import policy_mode

SIZES = {"lstm": {}, "gru": {}, "ntm": {"memory_slots": 8, "word_size": 4},
         "dnc": {"memory_slots": 8, "word_size": 4}, "transformer": {"window": 4, "heads": 2},
         "none": {}}


def _agent(core: str, cls=PPO, **kw) -> tuple[PPO, object]:
    torch.manual_seed(0)
    config_cls = PPOConfig if cls is PPO else A2CConfig
    options = {"num_envs": 4, "num_steps": 48, "core": CoreSpec(core, size=16, **SIZES[core]), "hidden_sizes": (16,),
               "total_steps": 10_000, **kw}
    config = config_cls(**options)
    env = make_env("CartPolePositionOnly-v1", num_envs=4, seed=3)
    return cls(config, env.obs_shape, env.obs_dtype, env.single_action_space, seed=1), env


def _collect(agent, env) -> None:
    obs = env.reset()
    for step in range(agent.config.num_steps):
        actions = agent.explore(obs, step)
        result = env.step(actions)
        agent.observe(obs, actions, result)
        obs = result.obs


@pytest.mark.parametrize("core", ["lstm", "gru", "ntm", "dnc", "transformer", "none"])
def test_the_learner_re_runs_the_rollout_to_the_same_log_probs_and_values(core: str) -> None:
    """update_epochs=1, ratio=1: re-running the core over the stored rollout (from its first state,
    with its resets) gives back the log-probs and values the agent acted with."""
    agent, env = _agent(core)
    _collect(agent, env)
    r = agent.rollout
    assert r.full and bool(r.starts[0].all()) and int(r.starts[1:].sum()) >= 4  # episodes ended inside it
    with torch.no_grad():
        log_prob, _, values = agent.policy.evaluate_sequence(r.obs, r.actions, r.begin_state, r.starts)
        envs = torch.tensor([2, 0])  # a minibatch of envs, from their stored state
        sub, _, _ = agent.policy.evaluate_sequence(r.obs[:, envs], r.actions[:, envs],
                                                   agent.policy.core.select(r.begin_state, envs), r.starts[:, envs])
        terms = agent.loss(r.obs, r.actions, r.log_probs, r.values, torch.randn(48, 4), torch.randn(48, 4),
                           r.starts, *r.begin_state)
    torch.testing.assert_close(log_prob, r.log_probs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, r.values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sub, r.log_probs[:, envs], atol=1e-5, rtol=1e-5)
    assert float(terms["approx_kl"]) < 1e-6 and float(terms["clipfrac"]) == 0.0  # ratio = 1
    env.close()


def test_a_core_that_ignores_resets_would_be_caught() -> None:
    """The reset matters: with the episode starts hidden, the re-run log-probs differ."""
    agent, env = _agent("lstm")
    _collect(agent, env)
    r = agent.rollout
    with torch.no_grad():
        leaky, _, _ = agent.policy.evaluate_sequence(r.obs, r.actions, r.begin_state, torch.zeros_like(r.starts))
    assert (leaky - r.log_probs).abs().max() > 1e-4
    env.close()


def test_a_none_core_is_the_feed_forward_step() -> None:
    agent, env = _agent("none")
    p = agent.policy
    obs = torch.randn(5, 2)
    params, values, _ = p.sequence(obs.unsqueeze(0), (), torch.ones(1, 5, dtype=torch.bool))
    features = p.encoder(obs)
    torch.testing.assert_close(params[0], p.policy_head(features))
    torch.testing.assert_close(values[0], p.value_head(features).squeeze(-1))
    env.close()


@pytest.mark.parametrize("cls", [PPO, A2C])
def test_training_updates_checkpoints_resume_exactly_and_evaluation_keeps_state(cls) -> None:
    agent, env = _agent("gru", cls=cls, num_steps=16, bptt=5)
    obs = env.reset()

    def run(agent, obs, steps):
        metrics = None
        for step in range(steps):
            actions = agent.explore(obs, step)
            result = env.step(actions)
            agent.observe(obs, actions, result)
            obs = result.obs
            metrics = agent.train(step, 4) or metrics
        return obs, metrics

    before = [p.detach().clone() for p in agent.policy.parameters()]
    obs, metrics = run(agent, obs, 24)  # one update, half a rollout
    assert metrics is not None and all(torch.isfinite(v) for v in metrics.values() if v.dim() == 0)
    assert any((a - b).abs().max() > 0 for a, b in zip(before, agent.policy.parameters(), strict=True))
    saved = agent.state_dict()
    twin, _ = _agent("gru", cls=cls, num_steps=16, bptt=5)
    twin.load_state_dict(saved)
    for a, b in zip(agent.state, twin.state, strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(agent.rollout.begin_state[0], twin.rollout.begin_state[0])
    with torch.no_grad():
        x = obs.clone()
        a1, a2 = agent.policy_step(x, agent.starts, agent.state), twin.policy_step(x, twin.starts, twin.state)
    torch.testing.assert_close(a1[0], a2[0])
    result = evaluate(policy_mode(agent, agent.config, None), "CartPolePositionOnly-v1", num_episodes=2, seed=0,
                      num_envs=2)
    assert result.returns.shape == (2,) and bool((result.returns >= 8).all())
    env.close()


def test_bad_core_configurations_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="--core-window configure a memory core; give --core"):
        PPOConfig(core=CoreSpec(window=8))
    with pytest.raises(ValueError, match="--bptt configures a memory core; give --core"):
        PPOConfig(bptt=8)
    with pytest.raises(ValueError, match="--core-window is an option of the transformer core, not of --core lstm"):
        PPOConfig(core=CoreSpec("lstm", window=8))
    with pytest.raises(ValueError, match="unknown core 'lstn'"):
        PPOConfig(core=CoreSpec("lstn"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"core must be an agents.cores.CoreSpec .* got 'lstm'"):
        PPOConfig(core="lstm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"--compile with --core applies to the ntm and dnc cores .* not to --core gru"):
        PPOConfig(core=CoreSpec("gru"), compile=True)
    with pytest.raises(ValueError, match="num_envs = 4 must divide into num_minibatches = 3"):
        PPOConfig(core=CoreSpec("gru"), num_envs=4, num_steps=6, num_minibatches=3)
    assert dataclasses.replace(PPOConfig(core=CoreSpec("dnc", memory_slots=8))).core_spec.memory_slots == 8
    assert PPOConfig().core_spec is None


def test_a_configuration_saved_before_the_core_options_were_nested_loads_as_the_same_agent() -> None:
    """Checkpoints and config files written with the flat fields (``core``, ``core_size``, ...)
    rebuild into today's nested spec, with the same values."""
    from experiments.common import rebuild

    today = PPOConfig(core=CoreSpec("dnc", size=32, memory_slots=8, word_size=4), num_minibatches=1, bptt=6)
    saved = dataclasses.asdict(today)
    flat = {k: v for k, v in saved.items() if k != "core"}
    flat.update({"core": "dnc", "core_size": 32, "core_memory_slots": 8, "core_word_size": 4, "core_read_heads": 1,
                 "core_heads": 4, "core_layers": 1, "core_window": 16})
    assert rebuild(PPOConfig(), flat) == today
    assert rebuild(PPOConfig(), saved) == today  # today's layout passes through
    no_core = {k: v for k, v in dataclasses.asdict(PPOConfig()).items() if k != "core"}
    assert rebuild(PPOConfig(), {**no_core, "core": None, "core_size": 128}) == PPOConfig()


@pytest.mark.slow
def test_compile_with_a_memory_core_compiles_its_step_and_learns_the_same(monkeypatch) -> None:
    """``compile=True`` with an NTM core runs the memory's step through ``torch.compile``: the
    rollout and one PPO update give the eager agent's numbers. (Dynamo and AOTAutograd trace the
    step here; Inductor's kernels for it are checked in tests/memory_nets/test_cores.py.)"""
    from memory_nets.core import MemoryCore

    original = MemoryCore.compile_step
    monkeypatch.setattr(MemoryCore, "compile_step", lambda self: original(self, backend="aot_eager"))
    agents = []
    for compile_ in (False, True):
        agent, env = _agent("ntm", num_steps=6, update_epochs=1, num_minibatches=1, compile=compile_)
        _collect(agent, env)
        agent._next_obs = env.reset()
        metrics = agent.train(24, 24)
        assert metrics is not None
        agents.append((agent, metrics))
        env.close()
    (eager, m_eager), (compiled, m_compiled) = agents
    assert hasattr(compiled.policy.core.net.step, "_torchdynamo_orig_callable")  # the compiled step runs
    assert not hasattr(eager.policy.core.net.step, "_torchdynamo_orig_callable")
    torch.testing.assert_close(compiled.rollout.log_probs, eager.rollout.log_probs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m_compiled["losses/policy_loss"], m_eager["losses/policy_loss"], atol=1e-5, rtol=1e-4)
    for a, b in zip(eager.policy.parameters(), compiled.policy.parameters(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
