"""``make_env``: one factory for Atari and every other Gymnasium id, returning a :class:`TensorVecEnv`."""

from __future__ import annotations

import gymnasium as gym
import torch

from envs.atari import (
    AtariConfig,
    atari_game,
    close_matches,
    is_atari_id,
    make_ale_vector_env,
    make_reference_vector_env,
    register_atari,
)
from envs.pomdp import is_popgym_id, popgym_env, register_pomdp, register_popgym
from envs.sync import SameStepVectorEnv
from envs.vector import TensorVecEnv
from foundations.checks import positive_int

BACKENDS = ("auto", "ale", "gymnasium")
VECTORIZATIONS = ("same-step", "sync", "async")


def check_env_id(env_id: str) -> None:
    """Raise ``ValueError`` listing close matches if ``env_id`` is not a registered Gymnasium id."""
    register_atari()
    register_pomdp()
    if is_popgym_id(env_id):
        register_popgym(env_id)
    if is_atari_id(env_id):
        atari_game(env_id)  # raises with Atari-specific hints
        return
    if env_id in gym.registry:
        return
    raise ValueError(f"unknown env id {env_id!r}.{close_matches(env_id, list(gym.registry), 0.6)}")


def make_env(
    env_id: str,
    num_envs: int = 8,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    *,
    backend: str = "auto",
    atari: AtariConfig | None = None,
    vectorization: str = "same-step",
    render_mode: str | None = None,
    num_threads: int = 0,
    **make_kwargs: object,
) -> TensorVecEnv:
    """A vector env of ``num_envs`` copies of ``env_id`` with a torch-tensor interface.

    Args:
      env_id: any Gymnasium id: ``"CartPole-v1"``, ``"Pendulum-v1"``, ``"ALE/Breakout-v5"``...
      num_envs: number of sub-envs (>= 1).
      seed: the first ``reset()`` seeds sub-env ``i`` with ``seed + i`` (and the action space
        with ``seed``).
      device: where tensors are delivered.
      backend: ``"ale"`` (Atari fast path, C++ vector env), ``"gymnasium"`` (reference wrappers
        for Atari; ``gymnasium.make_vec`` for everything else) or ``"auto"`` (``"ale"`` for Atari
        unless ``render_mode`` is set, which only the reference path can serve).
      atari: Atari preprocessing (defaults: :class:`AtariConfig`, the Nature-DQN setting).
      vectorization: how the Gymnasium backend runs the sub-envs. ``"same-step"`` (default):
        one process, :class:`envs.sync.SameStepVectorEnv`, Gymnasium's ``SyncVectorEnv``
        semantics (same-step autoreset, tested step for step against it) at a third of its
        overhead; ``"sync"``: Gymnasium's own ``SyncVectorEnv``; ``"async"``: a process per
        sub-env (Gymnasium's ``AsyncVectorEnv``), for envs whose step is expensive. The Atari
        reference path uses ``SyncVectorEnv`` for ``"same-step"`` and ``"sync"``.
      render_mode: e.g. ``"rgb_array"`` to record videos (Gymnasium backend only).
      num_threads: threads of the ALE vector env (0: one per core).
      make_kwargs: extra keyword arguments for ``gymnasium.make`` (non-Atari ids).

    Returns:
      a :class:`TensorVecEnv`; see :mod:`envs.vector` for the step semantics.
    """
    positive_int("num_envs", num_envs)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"vectorization must be one of {VECTORIZATIONS}, got {vectorization!r}")
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    device = torch.device(device)
    check_env_id(env_id)

    if is_atari_id(env_id):
        config = atari or AtariConfig()
        if make_kwargs:
            raise ValueError(
                f"Atari envs take their options through AtariConfig, got extra arguments {sorted(make_kwargs)}"
            )
        if backend == "auto":
            backend = "gymnasium" if render_mode is not None else "ale"
        if backend == "ale":
            if render_mode is not None:
                raise ValueError("the 'ale' backend cannot render; use backend='gymnasium' for render_mode")
            vec = make_ale_vector_env(env_id, num_envs, config, num_threads=num_threads)
        else:
            vec = make_reference_vector_env(env_id, num_envs, config, vectorization, render_mode)
        env = TensorVecEnv(
            vec,
            device,
            clip_rewards=config.clip_rewards,
            terminal_on_life_loss=config.terminal_on_life_loss,
            backend=backend,
        )
    else:
        if atari is not None:
            raise ValueError(f"atari= options only apply to Atari ids, not {env_id!r}")
        if backend == "ale":
            raise ValueError(f"backend 'ale' only serves Atari ids, not {env_id!r}")
        vec = _gymnasium_vector_env(env_id, num_envs, vectorization, render_mode, make_kwargs)
        env = TensorVecEnv(vec, device, backend="gymnasium")
    env.default_seed = seed
    return env


def _gymnasium_vector_env(
    env_id: str, num_envs: int, vectorization: str, render_mode: str | None, make_kwargs: dict[str, object]
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of a non-Atari id: :class:`SameStepVectorEnv` in this process (a third of
    Gymnasium's ``SyncVectorEnv`` overhead), Gymnasium's ``SyncVectorEnv`` or its ``AsyncVectorEnv``."""
    make_one = popgym_env if is_popgym_id(env_id) else gym.make
    if vectorization == "same-step":
        return SameStepVectorEnv([lambda: make_one(env_id, render_mode=render_mode, **make_kwargs)] * num_envs)
    if is_popgym_id(env_id):  # make_vec's own construction cannot add the flattening wrapper
        vector = gym.vector.SyncVectorEnv if vectorization == "sync" else gym.vector.AsyncVectorEnv
        return vector([lambda: make_one(env_id, render_mode=render_mode, **make_kwargs)] * num_envs,
                      autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    return gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode=vectorization,
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        render_mode=render_mode,
        **make_kwargs,
    )
