"""make_env for non-Atari ids, bad input, and the evaluation helper."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs import AtariConfig, evaluate, make_env, write_gif
from envs.sync import SameStepVectorEnv
from envs.vector import TensorVecEnv


def test_cartpole_tensors_and_final_observation():
    with make_env("CartPole-v1", 4, seed=0) as env:
        assert env.obs_shape == (4,) and env.obs_dtype == torch.float32 and env.num_actions == 2
        obs = env.reset()
        assert obs.shape == (4, 4) and obs.dtype == torch.float32
        ended = 0
        for _ in range(200):
            r = env.step(torch.zeros(4, dtype=torch.int64))  # always push left: falls fast
            done = r.terminated | r.truncated
            if done.any():
                ended += int(done.sum())
                i = int(done.nonzero()[0])
                # the final observation is past the 12-degree failure angle (or off the track),
                # the new episode's first observation is a small random state
                final = r.next_obs[i]
                assert final[2].abs() > 0.2094 or final[0].abs() > 2.4
                assert r.obs[i].abs().max() <= 0.05
                assert torch.equal(r.next_obs[~done], r.obs[~done])
                assert set(r.episodes.env_ids.tolist()) == set(done.nonzero().flatten().tolist())
                assert torch.all(r.episodes.lengths >= 8)
                # CartPole pays 1 per step, so the raw return equals the length
                assert torch.equal(r.episodes.returns, r.episodes.lengths.double())
        assert ended >= 4


class _Float64Walk(gym.Env):
    """Observations in float64 (a Box the learner gets as float32); ends after 3 steps."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (3,), dtype=np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full(3, 0.1, dtype=np.float64), {}

    def step(self, action):
        self.t += 1
        return np.full(3, 0.1 + self.t + action, dtype=np.float64), 1.0, self.t == 3, False, {}


def test_float64_observations_arrive_as_float32():
    env = TensorVecEnv(SameStepVectorEnv([_Float64Walk for _ in range(2)]))
    assert env.obs_dtype == torch.float32
    obs = env.reset(seed=0)
    assert obs.dtype == torch.float32 and torch.allclose(obs, torch.full((2, 3), 0.1))
    for t in range(1, 4):
        r = env.step(torch.tensor([0, 1]))
        assert r.obs.dtype == r.next_obs.dtype == torch.float32
        assert torch.allclose(r.next_obs[:, 0], torch.tensor([0.1 + t, 1.1 + t]))
    assert torch.equal(r.reset, torch.tensor([True, True])) and torch.allclose(r.obs, torch.full((2, 3), 0.1))


def test_same_seed_same_cartpole_trajectory():
    def run():
        with make_env("CartPole-v1", 2, seed=7) as env:
            out = [env.reset()]
            g = torch.Generator().manual_seed(0)
            for _ in range(100):
                out.append(env.step(torch.randint(0, 2, (2,), generator=g)).obs)
            return torch.stack(out)

    assert torch.equal(run(), run())


def test_continuous_actions():
    with make_env("Pendulum-v1", 3, seed=0) as env:
        assert not env.is_discrete and env.action_shape == (1,)
        env.reset()
        r = env.step(torch.zeros(3, 1))
        assert r.obs.shape == (3, 3) and r.reward.shape == (3,)
        with pytest.raises(ValueError, match=r"\[3, 1\]"):
            env.step(torch.zeros(3))


def test_async_vectorization():
    with make_env("CartPole-v1", 2, seed=0, vectorization="async") as env:
        assert env.reset().shape == (2, 4)
        assert env.step(torch.zeros(2, dtype=torch.int64)).obs.shape == (2, 4)


def test_same_step_vectorization_is_the_default_and_steps_as_gymnasiums_sync_env():
    """The three vectorizations are named choices; the default (SameStepVectorEnv) and Gymnasium's
    SyncVectorEnv give the same observations, rewards, endings and episode statistics."""

    with make_env("CartPole-v1", 3, seed=5) as ours, make_env("CartPole-v1", 3, seed=5, vectorization="sync") as ref:
        assert isinstance(ours.env, SameStepVectorEnv) and isinstance(ref.env, gym.vector.SyncVectorEnv)
        torch.testing.assert_close(ours.reset(), ref.reset(), rtol=0, atol=0)
        g = torch.Generator().manual_seed(0)
        for _ in range(60):
            actions = torch.randint(0, 2, (3,), generator=g)
            a, b = ours.step(actions), ref.step(actions)
            for x, y in ((a.obs, b.obs), (a.reward, b.reward), (a.terminated, b.terminated), (a.next_obs, b.next_obs),
                         (a.episodes.returns, b.episodes.returns)):
                torch.testing.assert_close(x, y, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"vectorization must be one of \('same-step', 'sync', 'async'\)"):
        make_env("CartPole-v1", 2, vectorization="threads")


@pytest.mark.parametrize(
    ("env_id", "suggestion"),
    [
        ("CartPol-v1", "CartPole-v1"),
        ("cartpole-v1", "CartPole-v1"),
        ("ALE/breakout-v5", "ALE/Breakout-v5"),
        ("ALE/Breakout", "ALE/Breakout-v5"),
        ("ALE/Breakut-v5", "ALE/Breakout-v5"),
    ],
)
def test_unknown_ids_list_close_matches(env_id, suggestion):
    with pytest.raises(ValueError, match="Close matches") as info:
        make_env(env_id, 1)
    assert suggestion in str(info.value) and repr(env_id) in str(info.value)


def test_malformed_atari_id_explains_the_format():
    with pytest.raises(ValueError, match=r"ALE/<Game>-v5"):
        make_env("ALE/breakout-v5", 1)


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_num_envs_must_be_positive_int(n):
    with pytest.raises(ValueError, match="num_envs"):
        make_env("CartPole-v1", n)


def test_bad_options():
    with pytest.raises(ValueError, match="backend"):
        make_env("CartPole-v1", 1, backend="envpool")
    with pytest.raises(ValueError, match="only serves Atari"):
        make_env("CartPole-v1", 1, backend="ale")
    with pytest.raises(ValueError, match=r"AtariConfig\.frame_skip"):
        AtariConfig(frame_skip=0)
    with pytest.raises(ValueError, match="cannot render"):
        make_env("ALE/Pong-v5", 1, backend="ale", render_mode="rgb_array")


def test_bad_actions():
    with make_env("CartPole-v1", 2, seed=0) as env:
        with pytest.raises(RuntimeError, match="reset"):
            env.step(torch.zeros(2, dtype=torch.int64))
        env.reset()
        with pytest.raises(ValueError, match=r"\[0, 2\)"):
            env.step(torch.tensor([0, 2]))
        with pytest.raises(ValueError, match="integers"):
            env.step(torch.tensor([0.0, 1.0]))
        with pytest.raises(ValueError, match=r"shape \[2\]"):
            env.step(torch.tensor([0]))


def test_evaluate_returns_raw_full_episode_returns():
    res = evaluate(lambda obs: torch.zeros(obs.shape[0], dtype=torch.int64), "CartPole-v1",
                   num_episodes=6, seed=0, num_envs=2)
    assert res.returns.shape == (6,) and torch.equal(res.returns, res.lengths.double())
    assert torch.all(res.lengths < 20)  # always-left loses quickly
    with pytest.raises(ValueError, match="multiple of num_envs"):
        evaluate(lambda obs: obs, "CartPole-v1", num_episodes=3, num_envs=2)


def test_evaluate_atari_counts_whole_games_and_records_video(tmp_path):
    """Evaluation plays whole games (5 lives) with raw rewards, even if training clips."""
    res = evaluate(lambda obs: torch.randint(0, 4, (obs.shape[0],)), "ALE/Breakout-v5",
                   num_episodes=1, seed=0, atari=AtariConfig(), record_video=True)
    assert res.lengths.item() > 100  # a whole game of random Breakout, not a single life
    frames = res.frames
    assert frames is not None and frames.dtype == torch.uint8 and frames.shape[1:] == (210, 160, 3)
    assert frames.shape[0] == res.lengths.item()  # reset frame + every step but the last
    path = write_gif(frames[:50], tmp_path / "episode.gif")
    assert path.stat().st_size > 1000
