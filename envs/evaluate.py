"""Evaluation: run whole episodes with a policy and report raw returns (optionally a video)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from envs.atari import AtariConfig, is_atari_id
from envs.factory import make_env

Policy = Callable[[torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Attributes:
    returns: ``[num_episodes]`` float64 raw returns (full games, unclipped rewards).
    lengths: ``[num_episodes]`` int64 episode lengths in agent steps.
    frames: ``[time, height, width, 3]`` uint8 RGB frames of the first episode, or None: the
      first frame after reset and one per step, except the game-over frame itself (the env has
      already reset when the last step returns), so ``time`` equals the episode length.
    """

    returns: torch.Tensor
    lengths: torch.Tensor
    frames: torch.Tensor | None = None


def evaluate(
    policy: Policy,
    env_id: str,
    num_episodes: int = 10,
    seed: int = 0,
    device: str | torch.device = "cpu",
    num_envs: int = 1,
    atari: AtariConfig | None = None,
    record_video: bool = False,
    max_steps: int = 1_000_000,
) -> EvalResult:
    """Run ``num_episodes`` episodes of ``policy`` and return their raw returns.

    Each of the ``num_envs`` sub-envs contributes ``num_episodes / num_envs`` episodes (the
    first ones it finishes), so short episodes are not over-represented. Atari evaluation uses
    the training preprocessing with full-game episodes and raw rewards
    (:meth:`AtariConfig.for_evaluation`).

    Args:
      policy: maps observations ``[num_envs, *obs_shape]`` (on ``device``) to actions
        ``[num_envs, *action_shape]``; called under ``torch.inference_mode``. A policy with a
        memory sets ``takes_starts = True`` and is called ``policy(obs, starts)``, ``starts``
        ``[num_envs]`` marking the envs whose episode begins with ``obs``.
      record_video: also return the RGB frames of the first episode of sub-env 0 (uses the
        Gymnasium backend with ``render_mode="rgb_array"``).
      max_steps: safety limit on vector steps; raises if the episodes have not finished by then.
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    if num_envs < 1 or num_episodes % num_envs:
        raise ValueError(f"num_episodes ({num_episodes}) must be a positive multiple of num_envs ({num_envs})")
    kwargs: dict[str, object] = {}
    if is_atari_id(env_id):
        kwargs["atari"] = (atari or AtariConfig()).for_evaluation()
    if record_video:
        kwargs["render_mode"] = "rgb_array"
        kwargs["backend"] = "gymnasium"
    quota = num_episodes // num_envs
    returns: list[list[float]] = [[] for _ in range(num_envs)]
    lengths: list[list[int]] = [[] for _ in range(num_envs)]
    frames: list[np.ndarray] = []
    recording = record_video
    with make_env(env_id, num_envs, seed=seed, device=device, **kwargs) as env, torch.inference_mode():
        obs = env.reset()
        takes_starts = getattr(policy, "takes_starts", False)
        starts = torch.ones(num_envs, dtype=torch.bool, device=obs.device)
        if recording:
            frames.append(_render_first(env))
        for _ in range(max_steps):
            result = env.step(policy(obs, starts) if takes_starts else policy(obs))
            obs, starts = result.obs, result.terminated | result.truncated
            for i, r, n in zip(result.episodes.env_ids.tolist(), result.episodes.returns.tolist(),
                               result.episodes.lengths.tolist(), strict=True):
                if len(returns[i]) < quota:
                    returns[i].append(r)
                    lengths[i].append(n)
                if i == 0:
                    recording = False
            if recording:
                frames.append(_render_first(env))
            if all(len(r) >= quota for r in returns):
                break
        else:
            raise RuntimeError(f"evaluation did not finish {num_episodes} episodes within {max_steps} steps")
    video = torch.from_numpy(np.stack(frames)) if frames else None
    return EvalResult(
        returns=torch.tensor([r for rs in returns for r in rs], dtype=torch.float64),
        lengths=torch.tensor([n for ns in lengths for n in ns], dtype=torch.int64),
        frames=video,
    )


def _render_first(env) -> np.ndarray:
    frames = env.env.render()
    if frames is None:
        raise RuntimeError("the env returned no frame; was it made with render_mode='rgb_array'?")
    return np.asarray(frames[0], dtype=np.uint8)


def write_gif(frames: torch.Tensor, path: str | Path, fps: int = 30) -> Path:
    """Write ``[time, height, width, 3]`` uint8 frames as an animated GIF (with Pillow)."""
    from PIL import Image

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 [time, height, width, 3], got {frames.dtype} {list(frames.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames.cpu().numpy()]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
