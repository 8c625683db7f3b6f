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

from agents import targets
from agents.actor_critic import normalize
from agents.policies import ActorCritic
from envs.vector import TensorVecEnv
from foundations.checks import positive_int, unit_interval
from foundations.compiling import compiled_if
from foundations.nets import fused_optimizers


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
    compile: run the update's loss (forward and backward graphs) and the acting forward
      through ``torch.compile`` (CUDA: with CUDA graphs); the same math as eager.
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
    compile: bool = False

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

    @classmethod
    def for_env(cls, config: REINFORCEConfig, env: TensorVecEnv, device: torch.device, seed: int) -> REINFORCE:
        """The agent for ``env``'s observations and action space (an experiment's ``build``)."""
        return cls(config, env.obs_shape, env.obs_dtype, env.single_action_space, device=device, seed=seed)

    def __init__(self, config: REINFORCEConfig, obs_shape: tuple[int, ...], obs_dtype: torch.dtype,
                 action_space: gym.Space, device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.config, self.device = config, torch.device(device)
        self.policy = ActorCritic.for_space(obs_shape, action_space, config.hidden_sizes)
        self.policy.to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate,
                                          fused=fused_optimizers(self.device))
        self._actor = compiled_if(config.compile, self.policy.actor, self.device)
        self._loss = compiled_if(config.compile, self.loss, self.device)
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

    def _sample(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions ``[B]`` or ``[B, D]`` drawn from the policy (its actor half: no values needed)."""
        with torch.no_grad():
            return self.policy.draw(self._actor(obs), self.generator, deterministic)

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Env actions for evaluation (the policy's mode by default)."""
        return self.policy.clip(self._sample(obs, deterministic))

    def explore(self, obs: torch.Tensor, step: int) -> torch.Tensor:
        actions = self._sample(obs, deterministic=False)
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

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        """REINFORCE's loss over the recorded steps: ``obs`` ``[B, *obs_shape]``, ``actions``, ``returns`` ``[B]``.

        ``-mean(log pi(a|s) (G - b(s))) - ent_coef * H (+ vf_coef * 0.5 mean((b(s) - G)^2))``
        with ``b`` the value head when ``baseline`` (else no baseline) and ``G`` standardised
        over the batch when ``normalize_returns``. Returns ``{"loss", "policy_loss",
        "value_loss", "entropy"}`` (0-d tensors).
        """
        c = self.config
        if c.normalize_returns and returns.numel() > 1:
            returns = normalize(returns)
        log_prob, entropy, values = self.policy.evaluate(obs, actions)
        adv = returns - values.detach() if c.baseline else returns
        policy_loss = -(log_prob * adv).mean()
        value_loss = 0.5 * (values - returns).square().mean()
        entropy = entropy.mean()
        loss = policy_loss - c.ent_coef * entropy
        if c.baseline:
            loss = loss + c.vf_coef * value_loss
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    def learn(self) -> dict[str, torch.Tensor]:
        """One gradient step on the recorded complete episodes."""
        c = self.config
        rewards, cuts, recorded = torch.stack(self._rewards), torch.stack(self._cuts), torch.stack(self._recorded)
        returns = targets.discounted_returns(rewards, torch.full_like(rewards, c.gamma), cuts)
        # a step belongs to a complete episode if its env ends an episode at or after it
        complete = torch.flip(torch.cummax(torch.flip(cuts.int(), [0]), dim=0).values, [0]).bool()
        mask = recorded & complete
        terms = self._loss(torch.stack(self._obs)[mask], torch.stack(self._actions)[mask], returns[mask])
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if c.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), c.max_grad_norm)
        self.optimizer.step()
        return {f"losses/{k}": terms[k].detach() for k in ("policy_loss", "value_loss", "entropy")}

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


#: Named hyperparameter sets (``--preset``). Flags given on the command line override them.
PRESETS: dict[str, REINFORCEConfig] = {
    "cartpole": REINFORCEConfig(total_steps=100_000, num_envs=1, episodes_per_update=1, learning_rate=1e-3,
                                gamma=0.99, hidden_sizes=(64, 64)),
}

PRESET_NOTES: dict[str, str] = {
    "cartpole": "Monte Carlo policy gradient with a learned baseline on CartPole-v1 (Williams 1992; Sutton & Barto 13.4)",
}
