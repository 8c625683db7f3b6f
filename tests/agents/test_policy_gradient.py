import gymnasium as gym
import pytest
import torch
from torch import distributions as D

from agents.a2c import A2C, A2CConfig
from agents.policies import (
    ActorCritic,
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
)
from agents.ppo import PPO, PPOConfig
from agents.reinforce import REINFORCE, REINFORCEConfig
from agents.rollout import Rollout
from agents.targets import discounted_returns, generalized_advantages, ppo_losses


def test_gae_hand_computed_with_termination_and_truncation_in_the_window():
    gamma, lam = 0.9, 0.8
    # one env, 4 steps: step 1 terminates, step 2 starts a new episode that is truncated at step 3?
    # no: step 2 is truncated (bootstrap from its final observation's value 5.0), step 3 continues.
    r = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    v = torch.tensor([[0.5], [1.0], [1.5], [2.0]])
    terminated = torch.tensor([[False], [True], [False], [False]])
    truncated = torch.tensor([[False], [False], [True], [False]])
    final_v, last_v = 5.0, 3.0
    next_v = torch.tensor([[1.0], [0.0], [final_v], [last_v]])  # step 1's is unused (terminated)
    disc = gamma * (~terminated).float()
    cut = terminated | truncated
    adv = generalized_advantages(r, disc, v, next_v, cut, lam)
    d3 = 4.0 + gamma * last_v - 2.0
    d2 = 3.0 + gamma * final_v - 1.5
    d1 = 2.0 - 1.0
    d0 = 1.0 + gamma * 1.0 - 0.5
    expected = torch.tensor([[d0 + gamma * lam * d1], [d1], [d2], [d3]])
    torch.testing.assert_close(adv, expected)
    # the Rollout builds the same inputs from what the loop records
    roll = Rollout(4, 1, (1,), torch.float32, (), torch.int64)
    for t in range(4):
        roll.add(torch.zeros(1, 1), torch.zeros(1, dtype=torch.int64), torch.zeros(1), v[t])
        roll.record(r[t], terminated[t], truncated[t], torch.tensor([final_v]) if truncated[t, 0] else None)
    adv2, ret2 = roll.advantages(torch.tensor([last_v]), gamma, lam)
    torch.testing.assert_close(adv2, expected)
    torch.testing.assert_close(ret2, expected + v)


def test_gae_lambda_one_is_monte_carlo_minus_baseline():
    g = torch.Generator().manual_seed(0)
    r = torch.randn(6, 3, generator=g)
    v = torch.randn(6, 3, generator=g)
    cut = torch.zeros(6, 3, dtype=torch.bool)
    cut[2, 0] = cut[5, :] = True
    disc = 0.97 * (~cut).float()  # every end here is a termination
    next_v = torch.cat([v[1:], torch.zeros(1, 3)])
    adv = generalized_advantages(r, disc, v, next_v, cut, 1.0)
    mc = discounted_returns(r, torch.full_like(r, 0.97), cut)
    torch.testing.assert_close(adv + v, mc)
    assert mc[2, 0] == r[2, 0] and torch.allclose(mc[1, 0], r[1, 0] + 0.97 * r[2, 0])


def test_ppo_losses_hand_computed():
    log_prob = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    old = torch.log(torch.tensor([0.4, 0.4, 0.2]))
    adv = torch.tensor([1.0, -2.0, 0.5])
    values = torch.tensor([1.0, 2.0, 3.0])
    old_values = torch.tensor([0.5, 2.5, 3.0])
    returns = torch.tensor([2.0, 1.0, 3.5])
    out = ppo_losses(log_prob, old, adv, values, old_values, returns, clip_coef=0.2, clip_vloss=True)
    ratio = torch.tensor([1.25, 0.75, 1.0])
    # per sample max(-A r, -A clip(r)): [-1*1.25 vs -1*1.2 -> -1.2], [2*0.75 vs 2*0.8 -> 1.6], [-0.5]
    torch.testing.assert_close(out["policy_loss"], torch.tensor((-1.2 + 1.6 - 0.5) / 3))
    # values clipped to old +- 0.2: [0.7, 2.3, 3.0]; max of squared errors: [max(1, 1.69), max(1, 1.69), max(.25,.25)]
    torch.testing.assert_close(out["value_loss"], torch.tensor(0.5 * (1.69 + 1.69 + 0.25) / 3))
    torch.testing.assert_close(out["clipfrac"], torch.tensor(2 / 3))
    kl = ((ratio - 1) - ratio.log()).mean()
    torch.testing.assert_close(out["approx_kl"], kl)
    plain = ppo_losses(log_prob, old, adv, values, old_values, returns, clip_coef=0.2, clip_vloss=False)
    torch.testing.assert_close(plain["value_loss"], torch.tensor(0.5 * (1 + 1 + 0.25) / 3))


def test_log_probs_and_entropies_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=g)
    a = torch.randint(0, 4, (5,), generator=g)
    ref = D.Categorical(logits=logits)
    torch.testing.assert_close(categorical_log_prob(logits, a), ref.log_prob(a))
    torch.testing.assert_close(categorical_entropy(logits), ref.entropy())
    mean, log_std = torch.randn(5, 3, generator=g), torch.randn(3, generator=g)
    x = torch.randn(5, 3, generator=g)
    normal = D.Independent(D.Normal(mean, log_std.exp().expand(5, 3)), 1)
    torch.testing.assert_close(gaussian_log_prob(x, mean, log_std), normal.log_prob(x))
    torch.testing.assert_close(gaussian_entropy(log_std, 5), normal.entropy())


def test_actor_critic_samples_follow_the_policy():
    torch.manual_seed(0)
    pi = ActorCritic((3,), num_actions=3)
    with torch.no_grad():
        pi.policy_head.weight.zero_()
        pi.policy_head.bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    obs = torch.zeros(30_000, 3)
    actions, logp, _ = pi.sample(obs, torch.Generator().manual_seed(0))
    freq = torch.bincount(actions, minlength=3).float() / 30_000
    torch.testing.assert_close(freq, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0), atol=0.01, rtol=0)
    torch.testing.assert_close(logp, categorical_log_prob(pi(obs)[0], actions))
    gauss = ActorCritic((3,), action_dim=2, log_std_init=-1.0)
    x, logp, _ = gauss.sample(obs[:20_000], torch.Generator().manual_seed(1))
    torch.testing.assert_close(x.std(0), torch.full((2,), torch.e ** -1), atol=0.01, rtol=0)


def test_continuous_actions_clipped_for_env_but_rollout_keeps_the_sample():
    space = gym.spaces.Box(-0.1, 0.1, (2,))
    agent = PPO(PPOConfig(num_envs=2, num_steps=4, num_minibatches=2, log_std_init=1.0), (3,), torch.float32, space)
    env_actions = agent.explore(torch.zeros(2, 3), 0)
    stored = agent.rollout.actions[0]
    assert env_actions.abs().max() <= 0.1 + 1e-7
    assert stored.abs().max() > 0.1  # std e: some sample is outside [-0.1, 0.1]
    agent._evaluate_rollout()  # log-probs and values are filled for the rollout in one batch
    torch.testing.assert_close(agent.rollout.log_probs[0], gaussian_log_prob(stored, agent.policy(torch.zeros(2, 3))[0],
                                                                           agent.policy.log_std).detach())


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (2,))], ids=["discrete", "box"])
def test_deferred_log_probs_and_values_equal_those_of_sampling(space):
    """Separate bodies: explore runs the actor only, and the rollout's log-probs and values,
    filled in one batch when it is full, are those ``policy.sample`` gives step by step."""
    torch.manual_seed(0)
    agent = PPO(PPOConfig(num_envs=3, num_steps=4, num_minibatches=2), (5,), torch.float32, space, seed=0)
    assert agent.policy.separate
    g = torch.Generator().set_state(agent.generator.get_state())
    expected = []
    for t in range(4):
        obs = torch.randn(3, 5, generator=torch.Generator().manual_seed(t))
        with torch.no_grad():
            expected.append(agent.policy.sample(obs, g))  # actions, log-probs, values, step by step
        agent.explore(obs, t)
        agent.rollout.record(torch.ones(3), torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool))
    agent._evaluate_rollout()
    for t, (actions, log_probs, values) in enumerate(expected):
        torch.testing.assert_close(agent.rollout.actions[t], actions.to(agent.rollout.actions.dtype))
        torch.testing.assert_close(agent.rollout.log_probs[t], log_probs, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(agent.rollout.values[t], values, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("space", [gym.spaces.Discrete(4), gym.spaces.Box(-1.0, 1.0, (2,))], ids=["discrete", "box"])
def test_policy_checkpoints_with_the_old_stacked_bodies_still_load(space):
    """Before the bodies were two nn.Sequential MLPs they were one stacked module with
    ``bodies.weights.L`` ``[2, out, in]`` (member 0 the actor): such a state dict loads into the
    same functions."""
    torch.manual_seed(0)
    policy = ActorCritic.for_space((5,), space, hidden_sizes=(16, 8))
    old = {k: v for k, v in policy.state_dict().items() if "_body." not in k}
    for layer in (0, 1):
        for kind, name in (("weights", "weight"), ("biases", "bias")):
            old[f"bodies.{kind}.{layer}"] = torch.stack([policy.state_dict()[f"{b}_body.{2 * layer}.{name}"]
                                                        for b in ("actor", "critic")])
    fresh = ActorCritic.for_space((5,), space, hidden_sizes=(16, 8))
    fresh.load_state_dict(old)
    obs = torch.randn(7, 5)
    for a, b in zip(fresh(obs), policy(obs), strict=True):
        torch.testing.assert_close(a, b)


def test_flags_that_do_not_fit_the_action_space_fail_at_start():
    with pytest.raises(ValueError, match="--log-std-init only apply to continuous"):
        PPO(PPOConfig(log_std_init=-0.5), (4,), torch.float32, gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="--clip-actions only apply to continuous"):
        A2C(A2CConfig(clip_actions=False), (4,), torch.float32, gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="Discrete or 1-D Box"):
        PPO(PPOConfig(), (4,), torch.float32, gym.spaces.MultiDiscrete([2, 2]))
    with pytest.raises(ValueError, match="must divide into"):
        PPOConfig(num_envs=3, num_steps=5, num_minibatches=4)
    with pytest.raises(ValueError, match=r"REINFORCEConfig\.episodes_per_update"):
        REINFORCEConfig(episodes_per_update=0)


def test_reinforce_uses_only_complete_recorded_episodes():
    from envs.vector import EpisodeStats, StepResult

    agent = REINFORCE(REINFORCEConfig(num_envs=2, episodes_per_update=2), (1,), torch.float32, gym.spaces.Discrete(2))
    none = EpisodeStats(torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.int64))
    # env 0 ends at t=1 and t=3; env 1 ends at t=2
    ends = [[False, False], [True, False], [False, True], [True, False]]
    for t, e in enumerate(ends):
        obs = torch.full((2, 1), float(t))
        agent.explore(obs, t)
        done = torch.tensor(e)
        res = StepResult(obs, torch.ones(2), done, torch.zeros(2, dtype=torch.bool), obs, done, none)
        agent.observe(obs, None, res)
        metrics = agent.train(t, 2)
        assert (metrics is None) == (t < 2)
        if metrics is not None:
            break
    # after the update at t=2: env 0 is mid-episode (started t=2) -> not recorded until its next reset
    assert agent.recording.tolist() == [False, True]


@pytest.mark.parametrize("space", [gym.spaces.Discrete(3), gym.spaces.Box(-1.0, 1.0, (2,))], ids=["discrete", "box"])
@pytest.mark.parametrize("clip_vloss", [True, False])
def test_ppo_learn_equals_a_cleanrl_style_reference(space, clip_vloss):
    """Two rounds of PPO epochs on one rollout leave the same policy as a reference written the
    CleanRL way (torch.distributions, the losses spelled out, torch's clip_grad_norm_ and Adam)
    on a copy of the policy with the same minibatch order."""
    import copy

    config = PPOConfig(num_envs=4, num_steps=16, update_epochs=2, num_minibatches=2, clip_vloss=clip_vloss,
                       ent_coef=0.05, learning_rate=3e-3, hidden_sizes=(16, 8), clip_coef=0.1)
    torch.manual_seed(0)
    agent = PPO(config, (5,), torch.float32, space, seed=0)
    ref = copy.deepcopy(agent.policy)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=config.learning_rate, eps=config.adam_eps)
    g = torch.Generator().manual_seed(1)
    for _ in range(config.num_steps):
        agent.explore(torch.randn(4, 5, generator=g), 0)
        agent.rollout.record(torch.randn(4, generator=g), torch.zeros(4, dtype=torch.bool),
                             torch.zeros(4, dtype=torch.bool))
    adv, ret = torch.randn(16, 4, generator=g), torch.randn(16, 4, generator=g)
    r = agent.rollout
    obs, act, old_lp, old_v = r.obs.flatten(0, 1), r.actions.flatten(0, 1), r.log_probs.flatten(), r.values.flatten()
    eps = config.clip_coef
    for _ in range(3):  # later rounds: ratios away from 1, clipping active
        order = torch.Generator().set_state(agent.generator.get_state())
        metrics = agent.learn(adv, ret)
        for _ in range(config.update_epochs):
            perm = torch.randperm(64, generator=order)
            for mb in perm.view(2, 32):
                params, v = ref(obs[mb])
                dist = (D.Categorical(logits=params) if ref.discrete
                        else D.Independent(D.Normal(params, ref.log_std.exp()), 1))
                ratio = (dist.log_prob(act[mb]) - old_lp[mb]).exp()
                a = adv.flatten()[mb]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - eps, 1 + eps)).mean()
                target = ret.flatten()[mb]
                v_loss = (v - target) ** 2
                if clip_vloss:
                    v_clipped = old_v[mb] + (v - old_v[mb]).clamp(-eps, eps)
                    v_loss = torch.max(v_loss, (v_clipped - target) ** 2)
                loss = pg - config.ent_coef * dist.entropy().mean() + config.vf_coef * 0.5 * v_loss.mean()
                ref_opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(ref.parameters(), config.max_grad_norm)
                ref_opt.step()
    assert float(metrics["losses/clipfrac"]) > 0  # the clipped branches were exercised
    for a, b in zip(agent.policy.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
