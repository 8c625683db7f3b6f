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
        if self.core is not None and self.num_envs % self.num_minibatches:
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
        if self.recurrent:
            return self._learn_sequences(advantages, returns)
        c, r = self.config, self.rollout
        b = c.batch_size
        # [obs, actions, old log-probs, old values, advantages, returns], each [batch, ...]
        columns = (r.obs.flatten(0, 1), r.actions.flatten(0, 1), r.log_probs.flatten(), r.values.flatten(),
                   advantages.flatten(), returns.flatten())
        mb = b // c.num_minibatches
        names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")
        sums = torch.zeros(len(names), device=self.device)
        count = 0
        for _ in range(c.update_epochs):
            perm = torch.randperm(b, device=self.device, generator=self.generator)
            # shuffle each column once per epoch; minibatches are then contiguous slices (views)
            shuffled = [col.index_select(0, perm) for col in columns]
            for start in range(0, b, mb):
                terms = self.gradient_step(*(col[start:start + mb] for col in shuffled))
                sums += torch.stack([terms[k] for k in names])  # one op, not one per metric
                count += 1
            if c.target_kl is not None and float(terms["approx_kl"]) > c.target_kl:
                break
        means = sums / count
        return {f"losses/{k}": means[i] for i, k in enumerate(names)}

    def _learn_sequences(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        """A recurrent agent's epochs: minibatches are sets of envs, each a whole ``[T, b]``
        sequence re-run through the core from the rollout's stored state with its resets."""
        c, r = self.config, self.rollout
        columns = (r.obs, r.actions, r.log_probs, r.values, advantages, returns, r.starts)
        core = self.policy.core
        assert core is not None
        mb = c.num_envs // c.num_minibatches
        names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")
        sums = torch.zeros(len(names), device=self.device)
        count = 0
        for _ in range(c.update_epochs):
            perm = torch.randperm(c.num_envs, device=self.device, generator=self.generator)
            for start in range(0, c.num_envs, mb):
                envs = perm[start:start + mb]
                batch = [col.index_select(1, envs) for col in columns]
                terms = self.gradient_step(*batch, *core.select(r.begin_state, envs))
                sums += torch.stack([terms[k] for k in names])
                count += 1
            if c.target_kl is not None and float(terms["approx_kl"]) > c.target_kl:
                break
        means = sums / count
        return {f"losses/{k}": means[i] for i, k in enumerate(names)}
