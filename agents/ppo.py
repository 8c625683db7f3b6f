"""Proximal policy optimisation with the clipped surrogate (Schulman et al. 2017).

Implementation details after Huang et al., "The 37 implementation details of PPO" (2022):
GAE, per-minibatch advantage normalisation, clipped value loss (a flag), entropy bonus,
``update_epochs`` passes over ``num_minibatches`` shuffled minibatches, global gradient
clipping, linear learning-rate annealing and an optional early stop of the epochs when the
approximate KL divergence exceeds ``target_kl``.
"""

from __future__ import annotations

import dataclasses

import torch

from agents import targets
from agents.actor_critic import ActorCriticAgent, ActorCriticConfig, normalize


@dataclasses.dataclass(frozen=True)
class PPOConfig(ActorCriticConfig):
    """PPO hyperparameters (defaults: CleanRL's ``ppo.py``).

    Attributes (besides :class:`ActorCriticConfig`'s):
      update_epochs: passes over each rollout.
      num_minibatches: minibatches per pass (``batch_size`` must divide evenly).
      clip_coef: surrogate clipping range epsilon (also the value clipping range).
      clip_vloss: clip the value loss around the rollout's values.
      target_kl: stop the epochs early once the approximate KL exceeds this (``None``: never).
    """

    update_epochs: int = 4
    num_minibatches: int = 4
    clip_coef: float = 0.2
    clip_vloss: bool = True
    target_kl: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.update_epochs < 1 or self.num_minibatches < 1:
            raise ValueError(f"PPOConfig.update_epochs and num_minibatches must be >= 1, got "
                             f"{self.update_epochs}, {self.num_minibatches}")
        if self.core_spec is not None and self.num_envs % self.num_minibatches:
            raise ValueError(f"PPOConfig: with --core, minibatches are sets of envs: num_envs = {self.num_envs} "
                             f"must divide into num_minibatches = {self.num_minibatches}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(f"PPOConfig: num_envs * num_steps = {self.batch_size} must divide into "
                             f"num_minibatches = {self.num_minibatches} equal minibatches")
        if not 0 < self.clip_coef < 1:
            raise ValueError(f"PPOConfig.clip_coef must be in (0, 1), got {self.clip_coef}")
        if self.target_kl is not None and not self.target_kl > 0:
            raise ValueError(f"PPOConfig.target_kl must be > 0 or None, got {self.target_kl}")


class PPO(ActorCriticAgent):
    """PPO agent; see :class:`agents.actor_critic.ActorCriticAgent` for the interface.

    Each minibatch step is :meth:`loss` (the policy's :meth:`~agents.policies.ActorCritic.evaluate`
    and :func:`agents.targets.ppo_losses`), ``backward``, gradient clipping and an optimizer step.
    """

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, old_log_prob: torch.Tensor, old_values: torch.Tensor,
             advantages: torch.Tensor, returns: torch.Tensor, starts: torch.Tensor | None = None,
             *state: torch.Tensor) -> dict[str, torch.Tensor]:
        """PPO's loss on a minibatch (every argument ``[B, ...]``, from the rollout; for a
        recurrent agent ``[T, b, ...]`` env sequences with their ``starts`` and core ``state``).

        ``policy_loss - ent_coef * entropy + vf_coef * value_loss``, with the advantages
        normalised over the minibatch when ``norm_adv``. Returns ``{"loss": ...}`` and the terms
        ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``, ``clipfrac`` (0-d tensors).
        """
        c = self.config
        advantages = advantages.flatten()
        if c.norm_adv:
            advantages = normalize(advantages)
        log_prob, entropy, values = self.evaluate(obs, actions, starts, state)
        terms = targets.ppo_losses(log_prob, old_log_prob.flatten(), advantages, values, old_values.flatten(),
                                   returns.flatten(), c.clip_coef, c.clip_vloss)
        terms["entropy"] = entropy = entropy.mean()
        terms["loss"] = terms["policy_loss"] - c.ent_coef * entropy + c.vf_coef * terms["value_loss"]
        return terms

    def learn(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        """``update_epochs`` passes over the rollout, each in ``num_minibatches`` shuffled
        minibatches (:meth:`agents.rollout.Rollout.minibatches`: steps, or for a recurrent policy
        whole env sequences with their resets and starting state), one :meth:`gradient_step` of
        :meth:`loss` each; the epochs stop early once the approximate KL exceeds ``target_kl``.
        Returns the terms' means over the minibatches."""
        c = self.config
        names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")
        sums = torch.zeros(len(names), device=self.device)
        count = 0
        core = self.policy.core if self.recurrent else None
        for _ in range(c.update_epochs):
            for batch in self.rollout.minibatches(advantages, returns, c.num_minibatches, self.generator, core):
                terms = self.gradient_step(*batch)
                sums += torch.stack([terms[k] for k in names])  # one op, not one per metric
                count += 1
            if c.target_kl is not None and float(terms["approx_kl"]) > c.target_kl:
                break
        means = sums / count
        return {f"losses/{k}": means[i] for i, k in enumerate(names)}


#: Named hyperparameter sets (``--preset``). Flags given on the command line override them.
PRESETS: dict[str, PPOConfig] = {
    "classic": PPOConfig(),
    # Tuned for CartPole in 100k steps (the rl-baselines3-zoo setting): short rollouts of 8 envs,
    # many epochs, lambda 0.8, gamma 0.98, learning rate 1e-3 annealed, and no value clipping (as
    # in SB3): returns grow to ~50 while clipping lets a value move 0.2 per rollout, so the critic
    # lagged (explained variance 0.71 vs 0.90 over the first 30k steps, seeds 1-10), which made
    # learning slow and unstable (final evaluations of 184-221 on some seeds).
    "cartpole": PPOConfig(total_steps=100_000, num_envs=8, num_steps=32, learning_rate=1e-3, gamma=0.98,
                          gae_lambda=0.8, update_epochs=20, num_minibatches=1, ent_coef=0.0, clip_vloss=False),
    # Pendulum: gamma 0.9 (the task's horizon is short), long rollouts, 10 epochs of 64-sample
    # minibatches, rewards scaled by 0.1 (they reach -16 per step).
    "pendulum": PPOConfig(total_steps=300_000, num_envs=4, num_steps=1024, learning_rate=1e-3, gamma=0.9,
                          gae_lambda=0.95, update_epochs=10, num_minibatches=64, ent_coef=0.0, clip_coef=0.2,
                          anneal_lr=True, reward_scale=0.1),
    # CleanRL ppo_atari.py: Nature CNN, 8 envs x 128 steps, clip 0.1, 10M steps.
    "atari": PPOConfig(total_steps=10_000_000, num_envs=8, num_steps=128, learning_rate=2.5e-4, clip_coef=0.1,
                       update_epochs=4, num_minibatches=4, ent_coef=0.01),
}

PRESET_NOTES: dict[str, str] = {
    "classic": "PPO's defaults for classic control (Schulman et al. 2017; CleanRL's ppo.py)",
    "cartpole": "CartPole-v1 in 100k steps (rl-baselines3-zoo's tuned PPO, without value clipping)",
    "pendulum": "Pendulum-v1, continuous actions, 300k steps (rl-baselines3-zoo's setting, rewards scaled 0.1)",
    "atari": "Atari with the Nature CNN, 10M steps (CleanRL's ppo_atari.py)",
}
