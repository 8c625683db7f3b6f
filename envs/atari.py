"""Atari with the standard DeepMind / Machado et al. (2018) preprocessing, two ways.

Both backends produce ``[num_envs, frame_stack, 84, 84]`` uint8 observations and are wrapped by
the same tensor layer (:class:`envs.vector.TensorVecEnv`), which adds what the two have in
common: raw full-game episode statistics, terminal-on-life-loss (as a learning signal only: the
game goes on), reward clipping to the sign, and the true final observation of each episode.

- ``"ale"`` (fast path): the ALE's own C++ multithreaded vector env
  (``ale_py.vector_env.AtariVectorEnv``). Frame skip with max-pooling, grayscale, resize,
  frame stack, no-op starts and FIRE on reset all happen in C++.
- ``"gymnasium"`` (reference path): ``gymnasium.make(<id>, frameskip=1)`` ->
  ``AtariPreprocessing`` (no-ops, frame skip + max-pool, 84x84 grayscale with OpenCV
  ``INTER_AREA``) -> :class:`FireResetEnv` -> ``FrameStackObservation(padding_type="zero")``,
  in a Gymnasium ``SyncVectorEnv`` or ``AsyncVectorEnv``. This path can also render RGB frames
  (videos), which the fast path cannot.

Known differences between the two (both are the standard preprocessing; they differ in
implementation details, so the same seed gives different games on the two paths):

- the resize kernels differ slightly (ALE's own area resize vs OpenCV ``INTER_AREA``), so pixel
  values differ by a few grey levels;
- the number of no-op starts is drawn from different generators (ALE: uniform in [0, noop_max];
  Gymnasium: uniform in [1, noop_max]);
- FIRE on reset: both press FIRE once after the no-ops at the start of each game; neither presses
  it after a life loss (the agent must learn to; this is Machado et al.'s recommendation and
  matches the DeepMind setup in which life loss is only a learning signal).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any

import gymnasium as gym

_ATARI_ID = re.compile(r"^ALE/(?P<game>[A-Z][A-Za-z0-9]*)-v(?P<version>\d+)$")


@dataclasses.dataclass(frozen=True)
class AtariConfig:
    """Atari preprocessing options (defaults: the Nature-DQN setting).

    Attributes:
      noop_max: at most this many no-op actions at the start of each game (0 disables).
      frame_skip: emulator frames per agent step; the observation is the max over the last two.
      screen_size: observations are ``screen_size x screen_size`` grayscale.
      frame_stack: number of most recent frames stacked as channels (zeros before the game's
        first frame).
      terminal_on_life_loss: report ``terminated=True`` when a life is lost (training signal;
        the game itself continues). Turn off for evaluation.
      fire_reset: press FIRE after the no-ops for games whose action set has FIRE.
      clip_rewards: rewards given to the learner are ``sign(r)``; episode statistics stay raw.
      repeat_action_probability: sticky actions (0.25 in Machado et al. 2018; 0 for Nature DQN).
      full_action_space: use all 18 actions instead of the game's minimal set.
      max_episode_frames: truncate a game after this many emulator frames (108,000 = 30 min).
    """

    noop_max: int = 30
    frame_skip: int = 4
    screen_size: int = 84
    frame_stack: int = 4
    terminal_on_life_loss: bool = True
    fire_reset: bool = True
    clip_rewards: bool = True
    repeat_action_probability: float = 0.0
    full_action_space: bool = False
    max_episode_frames: int = 108_000

    def __post_init__(self) -> None:
        checks = {
            "noop_max": self.noop_max >= 0,
            "frame_skip": self.frame_skip >= 1,
            "screen_size": self.screen_size >= 8,
            "frame_stack": self.frame_stack >= 1,
            "repeat_action_probability": 0.0 <= self.repeat_action_probability <= 1.0,
            "max_episode_frames": self.max_episode_frames >= 1,
        }
        allowed = {
            "noop_max": ">= 0",
            "frame_skip": ">= 1",
            "screen_size": ">= 8",
            "frame_stack": ">= 1",
            "repeat_action_probability": "in [0, 1]",
            "max_episode_frames": ">= 1",
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"AtariConfig.{name} must be {allowed[name]}, got {getattr(self, name)!r}"
                )

    def for_evaluation(self) -> AtariConfig:
        """The same preprocessing with full-game episodes and raw rewards."""
        return dataclasses.replace(self, terminal_on_life_loss=False, clip_rewards=False)


def register_atari() -> None:
    """Register the ``ALE/...`` ids with Gymnasium (idempotent)."""
    import ale_py

    gym.register_envs(ale_py)


def close_matches(name: str, candidates: list[str], cutoff: float) -> str:
    """`` Close matches: a, b.`` for an error message (case-insensitive as a fallback), or ``""``."""
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=cutoff)
    if not close:
        lowered = {k.lower(): k for k in candidates}
        close = [lowered[k] for k in difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=cutoff)]
    return f" Close matches: {', '.join(close)}." if close else ""


def is_atari_id(env_id: str) -> bool:
    """True when ``env_id`` is (or claims to be) an ALE id."""
    register_atari()
    if env_id.startswith("ALE/"):
        return True
    spec = gym.registry.get(env_id)
    return spec is not None and str(spec.entry_point).startswith("ale_py")


def atari_game(env_id: str) -> str:
    """The ALE ROM name (``"breakout"``) for an Atari env id, validating its form.

    Accepts any registered ALE id (``ALE/Breakout-v5``, ``BreakoutNoFrameskip-v4``); the
    preprocessing always comes from :class:`AtariConfig`, not from the id's defaults.
    """
    register_atari()
    spec = gym.registry.get(env_id)
    if spec is None or not str(spec.entry_point).startswith("ale_py"):
        ale_ids = sorted(k for k in gym.registry if k.startswith("ALE/"))
        hint = ""
        m = _ATARI_ID.match(env_id)
        if env_id.startswith("ALE/") and m is None:
            hint = " Atari ids look like 'ALE/<Game>-v5' with the game in CamelCase, e.g. 'ALE/Breakout-v5'."
        raise ValueError(f"unknown Atari env id {env_id!r}.{hint}{close_matches(env_id, ale_ids, 0.5)}")
    return str(spec.kwargs["game"])


class FireResetEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Press FIRE once after reset, for games that wait for it (Breakout, Pong...).

    Mirrors the ALE vector env's ``use_fire_reset``: one FIRE agent step after the no-ops,
    only when the game's action set has FIRE at index 1. If the FIRE step ends the game, the
    env is reset again.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        meanings = env.unwrapped.get_action_meanings()
        self.needs_fire = len(meanings) >= 2 and meanings[1] == "FIRE"

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        if self.needs_fire:
            obs, _, terminated, truncated, info = self.env.step(1)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def make_ale_vector_env(env_id: str, num_envs: int, config: AtariConfig, num_threads: int = 0) -> gym.vector.VectorEnv:
    """The fast path: ALE's C++ vector env with same-step autoreset and raw rewards.

    Life loss and reward clipping are left to the tensor layer (so that it can report raw
    returns and keep the game going after a life loss).
    """
    from ale_py.vector_env import AtariVectorEnv

    return AtariVectorEnv(
        atari_game(env_id),
        num_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=config.max_episode_frames,
        repeat_action_probability=config.repeat_action_probability,
        full_action_space=config.full_action_space,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        img_height=config.screen_size,
        img_width=config.screen_size,
        grayscale=True,
        stack_num=config.frame_stack,
        frameskip=config.frame_skip,
        maxpool=True,
        noop_max=config.noop_max,
        episodic_life=False,
        life_loss_info=False,
        reward_clipping=False,
        use_fire_reset=config.fire_reset,
    )


def make_reference_atari(env_id: str, config: AtariConfig, render_mode: str | None = None) -> gym.Env:
    """The reference path for one env: Gymnasium's ALE env and preprocessing wrappers."""
    register_atari()
    game = atari_game(env_id)
    # Any ALE id of the game will do: every option that matters is passed explicitly.
    base_id = next(
        (k for k, s in gym.registry.items() if k.startswith("ALE/") and s.kwargs.get("game") == game),
        env_id,
    )
    env = gym.make(
        base_id,
        frameskip=1,
        repeat_action_probability=config.repeat_action_probability,
        full_action_space=config.full_action_space,
        max_num_frames_per_episode=config.max_episode_frames,
        render_mode=render_mode,
    )
    env = gym.wrappers.AtariPreprocessing(
        env,
        noop_max=config.noop_max,
        frame_skip=config.frame_skip,
        screen_size=config.screen_size,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    if config.fire_reset:
        env = FireResetEnv(env)
    return gym.wrappers.FrameStackObservation(env, config.frame_stack, padding_type="zero")


def make_reference_vector_env(
    env_id: str, num_envs: int, config: AtariConfig, vectorization: str = "same-step", render_mode: str | None = None
) -> gym.vector.VectorEnv:
    """The reference path: ``num_envs`` wrapped envs in a Sync/Async vector env (same-step autoreset)."""
    fns = [lambda: make_reference_atari(env_id, config, render_mode) for _ in range(num_envs)]
    cls = gym.vector.AsyncVectorEnv if vectorization == "async" else gym.vector.SyncVectorEnv
    return cls(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def action_meanings(env_id: str, full_action_space: bool = False) -> list[str]:
    """Names of the game's actions (``["NOOP", "FIRE", "RIGHT", "LEFT"]`` for Breakout)."""
    register_atari()
    env = gym.make(env_id, full_action_space=full_action_space)
    try:
        return list(env.unwrapped.get_action_meanings())
    finally:
        env.close()

