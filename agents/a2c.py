"""Synchronous advantage actor-critic (A2C; Mnih et al. 2016, synchronous variant).

One gradient step per rollout on ``-log pi(a|s) * A - ent_coef * H + vf_coef * 0.5 (R - V)^2``
averaged over the ``num_steps x num_envs`` batch, with n-step returns (``gae_lambda=1``, the
default) or GAE, and RMSProp (the original) or Adam.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from agents.actor_critic import ActorCriticAgent, ActorCriticConfig, normalize


@dataclasses.dataclass(frozen=True)
class A2CConfig(ActorCriticConfig):
    """A2C hyperparameters (defaults: Stable-Baselines3's A2C, i.e. the OpenAI Baselines setting)."""

    num_envs: int = 8
    num_steps: int = 5
    learning_rate: float = 7e-4
    anneal_lr: bool = False
    optimizer: Literal["adam", "rmsprop"] = "rmsprop"
    gae_lambda: float = 1.0
    norm_adv: bool = False
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float | None = 0.5


class A2C(ActorCriticAgent):
    """A2C agent; see :class:`agents.actor_critic.ActorCriticAgent` for the interface."""

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor,
             starts: torch.Tensor | None = None, *state: torch.Tensor) -> dict[str, torch.Tensor]:
        """``-log pi(a|s) A - ent_coef H + vf_coef 0.5 (R - V)^2`` averaged over the batch ``[B, ...]``
        (a recurrent agent's: the whole ``[T, N, ...]`` rollout with its ``starts`` and core ``state``)."""
        c = self.config
        advantages, returns = advantages.flatten(), returns.flatten()
        if c.norm_adv:
            advantages = normalize(advantages)
        log_prob, entropy, values = self.evaluate(obs, actions, starts, state)
        policy_loss = -(log_prob * advantages).mean()
        value_loss = 0.5 * (values - returns).square().mean()
        entropy = entropy.mean()
        return {"loss": policy_loss - c.ent_coef * entropy + c.vf_coef * value_loss,
                "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    def learn(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        r = self.rollout
        if self.recurrent:
            terms = self.gradient_step(r.obs, r.actions, advantages, returns, r.starts, *r.begin_state)
        else:
            terms = self.gradient_step(r.obs.flatten(0, 1), r.actions.flatten(0, 1), advantages.flatten(),
                                       returns.flatten())
        return {f"losses/{k}": terms[k] for k in ("policy_loss", "value_loss", "entropy")}


#: Named hyperparameter sets (``--preset``). Flags given on the command line override them.
PRESETS: dict[str, A2CConfig] = {
    "default": A2CConfig(),
    "atari": A2CConfig(total_steps=10_000_000, num_envs=16, ent_coef=0.01, vf_coef=0.25),
}

PRESET_NOTES: dict[str, str] = {
    "default": "A2C as in Stable-Baselines3 / OpenAI Baselines: RMSProp (7e-4), 5-step returns, 8 envs",
    "atari": "Atari, 10M steps, 16 envs, entropy 0.01 (Mnih et al. 2016; the Baselines A2C settings)",
}
