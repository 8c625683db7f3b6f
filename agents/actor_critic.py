"""What A2C and PPO share: configuration, acting, rollout collection and the gradient step.

Collection follows Huang et al., "The 37 implementation details of PPO": ``num_envs`` envs
step ``num_steps`` times into a :class:`agents.rollout.Rollout`; advantages are GAE(lambda) with
bootstrapping from the true final observation on truncation; the learning rate can anneal
linearly to 0; gradients are clipped by their global norm. Continuous actions are sampled from
a diagonal Gaussian, clipped to the action bounds for the env only (the rollout keeps the
unclipped sample, whose log-probability the losses use).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import gymnasium as gym
import torch

from agents.cores import ADAPTERS, CoreSpec, State, choices
from agents.policies import ActorCritic
from agents.rollout import Rollout
from agents.schedules import set_learning_rate
from envs.vector import TensorVecEnv
from foundations.checks import positive_int, unit_interval
from foundations.compiling import compiled_if
from foundations.nets import fused_optimizers


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig:
    """Hyperparameters shared by A2C and PPO (defaults: CleanRL's PPO on classic control).

    Attributes:
      total_steps: environment steps to train for (summed over envs).
      num_envs, num_steps: a rollout is ``num_steps`` steps of each of ``num_envs`` envs.
      learning_rate, anneal_lr: step size, linearly annealed to 0 over training when set.
      optimizer: ``"adam"`` or ``"rmsprop"`` (A2C's original choice).
      adam_eps, rmsprop_alpha, rmsprop_eps: optimizer constants.
      gamma, gae_lambda: discount and GAE trace decay (1.0: n-step returns).
      norm_adv: normalise advantages (per minibatch) to zero mean and unit std.
      ent_coef, vf_coef: weights of the entropy bonus and the value loss.
      max_grad_norm: clip the global gradient norm (``None``: no clipping).
      hidden_sizes, shared: MLP trunk widths; one trunk for policy and value (vector obs).
      log_std_init: initial log standard deviation of a Gaussian policy (continuous only).
      clip_actions: clip Gaussian samples to the action bounds before the env sees them
        (continuous only).
      reward_scale: multiply the learner's rewards by this (episode statistics stay raw); keeps
        value targets near unit scale so value gradients do not swamp the policy's under the
        shared gradient-norm clip.
      compile: run the update's loss (forward and backward graphs) and the acting forward
        through ``torch.compile`` (CUDA: with CUDA graphs); the same math as eager. With an
        ``ntm`` or ``dnc`` core it compiles the memory's step instead (``compile_step``: one
        compile per batch size, then about 2x (NTM) to 3x (DNC) faster learning on a CPU core);
        the sequences around it stay eager.
      core: the memory core between the encoder and the heads (:class:`agents.cores.CoreSpec`,
        one nested spec: ``core=CoreSpec("lstm", size=64)``; flags ``--core lstm --core-size
        64``): ``kind`` ``none``, ``lstm``, ``gru``, ``ntm``, ``dnc`` or ``transformer`` and
        that core's sizes (an option of another core is refused); ``kind=None`` (the default)
        keeps the feed-forward actor-critic. With a core the agent acts with a state, reset per
        env at episode starts, and learns on whole env sequences (PPO minibatches are sets of
        envs). Configurations saved before the options were nested (flat ``core``,
        ``core_size``, ... fields) load through :meth:`upgrade_saved`.
      bptt: truncated backpropagation through time: gradients flow back at most this many
        steps of a sequence (``None``: the whole rollout).
    """

    total_steps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128
    learning_rate: float = 2.5e-4
    anneal_lr: bool = True
    optimizer: Literal["adam", "rmsprop"] = "adam"
    adam_eps: float = 1e-5
    rmsprop_alpha: float = 0.99
    rmsprop_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    norm_adv: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float | None = 0.5
    hidden_sizes: tuple[int, ...] = (64, 64)
    shared: bool = False
    log_std_init: float = 0.0
    clip_actions: bool = True
    reward_scale: float = 1.0
    compile: bool = False
    core: CoreSpec = dataclasses.field(default_factory=CoreSpec)
    bptt: int | None = None

    @property
    def core_spec(self) -> CoreSpec | None:
        """The core's spec, or ``None`` for the feed-forward agent (what the policy takes)."""
        return None if self.core.kind is None else self.core

    @staticmethod
    def upgrade_saved(saved: dict[str, Any]) -> dict[str, Any]:
        """A saved configuration (``dataclasses.asdict``) in today's layout: the flat core fields
        of checkpoints written before the options were nested move into ``core``
        (:meth:`agents.cores.CoreSpec.nest`); :func:`experiments.common.rebuild` calls it."""
        return CoreSpec.nest(saved)

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not isinstance(self.core, CoreSpec):
            raise ValueError(f"{name}.core must be an agents.cores.CoreSpec (e.g. CoreSpec('lstm', size=64)), "
                             f"got {self.core!r}")
        if self.core.kind is None:
            if self.bptt is not None:
                raise ValueError(f"--bptt configures a memory core; give --core ({choices()}) too")
        elif self.compile and not self.core.adapter.compiles_step:
            stepped = " and ".join(k for k, a in ADAPTERS.items() if a.compiles_step)
            raise ValueError(f"--compile with --core applies to the {stepped} cores (it compiles their memory "
                             f"step), not to --core {self.core.kind}: drop --compile")
        for field in ("total_steps", "num_envs", "num_steps"):
            positive_int(f"{name}.{field}", getattr(self, field))
        if not self.learning_rate > 0:
            raise ValueError(f"{name}.learning_rate must be > 0, got {self.learning_rate}")
        for field in ("gamma", "gae_lambda"):
            unit_interval(f"{name}.{field}", getattr(self, field))
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"{name}.optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        if self.ent_coef < 0 or self.vf_coef < 0:
            raise ValueError(f"{name}.ent_coef and vf_coef must be >= 0, got {self.ent_coef}, {self.vf_coef}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"{name}.max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if not self.reward_scale > 0:
            raise ValueError(f"{name}.reward_scale must be > 0, got {self.reward_scale}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps


_CONTINUOUS_ONLY = {"log_std_init": 0.0, "clip_actions": True}


class ActorCriticAgent:
    """Base of :class:`agents.a2c.A2C` and :class:`agents.ppo.PPO`; subclasses implement :meth:`learn`.

    Args:
      config: hyperparameters.
      obs_shape, obs_dtype: one observation's shape and dtype.
      action_space: the env's single action space (``Discrete`` or ``Box``).
      device: where the policy and the rollout live.
      seed: seeds the agent's generator (action sampling, minibatch order). Network
        initialisation uses torch's global generator: seed it first.
    """

    def __init__(self, config: ActorCriticConfig, obs_shape: tuple[int, ...], obs_dtype: torch.dtype,
                 action_space: gym.Space, device: str | torch.device = "cpu", seed: int = 0) -> None:
        self.config, self.device = config, torch.device(device)
        if isinstance(action_space, gym.spaces.Discrete):
            changed = [f"--{k.replace('_', '-')}" for k, v in _CONTINUOUS_ONLY.items() if getattr(config, k) != v]
            if changed:
                raise ValueError(f"{', '.join(changed)} only apply to continuous (Box) action spaces; "
                                 f"this env's is {action_space}")
        self.policy = ActorCritic.for_space(obs_shape, action_space, config.hidden_sizes, config.shared,
                                            config.log_std_init, core=config.core_spec)
        if self.policy.discrete:
            action_shape, action_dtype = (), torch.int64
        else:
            action_shape, action_dtype = tuple(action_space.shape), torch.float32
        self.policy.to(self.device)
        if config.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                self.policy.parameters(), lr=config.learning_rate, eps=config.adam_eps,
                fused=fused_optimizers(self.device))
        else:
            self.optimizer = torch.optim.RMSprop(self.policy.parameters(), lr=config.learning_rate,
                                                 alpha=config.rmsprop_alpha, eps=config.rmsprop_eps)
        self.rollout = Rollout(config.num_steps, config.num_envs, tuple(obs_shape), obs_dtype, action_shape,
                               action_dtype, self.device)
        # What acting and learning call: the policy's own methods and the subclass's loss, or the
        # same compiled.
        whole = config.compile and config.core_spec is None
        self._forward = compiled_if(whole, self.policy, self.device)
        self._actor = compiled_if(whole, self.policy.actor, self.device)
        self._critic = compiled_if(whole, self.policy.critic, self.device)
        self._loss = compiled_if(whole, self.loss, self.device)
        if config.compile and config.core_spec is not None:  # the memory's step: its many small ops fused
            self.policy.core.net.compile_step()
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.updates = 0
        self._next_obs: torch.Tensor | None = None
        self.recurrent = self.policy.recurrent
        if self.recurrent:  # the core's state while acting, and which envs start an episode next
            self.state: State = self.policy.initial_state(config.num_envs)
            self.starts = torch.ones(config.num_envs, dtype=torch.bool, device=self.device)

    @classmethod
    def for_env(cls, config: Any, env: TensorVecEnv, device: torch.device, seed: int) -> ActorCriticAgent:
        """The agent for ``env``'s observations and action space (an experiment's ``build``)."""
        return cls(config, env.obs_shape, env.obs_dtype, env.single_action_space, device=device, seed=seed)

    # ------------------------------------------------------------------------ acting
    def env_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """What the env gets for policy actions ``[N]`` or ``[N, D]``: clipped to the action
        bounds when ``clip_actions`` (the Gaussian policy's samples are not), else the same."""
        return self.policy.clip(actions) if self.config.clip_actions else actions

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Env actions ``[B]`` or ``[B, D]`` for evaluation (the mode of the policy by default)."""
        with torch.no_grad():
            return self.env_actions(self.policy.draw(self._actor(obs), self.generator, deterministic))

    def evaluator(self) -> RecurrentActor:
        """The evaluation policy of a recurrent agent (its own state, reset at episode starts)."""
        return RecurrentActor(self)

    def policy_step(self, obs: torch.Tensor, starts: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        """One step of a recurrent policy for every env from ``state``, with the envs where
        ``starts`` ``[N]`` is true beginning an episode (their state reset first): (distribution
        params ``[N, ...]``, values ``[N]``, the new state). Acting, evaluation and
        ``experiments.explain`` all step the policy through it."""
        params, values, state = self.policy.sequence(obs.unsqueeze(0), state, starts.unsqueeze(0))
        return params[0], values[0], state

    def explore(self, obs: torch.Tensor, step: int) -> torch.Tensor:
        """Sample training actions and record obs and actions (and log-probs, values) in the rollout.

        With separate actor and critic bodies only the actor runs here; the log-probs and values
        of the whole rollout come from one batched :meth:`ActorCritic.evaluate` when it is full
        (the policy does not change in between, so they are the same numbers). A shared trunk
        runs once per step and gives all three.
        """
        with torch.no_grad():
            if self.recurrent:
                params, values, state = self.policy_step(obs, self.starts, self.state)
                actions = self.policy.draw(params, self.generator)
                self.rollout.add(obs, actions, self.policy.log_prob(params, actions), values, starts=self.starts,
                                 state=self.state)
                self.state = state
            elif self.policy.separate:
                actions = self.policy.draw(self._actor(obs), self.generator)
                self.rollout.add(obs, actions)
            else:
                params, values = self._forward(obs)
                actions = self.policy.draw(params, self.generator)
                self.rollout.add(obs, actions, self.policy.log_prob(params, actions), values)
        return self.env_actions(actions)

    def _evaluate_rollout(self) -> None:
        """Fill the rollout's log-probs and values ``[T, N]`` with one batched pass of the policy."""
        r = self.rollout
        with torch.no_grad():
            log_probs, _, values = self.policy.evaluate(r.obs.flatten(0, 1), r.actions.flatten(0, 1))
        r.log_probs.copy_(log_probs.view_as(r.log_probs))
        r.values.copy_(values.view_as(r.values))

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, result: Any) -> None:
        """Record the env's answer; values the true final observations of truncated episodes."""
        final_values = None
        if len(result.episodes) and bool(result.truncated.any()):  # truncation ends an episode: cheap test first
            with torch.no_grad():
                final_values = torch.where(result.truncated, self._values(result.next_obs, continuing=True), 0.0)
        reward = result.reward if self.config.reward_scale == 1.0 else result.reward * self.config.reward_scale
        self.rollout.record(reward, result.terminated, result.truncated, final_values)
        self._next_obs = result.obs
        if self.recurrent:
            self.starts = result.terminated | result.truncated

    def _values(self, obs: torch.Tensor, continuing: bool = False) -> torch.Tensor:
        """Values ``[N]`` of ``obs``: the critic, or a recurrent policy's step from its current
        state (``continuing``: the same episode, e.g. a truncated one's final observation)."""
        if not self.recurrent:
            return self._critic(obs)
        starts = torch.zeros_like(self.starts) if continuing else self.starts
        return self.policy_step(obs, starts, self.state)[1]

    def learning_rate(self, step: int) -> float:
        c = self.config
        if not c.anneal_lr:
            return c.learning_rate
        return c.learning_rate * max(0.0, 1.0 - step / c.total_steps)

    def scalars(self, step: int) -> dict[str, float]:
        return {"charts/learning_rate": self.optimizer.param_groups[0]["lr"]}

    # ---------------------------------------------------------------------- learning
    def train(self, step: int, steps_collected: int) -> dict[str, torch.Tensor] | None:
        """When the rollout is full: compute advantages and learn from it (returns metrics)."""
        if not self.rollout.full:
            return None
        c = self.config
        # anneal from the rate at the start of this rollout (CleanRL: 1 - (update - 1) / updates)
        set_learning_rate(self.optimizer, self.learning_rate(step - c.batch_size))
        if self.policy.separate:
            self._evaluate_rollout()
        with torch.no_grad():
            last_values = self._values(self._next_obs)
        advantages, returns = self.rollout.advantages(last_values, c.gamma, c.gae_lambda)
        metrics = self.learn(advantages, returns)
        metrics["losses/explained_variance"] = explained_variance(self.rollout.values, returns)
        self.rollout.reset()
        self.updates += 1
        return metrics

    def learn(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        """Learn from the full rollout given its advantages and returns ``[T, N]``; metrics."""
        raise NotImplementedError

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor, starts: torch.Tensor | None = None,
                 state: State = ()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log-probs, entropies, values) ``[B]`` of a batch for the losses: the policy's
        :meth:`~agents.policies.ActorCritic.evaluate` on ``[B, ...]`` steps, or, with ``starts``
        ``[T, b]``, its :meth:`~agents.policies.ActorCritic.evaluate_sequence` on ``[T, b, ...]``
        sequences from ``state`` (flattened to ``B = T * b``)."""
        if starts is None:
            return self.policy.evaluate(obs, actions)
        log_prob, entropy, values = self.policy.evaluate_sequence(obs, actions, state, starts, self.config.bptt)
        return log_prob.flatten(), entropy.flatten(), values.flatten()

    def loss(self, *batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """The subclass's loss of one (mini)batch: ``{"loss": [] with its graph, metric: [] ...}``."""
        raise NotImplementedError

    def gradient_step(self, *batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimizer step on :meth:`loss` of ``batch``: backward, clip the global gradient
        norm (if configured), step. Returns the loss's terms, detached."""
        terms = self._loss(*batch)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return {k: v.detach() for k, v in terms.items()}

    # ------------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        out = {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rollout": self.rollout.state_dict(),
            "updates": self.updates,
            "next_obs": self._next_obs,
        }
        if self.recurrent:
            out["core_state"], out["starts"] = list(self.state), self.starts
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.rollout.load_state_dict(state["rollout"])
        self.updates = int(state["updates"])
        self._next_obs = state["next_obs"]
        if self.recurrent:
            self.state = tuple(t.to(self.device) for t in state["core_state"])
            self.starts = state["starts"].to(self.device)


class RecurrentActor:
    """Evaluation policy of a recurrent agent: the mode of its policy, with a state of its own
    that :func:`envs.evaluate` resets at episode starts (``policy(obs, starts)``).

    With an NTM or DNC core it also keeps, for env 0's first episode, each step's read and
    write weightings (``trace["read_weights"]`` ``[T, R, N]``, ``trace["write_weights"]``
    ``[T, Hw, N]``) and the DNC's usage (``trace["usage"]`` ``[T, N]``).
    """

    takes_starts = True

    def __init__(self, agent: ActorCriticAgent) -> None:
        self.agent, self.state = agent, None
        core = agent.policy.core
        self.recording = core is not None and core.adapter.weightings
        self.trace: dict[str, list[torch.Tensor]] = {}

    def __call__(self, obs: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        if self.state is None:
            self.state = self.agent.policy.initial_state(obs.shape[0])
        elif self.recording and bool(starts[0]):
            self.recording = False  # env 0's first episode is over
        params, _, self.state = self.agent.policy_step(obs, starts, self.state)
        if self.recording:
            memory = self.agent.policy.core.net_state(self.state)  # type: ignore[union-attr]
            for name in ("read_weights", "write_weights", "usage"):
                if hasattr(memory, name):
                    self.trace.setdefault(name, []).append(getattr(memory, name)[0].detach().cpu())
        return self.agent.env_actions(self.agent.policy.draw(params, deterministic=True))


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - Var[target - predicted] / Var[target]`` (NaN when the target is constant), a 0-d tensor."""
    var = target.var()
    return torch.where(var > 0, 1 - (target - predicted).var() / var, torch.tensor(math.nan, device=var.device))


def normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / (std + eps)``."""
    return (x - x.mean()) / (x.std() + eps)
