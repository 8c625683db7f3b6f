"""PQN: parallelised Q-learning without replay or target network (Gallici et al. 2024,
"Simplifying Deep Temporal Difference Learning").

Many envs act epsilon-greedily for a short rollout; the rollout's Q(lambda) returns
(:func:`agents.targets.q_lambda_returns`) are regressed on for a few epochs of minibatches, and
the rollout is thrown away. Stability comes from LayerNorm in the Q-network (normalised features
keep the bootstrapped targets from chasing themselves upward) and from the decorrelation that many
parallel envs give, instead of from a replay buffer and a target network.

Step counts (``total_steps``, exploration) are environment steps summed over the vector env, as
in :mod:`agents.dqn`. Truncated episodes bootstrap from their final observation's value
(CleanRL's ``pqn.py`` treats truncation as termination).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F

from agents import targets
from agents.qnets import QNetwork
from agents.rollout import Rollout
from agents.schedules import linear_schedule, set_learning_rate
from envs.vector import TensorVecEnv
from foundations.checks import choose, positive_int, unit_interval
from foundations.compiling import compiled_if
from foundations.nets import eval_mode, fused_optimizers


@dataclasses.dataclass(frozen=True)
class PQNConfig:
    """PQN hyperparameters (defaults: CleanRL's ``pqn.py``).

    Attributes:
      total_steps: environment steps to train for (summed over envs).
      num_envs, num_steps: a rollout is ``num_steps`` steps of each of ``num_envs`` envs.
      learning_rate, anneal_lr: step size, linearly annealed to 0 over training when set.
      optimizer: ``"radam"`` (the paper's and CleanRL's) or ``"adam"``.
      gamma: discount factor.
      reward_scale: multiply the learner's rewards by this (episode statistics stay raw); the
        PQN authors' CartPole setting scales by 0.1, which keeps the values near unit scale.
      q_lambda: the trace decay of the Q(lambda) returns (0: one-step targets, 1: Monte Carlo).
      update_epochs, num_minibatches: passes over each rollout, each in this many shuffled
        minibatches (``num_envs * num_steps`` must divide evenly).
      epsilon_start, epsilon_end, exploration_fraction: epsilon-greedy (an independent coin per
        env) decays linearly from start to end over ``exploration_fraction * total_steps`` steps.
      eval_epsilon: epsilon of the evaluation policy.
      max_grad_norm: clip the global gradient norm to this (``None``: no clipping).
      loss: ``"mse"`` (the paper's) or ``"huber"``.
      hidden_sizes: MLP trunk widths (vector observations; image observations use NatureCNN).
      layer_norm: LayerNorm in the trunk (after each hidden layer of the MLP, each conv and the
        fully connected layer of the Nature CNN), as the paper requires.
      cnn_features: width of NatureCNN's fully connected layer.
      channels_last: run the CNN in channels-last memory format.
      compile: run the loss (forward and backward graphs) and the acting forward through
        ``torch.compile``; the same math as eager.
    """

    total_steps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128
    learning_rate: float = 2.5e-4
    anneal_lr: bool = True
    optimizer: Literal["radam", "adam"] = "radam"
    gamma: float = 0.99
    reward_scale: float = 1.0
    q_lambda: float = 0.65
    update_epochs: int = 4
    num_minibatches: int = 4
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.5
    eval_epsilon: float = 0.0
    max_grad_norm: float | None = 10.0
    loss: Literal["mse", "huber"] = "mse"
    hidden_sizes: tuple[int, ...] = (120, 84)
    layer_norm: bool = True
    cnn_features: int = 512
    channels_last: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("total_steps", "num_envs", "num_steps", "update_epochs", "num_minibatches", "cnn_features"):
            positive_int(f"PQNConfig.{name}", getattr(self, name))
        if self.batch_size % self.num_minibatches:
            raise ValueError(f"PQNConfig: num_envs * num_steps = {self.num_envs} * {self.num_steps} = {self.batch_size} "
                             f"must divide into num_minibatches = {self.num_minibatches} equal minibatches")
        if not self.learning_rate > 0:
            raise ValueError(f"PQNConfig.learning_rate must be > 0, got {self.learning_rate}")
        if not self.reward_scale > 0:
            raise ValueError(f"PQNConfig.reward_scale must be > 0, got {self.reward_scale}")
        if not 0.0 <= self.q_lambda <= 1.0:
            raise ValueError(f"PQNConfig.q_lambda must be in [0, 1], got {self.q_lambda}")
        for name in ("gamma", "epsilon_start", "epsilon_end", "eval_epsilon", "exploration_fraction"):
            unit_interval(f"PQNConfig.{name}", getattr(self, name))
        if self.optimizer not in ("radam", "adam"):
            raise ValueError(f"PQNConfig.optimizer must be 'radam' or 'adam', got {self.optimizer!r}")
        if self.loss not in ("mse", "huber"):
            raise ValueError(f"PQNConfig.loss must be 'mse' or 'huber', got {self.loss!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"PQNConfig.max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"PQNConfig.hidden_sizes must all be >= 1, got {list(self.hidden_sizes)}")

    @property
    def batch_size(self) -> int:
        """Transitions per rollout."""
        return self.num_envs * self.num_steps


class PQN:
    """A PQN agent: Q-network, optimizer, rollout and its own random generators.

    The loop interface of :mod:`agents.loop`: :meth:`explore` (epsilon-greedy actions, recorded
    with their observations and ``max_a Q``), :meth:`observe` (the env's answer), :meth:`train`
    (when the rollout is full: returns, epochs of minibatch updates, then a fresh rollout),
    :meth:`scalars`, :meth:`state_dict`.

    Args:
      config: hyperparameters.
      obs_shape, obs_dtype: one observation's shape and dtype (``(4, 84, 84)`` uint8 for Atari).
      num_actions: size of the discrete action space.
      device: where the network and the rollout live.
      seed: seeds the agent's generators (exploration on the host, minibatch order on ``device``).
        Network initialisation uses torch's global generator: seed it first.
    """

    def __init__(self, config: PQNConfig, obs_shape: tuple[int, ...], obs_dtype: torch.dtype, num_actions: int,
                 device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.config, self.device = config, torch.device(device)
        self.num_actions = num_actions
        self.q = QNetwork(tuple(obs_shape), num_actions, hidden_sizes=config.hidden_sizes,
                          channels_last=config.channels_last, cnn_features=config.cnn_features,
                          layer_norm=config.layer_norm).to(self.device)
        if config.optimizer == "radam":
            self.optimizer: torch.optim.Optimizer = torch.optim.RAdam(self.q.parameters(), lr=config.learning_rate)
        else:
            self.optimizer = torch.optim.Adam(self.q.parameters(), lr=config.learning_rate,
                                              fused=fused_optimizers(self.device))
        self.rollout = Rollout(config.num_steps, config.num_envs, tuple(obs_shape), obs_dtype, (), torch.int64,
                               self.device)
        # What acting and learning call: the methods below, or the same methods compiled.
        self._loss = compiled_if(config.compile, self.loss, self.device)
        self._values = compiled_if(config.compile, self.q, self.device)
        self.generator = torch.Generator(self.device).manual_seed(seed)  # minibatch order
        self.rng = np.random.Generator(np.random.PCG64(seed))  # exploration
        self.updates = 0  # gradient steps taken
        self._next_obs: torch.Tensor | None = None

    @classmethod
    def for_env(cls, config: PQNConfig, env: TensorVecEnv, device: torch.device, seed: int) -> PQN:
        """The agent for ``env``'s observations and actions (an experiment's ``build``); a
        continuous action space is a ``ValueError``."""
        if not env.is_discrete:
            raise ValueError(f"PQN needs a discrete action space (it maximises over actions), got "
                             f"{env.single_action_space}")
        return cls(config, env.obs_shape, env.obs_dtype, env.num_actions, device=device, seed=seed)

    # ------------------------------------------------------------------------ acting
    def epsilon(self, step: int) -> float:
        """Exploration rate after ``step`` environment steps."""
        c = self.config
        return linear_schedule(c.epsilon_start, c.epsilon_end, int(c.exploration_fraction * c.total_steps), step)

    def act(self, obs: torch.Tensor, epsilon: float, rng: np.random.Generator | None = None,
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Epsilon-greedy actions ``[batch]`` int64 for ``obs`` ``[batch, *obs_shape]``, and
        ``max_a Q(obs, a)`` ``[batch]``. Each env draws its own coin from ``rng`` (default: the
        agent's, saved with its state); the values are computed for every env, explored or not
        (the returns bootstrap from them)."""
        rng = self.rng if rng is None else rng
        n = obs.shape[0]
        explore = rng.random(n) < epsilon
        random = (rng.random(n) * self.num_actions).astype(np.int64)  # uniform actions, one draw per env
        with torch.no_grad():
            greedy_values, greedy = self._values(obs).max(dim=1)
        if not explore.any():
            return greedy, greedy_values
        actions = torch.where(torch.from_numpy(explore).to(self.device), torch.from_numpy(random).to(self.device), greedy)
        return actions, greedy_values

    def evaluation(self) -> contextlib.AbstractContextManager[None]:
        """Within the block the Q-network is in eval mode (the evaluation policy acts inside it)."""
        return eval_mode(self.q)

    def explore(self, obs: torch.Tensor, step: int) -> torch.Tensor:
        """Training actions at ``step`` (the scheduled epsilon), recorded in the rollout with
        ``obs`` and ``max_a Q(obs, a)``."""
        actions, values = self.act(obs, self.epsilon(step))
        self.rollout.add(obs, actions, values=values)
        return actions

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, result: Any) -> None:
        """Record the env's answer (an ``envs.StepResult``); values the true final observations
        of truncated episodes, from which their returns bootstrap."""
        final_values = None
        if len(result.episodes) and bool(result.truncated.any()):
            with torch.no_grad():
                final_values = torch.where(result.truncated, self._values(result.next_obs).amax(dim=1), 0.0)
        reward = result.reward if self.config.reward_scale == 1.0 else result.reward * self.config.reward_scale
        self.rollout.record(reward, result.terminated, result.truncated, final_values)
        self._next_obs = result.obs

    def learning_rate(self, step: int) -> float:
        """The step size after ``step`` environment steps."""
        c = self.config
        return linear_schedule(c.learning_rate, 0.0, c.total_steps, step) if c.anneal_lr else c.learning_rate

    def scalars(self, step: int) -> dict[str, float]:
        """Schedule values to log at ``step``."""
        return {"charts/epsilon": self.epsilon(step), "charts/learning_rate": self.optimizer.param_groups[0]["lr"]}

    # ---------------------------------------------------------------------- learning
    def returns(self) -> torch.Tensor:
        """Q(lambda) returns ``[T, N]`` of the full rollout (:func:`agents.targets.q_lambda_returns`)."""
        c, r = self.config, self.rollout
        with torch.no_grad():
            last = self._values(self._next_obs).amax(dim=1)
        next_values = torch.cat([r.values[1:], last.unsqueeze(0).to(r.values.dtype)])
        next_values = torch.where(r.truncated, r.final_values, next_values)
        discounts = c.gamma * (~r.terminated).to(r.rewards.dtype)
        return targets.q_lambda_returns(r.rewards, discounts, next_values, r.terminated | r.truncated, c.q_lambda)

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The regression of ``Q(obs, actions)`` on ``returns``: ``obs`` ``[B, *obs_shape]``,
        ``actions`` ``[B]`` int64, ``returns`` ``[B]``. Returns ``(loss [] with its graph,
        Q(obs, actions) [B] detached)``."""
        q_sa = targets.action_values(self.q(obs), actions)
        loss_fn = F.mse_loss if self.config.loss == "mse" else F.huber_loss
        return loss_fn(q_sa, returns), q_sa.detach()

    def train(self, step: int, steps_collected: int) -> dict[str, torch.Tensor] | None:
        """When the rollout is full: its returns, ``update_epochs`` passes of ``num_minibatches``
        shuffled minibatches (:meth:`loss`, backward, clip, step), and an empty rollout.

        Returns ``{"losses/td_loss": [] (the epochs' mean), "losses/q_values": [B] (the last
        minibatch's Q of the actions taken)}``, detached, not synchronised; ``None`` meanwhile.
        """
        if not self.rollout.full:
            return None
        c, r = self.config, self.rollout
        set_learning_rate(self.optimizer, self.learning_rate(step - c.batch_size))  # at this rollout's start, as PPO's
        columns = (r.obs.flatten(0, 1), r.actions.flatten(0, 1), self.returns().flatten())
        size = c.batch_size // c.num_minibatches
        total = torch.zeros((), device=self.device)
        for _ in range(c.update_epochs):
            perm = torch.randperm(c.batch_size, device=self.device, generator=self.generator)
            shuffled = [col.index_select(0, perm) for col in columns]  # minibatches are then slices
            for start in range(0, c.batch_size, size):
                loss, q_sa = self._loss(*(col[start:start + size] for col in shuffled))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if c.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self.q.parameters(), c.max_grad_norm)
                self.optimizer.step()
                total += loss.detach()
                self.updates += 1
        r.reset()
        return {"losses/td_loss": total / (c.update_epochs * c.num_minibatches), "losses/q_values": q_sa}

    # ------------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Network, optimizer, generators, the rollout in progress and counters."""
        return {
            "q": self.q.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
            "rollout": self.rollout.state_dict(),
            "next_obs": self._next_obs,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.q.load_state_dict(state["q"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.rng.bit_generator.state = state["rng"]
        self.rollout.load_state_dict(state["rollout"])
        self._next_obs = None if state["next_obs"] is None else state["next_obs"].to(self.device)
        self.updates = int(state["updates"])


def evaluation_policy(agent: PQN, config: PQNConfig, rng: np.random.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The evaluation policy: epsilon-greedy at ``eval_epsilon`` (coins from ``rng``) with the
    Q-network in eval mode."""

    def policy(obs: torch.Tensor) -> torch.Tensor:
        with agent.evaluation():
            return agent.act(obs, config.eval_epsilon, rng=rng)[0]

    return policy


#: Named hyperparameter sets (``--preset``). Flags given on the command line override them.
PRESETS: dict[str, PQNConfig] = {
    # CleanRL's pqn.py: 4 envs x 128 steps, 4 epochs of 4 minibatches, RAdam 2.5e-4 annealed,
    # lambda 0.65, epsilon 1 -> 0.05 over half the run, gradient norm clipped at 10, 500k steps.
    "cartpole": PQNConfig(),
    # The authors' CartPole setting (Gallici et al. 2024; purejaxql's config/alg/pqn_cartpole.yaml):
    # 32 envs x 64 steps, 4 epochs of 16 minibatches, two 256-unit layers, RAdam 1e-4 annealed,
    # rewards scaled by 0.1, lambda 0.95, epsilon 1 -> 0.2 over the first 20% of the run.
    # On seeds 1-5 every final greedy evaluation was 500 (CleanRL's values: 4 of 5).
    "cartpole_authors": PQNConfig(num_envs=32, num_steps=64, num_minibatches=16, update_epochs=4,
                                  hidden_sizes=(256, 256), learning_rate=1e-4, reward_scale=0.1, q_lambda=0.95,
                                  epsilon_end=0.2, exploration_fraction=0.2),
    # CleanRL's pqn_atari_envpool.py: the Nature CNN with LayerNorm, 8 envs x 128 steps, 4 epochs of
    # 4 minibatches, epsilon 1 -> 0.01 over the first 10% of 10M steps.
    "atari": PQNConfig(total_steps=10_000_000, num_envs=8, num_steps=128, epsilon_end=0.01,
                       exploration_fraction=0.10, eval_epsilon=0.05),
}

#: One line per preset: its purpose and source (``--help`` lists them; ``--preset list`` shows the values).
PRESET_NOTES: dict[str, str] = {
    "cartpole": "classic control, 500k steps (Gallici et al. 2024; CleanRL's pqn.py)",
    "cartpole_authors": "CartPole-v1, 500k steps, the authors' setting: 32 envs, 256-unit layers, rewards x 0.1, "
                        "lambda 0.95 (purejaxql's pqn_cartpole.yaml)",
    "atari": "Atari with the Nature CNN and LayerNorm, 10M steps (CleanRL's pqn_atari_envpool.py)",
}


def preset(name: str) -> PQNConfig:
    """The named preset; ``ValueError`` listing the known ones for an unknown name."""
    return choose("preset", name, PRESETS)
