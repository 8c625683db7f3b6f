"""DQN and its improvements, one flag each: Double, Dueling, n-step, prioritized replay.

References: Mnih et al. 2015 (Nature DQN), van Hasselt et al. 2016 (Double DQN), Wang et al.
2016 (Dueling), Sutton 1988 / Hessel et al. 2018 (n-step), Schaul et al. 2016 (PER).

Step counts (``total_steps``, ``learning_starts``, ``train_frequency``, ``target_update_interval``,
exploration) are *environment steps summed over the vector env* (transitions collected), as in
SB3 and CleanRL; on Atari an environment step is one agent step of 4 frames.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F

from agents import targets
from agents.qnets import QNetwork
from agents.replay import PrioritizedReplayBuffer, ReplayBatch, ReplayBuffer
from agents.schedules import linear_schedule, set_learning_rate
from envs.vector import TensorVecEnv
from foundations.batches import random_crop, random_intensity
from foundations.checks import choose, positive_int, unit_interval
from foundations.compiling import compiled_if
from foundations.nets import eval_mode, fused_optimizers, polyak_update_, reset_noise


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """DQN hyperparameters (defaults: CleanRL's Atari DQN, i.e. Nature DQN with Adam).

    Attributes:
      total_steps: environment steps to train for (summed over envs).
      num_envs: parallel envs collecting transitions.
      learning_rate, adam_eps: Adam's step size and epsilon.
      anneal_lr: decay the step size linearly from ``learning_rate`` to 0 over ``total_steps``
        (the ``lin_`` schedules of rl-baselines3-zoo): late updates then move the greedy policy
        less, so the policy a run ends with is not a draw from the last few large updates.
      buffer_size: replay capacity in transitions.
      gamma: discount factor.
      tau: target update rate at each sync (1.0: hard copy).
      target_update_interval: environment steps between target syncs. ``1`` with ``tau=1`` (and
        no noisy nets) means no separate target: ``target`` is the online net itself and every
        update bootstraps from its current, gradient-stopped values (Dopamine's target update
        period of 1 update, as in DrQ(eps)); next states then go through one forward, not two.
      batch_size: transitions per gradient step.
      epsilon_start, epsilon_end, exploration_fraction: epsilon-greedy decays linearly from
        start to end over ``exploration_fraction * total_steps`` steps.
      exploration_after_warmup: hold ``epsilon_start`` through the warm-up and start the decay at
        ``learning_starts`` (Dopamine's ``linearly_decaying_epsilon``, used by the Atari 100k
        agents) instead of at step 0.
      eval_epsilon: epsilon of the evaluation policy.
      learning_starts: environment steps of pure exploration before the first update.
      train_frequency, gradient_steps: ``gradient_steps`` updates every ``train_frequency``
        environment steps.
      loss: ``"huber"`` (smooth L1, the Nature DQN error clipping) or ``"mse"``.
      max_grad_norm: clip the global gradient norm to this (``None``: no clipping).
      double, dueling: Double DQN targets; dueling value/advantage head.
      munchausen, munchausen_alpha, munchausen_temperature: Munchausen DQN targets
        (:func:`agents.targets.munchausen_q_learning_target`, Vieillard et al. 2020) with the
        paper's ``alpha`` 0.9 and ``tau`` 0.03 (``l_0 = -1``); not with C51. With ``n_step`` the
        bonus is the first action's; with ``double`` the online network's softmax weights the
        bootstrap.
      n_step: length of the bootstrapped return.
      prioritized, per_alpha, per_beta_start, per_eps: proportional prioritized replay, its
        exponent, the importance-sampling exponent (annealed linearly to 1 over training) and the
        priority floor.
      num_atoms, v_min, v_max: ``num_atoms > 1`` learns a categorical return distribution on
        ``num_atoms`` evenly spaced atoms in ``[v_min, v_max]`` with the cross-entropy to the
        projected target (C51, Bellemare et al. 2017); priorities are then that cross-entropy.
      noisy, noisy_sigma: noisy fully connected layers (factorised Gaussian, Fortunato et al.
        2018) with initial ``sigma0 = noisy_sigma``; new noise for each acting step and each
        update (online and target nets), none at evaluation.
      hidden_sizes: MLP trunk widths (vector observations; image observations use NatureCNN).
      layer_norm: LayerNorm after each hidden layer of the trunk (MLP, or each conv and the fully
        connected layer of the Nature CNN), before its ReLU (PQN, Gallici et al. 2024: normalised
        features keep bootstrapped targets from chasing themselves upward).
      cnn_features: width of NatureCNN's fully connected layer (512; data-efficient Rainbow: 256).
      augmentation: ``"shift"``: each sampled batch's ``obs`` and ``next_obs`` are shifted by up
        to ``shift_padding`` pixels, independently per sample and between the two (edge padding
        and a random crop back to the frame size: DrQ, Kostrikov et al. 2020), on the batch's
        device with the agent's generator. Image observations only.
      intensity_scale: with ``augmentation="shift"``, then scale each shifted image's pixels by
        ``1 + intensity_scale * clip(n, -2, 2)``, ``n`` standard normal per image (SPR's intensity
        augmentation, part of Dopamine's DrQ(eps): 0.05); 0 leaves the shifted uint8 frames as they are.
      channels_last: run the CNN in channels-last memory format (faster convolutions; no effect
        on vector observations).
      compile: run the update's loss (its forward and backward graphs) and the acting forward
        through ``torch.compile`` (CUDA: with CUDA graphs); the same math as eager, compiled on
        first use.
    """

    total_steps: int = 10_000_000
    num_envs: int = 1
    learning_rate: float = 1e-4
    adam_eps: float = 1e-8
    anneal_lr: bool = False
    buffer_size: int = 1_000_000
    gamma: float = 0.99
    tau: float = 1.0
    target_update_interval: int = 1000
    batch_size: int = 32
    epsilon_start: float = 1.0
    epsilon_end: float = 0.01
    exploration_fraction: float = 0.10
    exploration_after_warmup: bool = False
    eval_epsilon: float = 0.05
    learning_starts: int = 80_000
    train_frequency: int = 4
    gradient_steps: int = 1
    loss: Literal["huber", "mse"] = "huber"
    max_grad_norm: float | None = None
    double: bool = False
    dueling: bool = False
    munchausen: bool = False
    munchausen_alpha: float = 0.9
    munchausen_temperature: float = 0.03
    n_step: int = 1
    prioritized: bool = False
    per_alpha: float = 0.6
    per_beta_start: float = 0.4
    per_eps: float = 1e-6
    num_atoms: int = 1
    v_min: float = -10.0
    v_max: float = 10.0
    noisy: bool = False
    noisy_sigma: float = 0.5
    hidden_sizes: tuple[int, ...] = (120, 84)
    layer_norm: bool = False
    cnn_features: int = 512
    augmentation: Literal["none", "shift"] = "none"
    shift_padding: int = 4
    intensity_scale: float = 0.0
    channels_last: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        positive = ("total_steps", "num_envs", "target_update_interval", "batch_size", "train_frequency",
                    "gradient_steps", "n_step")
        for name in positive:
            positive_int(f"DQNConfig.{name}", getattr(self, name))
        if self.buffer_size < 1:
            hint = " (prioritized replay needs a replay buffer)" if self.prioritized else ""
            raise ValueError(f"DQNConfig.buffer_size must be >= 1, got {self.buffer_size}{hint}")
        if self.buffer_size < self.batch_size:
            raise ValueError(f"DQNConfig.buffer_size ({self.buffer_size}) must be >= batch_size ({self.batch_size})")
        if self.learning_starts < 0:
            raise ValueError(f"DQNConfig.learning_starts must be >= 0, got {self.learning_starts}")
        for name in ("learning_rate", "adam_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DQNConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("gamma", "epsilon_start", "epsilon_end", "eval_epsilon", "exploration_fraction",
                     "per_beta_start"):
            unit_interval(f"DQNConfig.{name}", getattr(self, name))
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"DQNConfig.tau must be in (0, 1], got {self.tau}")
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"DQNConfig.loss must be 'huber' or 'mse', got {self.loss!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"DQNConfig.max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.per_alpha < 0 or self.per_eps <= 0:
            raise ValueError(f"DQNConfig.per_alpha must be >= 0 and per_eps > 0, got {self.per_alpha}, {self.per_eps}")
        if self.augmentation not in ("none", "shift"):
            raise ValueError(f"DQNConfig.augmentation must be 'none' or 'shift', got {self.augmentation!r}")
        positive_int("DQNConfig.shift_padding", self.shift_padding)
        if self.intensity_scale < 0:
            raise ValueError(f"DQNConfig.intensity_scale must be >= 0, got {self.intensity_scale}")
        if self.intensity_scale > 0 and self.augmentation != "shift":
            raise ValueError(f"DQNConfig.intensity_scale={self.intensity_scale} applies with augmentation='shift', "
                             f"got augmentation={self.augmentation!r}")
        positive_int("DQNConfig.num_atoms", self.num_atoms)
        positive_int("DQNConfig.cnn_features", self.cnn_features)
        if self.num_atoms > 1 and not self.v_min < self.v_max:
            raise ValueError(f"DQNConfig.v_min must be < v_max, got {self.v_min} and {self.v_max}")
        if self.num_atoms > 1 and self.loss != "huber":
            raise ValueError(f"DQNConfig.loss={self.loss!r} does not apply with num_atoms > 1 (C51 uses cross-entropy)")
        if self.munchausen and self.num_atoms > 1:
            raise ValueError(f"DQNConfig.munchausen takes scalar values, not a distribution over num_atoms="
                             f"{self.num_atoms} atoms (C51)")
        if not self.munchausen_temperature > 0:
            raise ValueError(f"DQNConfig.munchausen_temperature must be > 0, got {self.munchausen_temperature}")
        unit_interval("DQNConfig.munchausen_alpha", self.munchausen_alpha)
        if not self.noisy_sigma > 0:
            raise ValueError(f"DQNConfig.noisy_sigma must be > 0, got {self.noisy_sigma}")
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"DQNConfig.hidden_sizes must all be >= 1, got {list(self.hidden_sizes)}")


class DQN:
    """A DQN agent: networks, optimizer, replay, schedules and its own random generator.

    The training loop is not here (see :mod:`agents.loop`): the agent exposes
    :meth:`act` (epsilon-greedy over a batch of observations), :meth:`explore` (``act`` with
    the scheduled epsilon), :meth:`observe` (store a vector step's transitions), :meth:`train`
    (the updates and target syncs due at a step) and :meth:`update` (one gradient step on a batch).

    Args:
      config: hyperparameters.
      obs_shape, obs_dtype: one observation's shape and dtype (``(4, 84, 84)`` uint8 for Atari,
        whose frames the replay stores once each).
      num_actions: size of the discrete action space.
      device: where networks, replay and sampling live.
      seed: seeds the agent's generators (exploration on the host, replay sampling on ``device``). Network
        initialisation uses torch's global generator: seed it first (``seed_everything``).
    """

    def __init__(self, config: DQNConfig, obs_shape: tuple[int, ...], obs_dtype: torch.dtype, num_actions: int,
                 device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.config, self.device = config, torch.device(device)
        self.num_actions = num_actions
        self.q = QNetwork(tuple(obs_shape), num_actions, config.dueling, config.hidden_sizes, config.channels_last,
                          config.num_atoms, config.v_min, config.v_max,
                          config.noisy_sigma if config.noisy else None, config.cnn_features,
                          config.layer_norm).to(self.device)
        # A target synced at every step is the online net: sharing it skips a forward that a
        # copy would repeat with the same weights (noisy nets keep a copy: their noise differs).
        shared = config.target_update_interval == 1 and config.tau == 1.0 and not config.noisy
        self.target = self.q if shared else copy.deepcopy(self.q).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=config.learning_rate, eps=config.adam_eps,
                                          fused=fused_optimizers(self.device))
        image = len(obs_shape) == 3 and obs_dtype == torch.uint8
        if config.augmentation != "none" and len(obs_shape) != 3:
            raise ValueError(f"augmentation={config.augmentation!r} needs image observations [C, H, W], got "
                             f"{list(obs_shape)} (use it on Atari envs, or --augmentation none)")
        kwargs: dict[str, Any] = dict(
            capacity=config.buffer_size, obs_shape=tuple(obs_shape), obs_dtype=obs_dtype, action_shape=(),
            action_dtype=torch.int64, num_envs=config.num_envs, device=self.device,
            frame_stack=obs_shape[0] if image else None, n_step=config.n_step, gamma=config.gamma,
        )
        if config.prioritized:
            self.replay: ReplayBuffer = PrioritizedReplayBuffer(**kwargs, alpha=config.per_alpha, eps=config.per_eps)
        else:
            self.replay = ReplayBuffer(**kwargs)
        # What update() and act() call: the methods below, or the same methods compiled.
        self._loss = compiled_if(config.compile, self.loss, self.device)
        self._greedy = compiled_if(config.compile, self.greedy, self.device)
        self.generator = torch.Generator(self.device).manual_seed(seed)  # replay sampling
        self.rng = np.random.Generator(np.random.PCG64(seed))  # exploration
        self.updates = 0  # gradient steps taken
        self._pending = 0  # environment steps since the last batch of updates
        self._synced_at = 0  # step of the last target sync

    @classmethod
    def for_env(cls, config: DQNConfig, env: TensorVecEnv, device: torch.device, seed: int) -> DQN:
        """The agent for ``env``'s observations and actions (an experiment's ``build``); a
        continuous action space is a ``ValueError``."""
        if not env.is_discrete:
            flags = " (and --dueling)" if config.dueling else ""
            raise ValueError(f"DQN{flags} needs a discrete action space, got {env.single_action_space}")
        return cls(config, env.obs_shape, env.obs_dtype, env.num_actions, device=device, seed=seed)

    # ------------------------------------------------------------------------ acting
    def epsilon(self, step: int) -> float:
        """Exploration rate after ``step`` environment steps."""
        c = self.config
        decay = int(c.exploration_fraction * c.total_steps)
        if c.exploration_after_warmup:
            step = max(0, step - c.learning_starts)
        return linear_schedule(c.epsilon_start, c.epsilon_end, decay, step)

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy actions ``[batch]`` int64: ``argmax_a Q(obs, a)`` for ``obs`` ``[batch, *obs_shape]``."""
        return self.q(obs).argmax(dim=1)

    def act(self, obs: torch.Tensor, epsilon: float, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Epsilon-greedy actions ``[batch]`` int64 for observations ``[batch, *obs_shape]``.

        The explore/exploit coin and the random actions come from ``rng`` (default: the
        agent's own, saved with its state) on the host, so a step that explores everywhere
        skips the network and a greedy step costs one forward pass of :meth:`greedy`.
        """
        rng = self.rng if rng is None else rng
        n = obs.shape[0]
        explore = rng.random(n) < epsilon
        n_explore = np.count_nonzero(explore)
        if n_explore == n:
            return torch.from_numpy(self._random_actions(rng, n)).to(self.device)
        if self.config.noisy and self.q.training:
            reset_noise(self.q, self.generator)  # a new draw of the noisy layers for every acting step
        with torch.no_grad():
            greedy = self._greedy(obs)
        if not n_explore:
            return greedy
        random = torch.from_numpy(self._random_actions(rng, n)).to(self.device)
        return torch.where(torch.from_numpy(explore).to(self.device), random, greedy)

    def evaluation(self) -> contextlib.AbstractContextManager[None]:
        """Within the block the Q-network is in eval mode: noisy layers use their means (no
        noise), so the greedy policy is deterministic. Evaluation policies act inside it."""
        return eval_mode(self.q)

    def _random_actions(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``[n]`` int64 actions drawn uniformly (``floor(u * num_actions)``: a fifth of the cost
        of ``Generator.integers`` for a few draws, bias below 2^-50)."""
        return (rng.random(n) * self.num_actions).astype(np.int64)

    def explore(self, obs: torch.Tensor, step: int) -> torch.Tensor:
        """Training actions at ``step``: epsilon-greedy with the scheduled epsilon."""
        return self.act(obs, self.epsilon(step))

    def learning_rate(self, step: int) -> float:
        """Adam's step size after ``step`` environment steps."""
        c = self.config
        return linear_schedule(c.learning_rate, 0.0, c.total_steps, step) if c.anneal_lr else c.learning_rate

    def scalars(self, step: int) -> dict[str, float]:
        """Schedule values to log at ``step``."""
        return {"charts/epsilon": self.epsilon(step), "charts/learning_rate": self.learning_rate(step)}

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, result: Any) -> None:
        """Store a vector step: ``obs`` acted on, ``actions`` taken, the env's ``StepResult``."""
        self.replay.add(obs, actions, result.reward, result.next_obs, result.terminated, result.truncated)

    # ---------------------------------------------------------------------- learning
    def beta(self, step: int) -> float:
        """Importance-sampling exponent at ``step``, annealed from ``per_beta_start`` to 1."""
        c = self.config
        return linear_schedule(c.per_beta_start, 1.0, c.total_steps, step)

    def train(self, step: int, steps_collected: int) -> dict[str, torch.Tensor] | None:
        """Run the updates and target syncs due after ``steps_collected`` more steps (now at ``step``).

        Returns the last update's metrics (tensors, not synchronised), or ``None`` if none ran.
        """
        c = self.config
        # the replay must hold the warm-up's transitions (it may be empty after a resume that
        # had no replay file) and at least a batch
        if step < c.learning_starts or self.replay.num_added < max(c.batch_size, min(c.learning_starts,
                                                                                     c.buffer_size)):
            return None
        self._pending += steps_collected
        n_updates = (self._pending // c.train_frequency) * c.gradient_steps
        self._pending %= c.train_frequency
        metrics = None
        if c.anneal_lr and n_updates:
            set_learning_rate(self.optimizer, self.learning_rate(step))
        for _ in range(n_updates):
            if c.prioritized:
                batch = self.replay.sample(c.batch_size, generator=self.generator, beta=self.beta(step))
            else:
                batch = self.replay.sample(c.batch_size, generator=self.generator)
            metrics = self.update(batch)
        if step // c.target_update_interval > self._synced_at // c.target_update_interval:
            if self.target is not self.q:
                polyak_update_(self.target, self.q, c.tau)
            self._synced_at = step
        return metrics

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
             discounts: torch.Tensor, weights: torch.Tensor | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The TD loss of a batch and what the update needs besides it.

        ``obs``, ``next_obs`` ``[batch, *obs_shape]``; ``actions`` ``[batch]`` int64; ``rewards``,
        ``discounts`` ``[batch]`` (n-step sums and ``gamma^m``, 0 after termination); ``weights``
        ``[batch]`` importance weights (prioritized replay) or ``None``.

        Returns ``(loss [], errors [batch], q_sa [batch])``: the loss with its graph, then,
        detached, the per-sample errors whose magnitudes become priorities (the TD errors
        ``target - Q(s, a)``; under C51 the cross-entropies) and the values ``Q(s, a)`` of the
        actions taken. The targets are :func:`agents.targets.q_learning_target` (or the double-Q
        or Munchausen one) with Huber (delta 1, the Nature DQN's error clipping) or squared error; with
        ``num_atoms > 1``, :func:`agents.targets.categorical_q_learning_target` with cross-entropy.
        Weighted under PER.
        """
        c = self.config
        if c.num_atoms > 1:
            return self._categorical_loss(obs, actions, rewards, next_obs, discounts, weights)
        q_sa = targets.action_values(self.q(obs), actions)
        with torch.no_grad():
            q_t_target = self.target(next_obs)
            if c.munchausen:
                selector = self.q(next_obs) if c.double and self.target is not self.q else None
                target = targets.munchausen_q_learning_target(
                    rewards, discounts, self.target(obs), actions, q_t_target, c.munchausen_temperature,
                    c.munchausen_alpha, q_t_selector=selector)
            elif c.double:
                q_t_online = q_t_target if self.target is self.q else self.q(next_obs)
                target = targets.double_q_learning_target(rewards, discounts, q_t_target, q_t_online)
            else:
                target = targets.q_learning_target(rewards, discounts, q_t_target)
        loss_fn = F.huber_loss if c.loss == "huber" else F.mse_loss
        if weights is None:
            loss = loss_fn(q_sa, target)
        else:
            loss = (loss_fn(q_sa, target, reduction="none") * weights).mean()
        q_sa = q_sa.detach()
        return loss, target - q_sa, q_sa

    def _categorical_loss(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
                          next_obs: torch.Tensor, discounts: torch.Tensor, weights: torch.Tensor | None,
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`loss` under C51: cross-entropy from the projected target distribution to the
        online distribution of the action taken (shapes as there)."""
        support = self.q.support
        logits = self.q.logits(obs)  # [batch, actions, atoms]
        log_p = logits[torch.arange(actions.shape[0], device=actions.device), actions].log_softmax(dim=-1)
        with torch.no_grad():
            logits_t = self.target.logits(next_obs)
            selector = (self.q(next_obs) if self.config.double and self.target is not self.q
                        else self.target.values(logits_t))
            target = targets.categorical_q_learning_target(rewards, discounts, logits_t, selector, support)
        cross_entropy = -(target * log_p).sum(dim=-1)  # [batch]
        loss = cross_entropy.mean() if weights is None else (cross_entropy * weights).mean()
        q_sa = self.q.values(log_p.detach())
        return loss, cross_entropy.detach(), q_sa

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``[batch, C, H, W]`` as the learner sees them: shifted when
        ``augmentation="shift"`` (a fresh offset per image from the agent's generator), then, with
        ``intensity_scale > 0``, scaled in brightness per image (float pixels); else unchanged."""
        c = self.config
        if c.augmentation == "shift":
            images = random_crop(images, c.shift_padding, self.generator, mode="replicate")
            if c.intensity_scale > 0:
                images = random_intensity(images, c.intensity_scale, self.generator)
        return images

    def update(self, batch: ReplayBatch) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch``: :meth:`augment` (``obs`` and ``next_obs`` independently),
        :meth:`loss`, backward, clip, Adam; under prioritized replay the sampled transitions get
        their errors' magnitudes as priorities.

        Returns ``{"losses/td_loss": [], "losses/q_values": [batch] (Q of the actions taken)}``,
        detached, not synchronised (the loop reads them only when it logs).
        """
        c = self.config
        obs, next_obs = self.augment(batch.obs), self.augment(batch.next_obs)
        if c.noisy:  # new noise for the online and the target nets at every update
            reset_noise(self.q, self.generator)
            reset_noise(self.target, self.generator)
        loss, errors, q_sa = self._loss(obs, batch.actions, batch.rewards, next_obs, batch.discounts,
                                          batch.weights if c.prioritized else None)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.q.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if c.prioritized:
            self.replay.update_priorities(batch.indices, errors.abs())
        return {"losses/td_loss": loss.detach(), "losses/q_values": q_sa}

    # ------------------------------------------------------------------- persistence
    def state_dict(self, include_replay: bool = False) -> dict[str, Any]:
        """Networks, optimizer, generator, counters (and the replay when asked: large)."""
        state: dict[str, Any] = {
            "q": self.q.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
            "counters": {"updates": self.updates, "pending": self._pending, "synced_at": self._synced_at},
        }
        if include_replay:
            state["replay"] = self.replay.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (replay too, when the state has it)."""
        self.q.load_state_dict(state["q"])
        if self.target is not self.q:
            self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.rng.bit_generator.state = state["rng"]
        counters = state["counters"]
        self.updates, self._pending, self._synced_at = counters["updates"], counters["pending"], counters["synced_at"]
        if "replay" in state:
            self.replay.load_state_dict(state["replay"])


def evaluation_policy(agent: DQN, config: DQNConfig, rng: np.random.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The evaluation policy: epsilon-greedy at ``eval_epsilon`` with the Q-network in eval mode
    (noisy layers: their means), its coins from ``rng``."""

    def policy(obs: torch.Tensor) -> torch.Tensor:
        with agent.evaluation():
            return agent.act(obs, config.eval_epsilon, rng=rng)

    return policy


#: Named hyperparameter sets (``--preset``). Flags given on the command line override them.
PRESETS: dict[str, DQNConfig] = {
    # Mnih et al. 2015 with Adam (as in Dopamine and CleanRL): replay 1M, warm-up 50k, update every
    # 4 steps, target sync every 10k steps, epsilon 1 -> 0.1 over the first 1M steps, eval 0.05.
    "nature": DQNConfig(
        total_steps=10_000_000, learning_rate=6.25e-5, adam_eps=1.5e-4, buffer_size=1_000_000,
        target_update_interval=10_000, batch_size=32, epsilon_end=0.1, exploration_fraction=0.1,
        eval_epsilon=0.05, learning_starts=50_000, train_frequency=4,
    ),
    # DrQ(eps) for Atari 100k (100k agent steps = 400k frames): Kostrikov et al. 2020 with the
    # standard epsilons of Agarwal et al. 2021 (their DrQ(eps)); values from Dopamine's
    # labs/atari_100k/configs/DrQ_eps.gin: shift augmentation (edge pad 4) followed by SPR's intensity
    # augmentation (scale 0.05; atari_100k_rainbow_agent.drq_image_augmentation), 10-step returns, an update
    # every step, the target synced every step, double + dueling, 1,600 warm-up steps, epsilon
    # 1 -> 0.01 over the 5,000 steps after the warm-up, eval epsilon 0.001, Adam (1e-4, eps 1.5e-4),
    # Huber loss, no gradient clipping, replay holding every transition. Published: median / mean
    # human-normalised 0.313 / 0.465 over 26 games (rliable release).
    "drq_eps": DQNConfig(
        total_steps=100_000, learning_rate=1e-4, adam_eps=1.5e-4, buffer_size=100_000, gamma=0.99,
        target_update_interval=1, batch_size=32, epsilon_start=1.0, epsilon_end=0.01, exploration_fraction=0.05,
        exploration_after_warmup=True, eval_epsilon=0.001, learning_starts=1_600, train_frequency=1,
        double=True, dueling=True, n_step=10, augmentation="shift", shift_padding=4, intensity_scale=0.05,
    ),
    # Data-efficient Rainbow for Atari 100k (van Hasselt et al. 2019, their Table 1 / Appendix; the
    # same values in SPR's code): Rainbow (C51 on 51 atoms in [-10, 10], noisy nets, dueling,
    # double, prioritized replay with exponent 0.5 and IS weights annealed 0.4 -> 1) with 20-step
    # returns, an update every step, a target sync every 2,000 updates, 1,600 warm-up steps, a
    # 256-unit hidden layer, noisy sigma0 0.1, Adam (1e-4, eps 1.5e-4), gradient norm clipped at 10.
    # Acting as Dopamine's DER.gin (whose n-step is 10, SPR's choice): noisy nets plus its
    # linearly_decaying_epsilon, i.e. uniform actions through the 1,600 warm-up steps, then epsilon
    # 1 -> 0.01 over 2,000 steps (train), 0.001 (eval). Published (the paper's per-game table):
    # median / mean human-normalised 0.161 / 0.285 (experiments/atari100k_published.py).
    "der": DQNConfig(
        total_steps=100_000, learning_rate=1e-4, adam_eps=1.5e-4, buffer_size=100_000, gamma=0.99,
        target_update_interval=2_000, batch_size=32, epsilon_start=1.0, epsilon_end=0.01, exploration_fraction=0.02,
        exploration_after_warmup=True, eval_epsilon=0.001,
        learning_starts=1_600, train_frequency=1, double=True, dueling=True, n_step=20, num_atoms=51,
        v_min=-10.0, v_max=10.0, noisy=True, noisy_sigma=0.1, prioritized=True, per_alpha=0.5,
        per_beta_start=0.4, cnn_features=256, max_grad_norm=10.0,
    ),
    # CartPole-v1 in 50k steps (the tuned setting of rl-baselines3-zoo): large learning rate, a
    # target sync every 10 steps and 128 updates every 256 steps.
    # rl-baselines3-zoo's tuned values, plus three changes against the collapse of the greedy
    # policy late in training (1 seed in 3 fell to ~100 at 50k steps with the zoo's values alone):
    # its action gaps were ~0.2% of the values, so a burst of 128 updates reordered actions in
    # many states. Munchausen targets widen the gaps, LayerNorm keeps the features bounded and the
    # annealed step size makes the last bursts small. Each alone kept 3-4 of seeds 1-5 at 500,
    # the three together 5 of 5 (README, "Learning benchmark").
    "cartpole": DQNConfig(
        total_steps=50_000, learning_rate=2.3e-3, buffer_size=100_000, target_update_interval=10,
        batch_size=64, epsilon_end=0.04, exploration_fraction=0.16, eval_epsilon=0.0,
        learning_starts=1_000, train_frequency=256, gradient_steps=128, hidden_sizes=(256, 256),
        max_grad_norm=10.0, munchausen=True, layer_norm=True, anneal_lr=True,
    ),
}

#: The Atari 100k protocol of Dopamine's ``labs/atari_100k`` (which produced the published DrQ(eps)
#: and DER scores), as run settings the presets carry beside their agent values: no no-op starts
#: and no FIRE at reset (``create_atari_environment`` with ``sticky_actions=False`` and Dopamine's
#: ``AtariPreprocessing``, which does neither), no evaluation during training and one evaluation
#: of 100 games at the end (``MaxEpisodeEvalRunner.num_eval_episodes = 100``). The rest of the
#: protocol is the Atari defaults (frame skip 4, no sticky actions, the minimal action set, a
#: lost life ends the learner's episode, games cut at 108k frames). Dotted names of the
#: experiment's options; a flag on the command line still overrides them.
ATARI_100K_PROTOCOL: dict[str, Any] = {
    "atari.noop_max": 0, "atari.fire_reset": False, "loop.eval_interval": 0, "loop.eval_episodes": 100,
}

#: Run settings (beyond the agent's) that a preset brings with it.
PRESET_RUN_SETTINGS: dict[str, dict[str, Any]] = {"drq_eps": ATARI_100K_PROTOCOL, "der": ATARI_100K_PROTOCOL}

#: One line per preset: its purpose and source (``--help`` lists them; ``--preset list`` shows the values).
PRESET_NOTES: dict[str, str] = {
    "nature": "Nature DQN with Adam on Atari, 10M steps (Mnih et al. 2015; the Dopamine / CleanRL settings)",
    "drq_eps": "DrQ(eps) for Atari 100k: shift and intensity augmentation, 10-step double dueling DQN "
               "(Kostrikov et al. 2020, Agarwal et al. 2021; Dopamine's DrQ_eps.gin), with the benchmark's protocol "
               "(no no-op starts, no FIRE at reset, 100 evaluation games at the end)",
    "der": "data-efficient Rainbow for Atari 100k: C51, noisy nets, PER, 20-step returns (van Hasselt et al. 2019), "
           "with the benchmark's protocol (as drq_eps)",
    "cartpole": "CartPole-v1 in 50k steps (rl-baselines3-zoo's tuned DQN with Munchausen targets, LayerNorm "
                "and an annealed step size)",
}


def preset(name: str) -> DQNConfig:
    """The named preset; ``ValueError`` listing the known ones for an unknown name."""
    return choose("preset", name, PRESETS)
