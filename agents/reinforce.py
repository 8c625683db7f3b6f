"""REINFORCE (Williams 1992): Monte Carlo policy gradient with reward-to-go.

``grad J = E[sum_t grad log pi(a_t | s_t) * (G_t - b(s_t))]`` with ``G_t`` the discounted
reward-to-go of *complete* episodes. The vector envs keep stepping while an update waits, so
the agent records an env only from the start of a fresh episode: an episode in progress at
an update (its early steps came from the old policy) is dropped, and that env is recorded
again from its next reset. Optional learned baseline (the value head of an
:class:`agents.policies.ActorCritic`, regressed on the returns) and return normalisation.
Truncated episodes end the return there (no bootstrap: pure Monte Carlo).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import torch

from agents.actor_critic import normalize
from agents.policies import ActorCritic
from agents.targets import discounted_returns
from foundations.checks import positive_int, unit_interval


@dataclasses.dataclass(frozen=True)
class REINFORCEConfig:
    """Attributes:
    total_steps: environment steps to train for (summed over envs).
    num_envs: parallel envs.
    episodes_per_update: complete episodes per gradient step.
    learning_rate: Adam step size.
    gamma: discount factor.
    baseline: subtract a learned state-value baseline (value head, ``vf_coef`` weighted loss).
    normalize_returns: standardise the batch's returns before use.
    ent_coef, vf_coef: entropy bonus and baseline-loss weights.
    max_grad_norm: clip the global gradient norm (``None``: no clipping).
    hidden_sizes: MLP widths of the policy (and of the baseline).
    """

    total_steps: int = 500_000
    num_envs: int = 1
    episodes_per_update: int = 1
    learning_rate: float = 1e-3
    gamma: float = 0.99
    baseline: bool = True
    normalize_returns: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float | None = None
    hidden_sizes: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        for field in ("total_steps", "num_envs", "episodes_per_update"):
            positive_int(f"REINFORCEConfig.{field}", getattr(self, field))
        if not self.learning_rate > 0:
            raise ValueError(f"REINFORCEConfig.learning_rate must be > 0, got {self.learning_rate}")
        unit_interval("REINFORCEConfig.gamma", self.gamma)


class REINFORCE:
    """REINFORCE agent with the training-loop interface of :mod:`agents.loop`.

    Args:
      config: hyperparameters.
      obs_shape, obs_dtype: one observation's shape and dtype.
      action_space: ``Discrete`` or 1-D ``Box`` (Gaussian policy, actions clipped for the env).
      device: where the policy lives.
      seed: seeds the agent's generator (action sampling).
    """

    def __init__(self, config: REINFORCEConfig, obs_shape: tuple[int, ...], obs_dtype: torch.dtype,
                 action_space: gym.Space, device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.config, self.device = config, torch.device(device)
        self.policy = ActorCritic.for_space(obs_shape, action_space, config.hidden_sizes)
        self.policy.to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.recording = torch.ones(config.num_envs, dtype=torch.bool, device=self.device)
        self.completed = 0  # complete recorded episodes waiting for the next update
        self.updates = 0
        self._clear()

    def _clear(self) -> None:
        self._obs: list[torch.Tensor] = []
        self._actions: list[torch.Tensor] = []
        self._rewards: list[torch.Tensor] = []
        self._cuts: list[torch.Tensor] = []
        self._recorded: list[torch.Tensor] = []

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Env actions for evaluation (the policy's mode by default)."""
        with torch.inference_mode():
            actions, _, _ = self.policy.sample(obs, self.generator, deterministic=deterministic)
        return self.policy.clip(actions.clone())

    def explore(self, obs: torch.Tensor, step: int) -> torch.Tensor:
        with torch.no_grad():
            actions = self.policy.sample_actions(obs, self.generator)
        self._obs.append(obs)
        self._actions.append(actions)
        self._recorded.append(self.recording.clone())
        return self.policy.clip(actions)

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, result: Any) -> None:
        cut = result.terminated | result.truncated
        self._rewards.append(result.reward)
        self._cuts.append(cut)
        self.completed += int((cut & self.recording).sum())
        self.recording |= cut  # a fresh episode starts after every end

    def scalars(self, step: int) -> dict[str, float]:
        return {}

    def train(self, step: int, steps_collected: int) -> dict[str, torch.Tensor] | None:
        if self.completed < self.config.episodes_per_update:
            return None
        metrics = self.learn()
        self.recording = self._cuts[-1].clone()  # envs mid-episode wait for their next reset
        self.completed = 0
        self._clear()
        self.updates += 1
        return metrics

    def learn(self) -> dict[str, torch.Tensor]:
        """One gradient step on the recorded complete episodes."""
        c = self.config
        rewards, cuts, recorded = torch.stack(self._rewards), torch.stack(self._cuts), torch.stack(self._recorded)
        returns = discounted_returns(rewards, torch.full_like(rewards, c.gamma), cuts)
        # a step belongs to a complete episode if its env ends an episode at or after it
        complete = torch.flip(torch.cummax(torch.flip(cuts.int(), [0]), dim=0).values, [0]).bool()
        mask = recorded & complete
        obs = torch.stack(self._obs)[mask]
        actions = torch.stack(self._actions)[mask]
        g = returns[mask]
        if c.normalize_returns and g.numel() > 1:
            g = normalize(g)
        log_prob, entropy, values = self.policy.evaluate(obs, actions)
        adv = g - values.detach() if c.baseline else g
        policy_loss = -(log_prob * adv).mean()
        value_loss = 0.5 * (values - g).square().mean()
        entropy = entropy.mean()
        loss = policy_loss - c.ent_coef * entropy + (c.vf_coef * value_loss if c.baseline else 0.0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), c.max_grad_norm)
        self.optimizer.step()
        return {"losses/policy_loss": policy_loss.detach(), "losses/value_loss": value_loss.detach(),
                "losses/entropy": entropy.detach()}

    def state_dict(self) -> dict[str, Any]:
        """Policy, optimizer, generator and the episodes collected since the last update."""
        stack = (lambda xs: torch.stack(xs) if xs else torch.zeros(0))  # noqa: E731
        return {
            "policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(), "recording": self.recording, "completed": self.completed,
            "updates": self.updates, "obs": stack(self._obs), "actions": stack(self._actions),
            "rewards": stack(self._rewards), "cuts": stack(self._cuts), "recorded": stack(self._recorded),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.recording = state["recording"].to(self.device)
        self.completed, self.updates = int(state["completed"]), int(state["updates"])
        self._clear()
        for name in ("obs", "actions", "rewards", "cuts", "recorded"):
            getattr(self, f"_{name}").extend(state[name].to(self.device).unbind(0))
