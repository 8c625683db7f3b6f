"""Atari through both backends: preprocessing, episode semantics, determinism."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs import AtariConfig, FireResetEnv, make_env
from envs.atari import make_reference_atari

BACKENDS = ["ale", "gymnasium"]


def _random_actions(n, num_envs, num_actions, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_actions, (n, num_envs), generator=g)


@pytest.mark.parametrize("backend", BACKENDS)
def test_observation_format_and_reset_stack(backend):
    with make_env("ALE/Breakout-v5", 2, seed=3, backend=backend) as env:
        assert env.obs_shape == (4, 84, 84) and env.obs_dtype == torch.uint8
        assert env.is_discrete and env.num_actions == 4
        obs = env.reset()
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == torch.uint8
        # the reset stack: three zero frames, then the first real frame of the game
        assert torch.all(obs[:, :3] == 0)
        frame = obs[:, 3].float()
        assert frame.std() > 20 and 0 < frame.mean() < 100 and obs.max() <= 255
        result = env.step(torch.ones(2, dtype=torch.int64))
        # the stack shifts by one frame per step
        assert torch.equal(result.obs[:, 2], obs[:, 3])
        assert result.reward.dtype == torch.float32 and result.terminated.dtype == torch.bool


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_and_actions_give_identical_trajectories(backend):
    actions = _random_actions(300, 2, 4)

    def rollout():
        with make_env("ALE/Breakout-v5", 2, seed=11, backend=backend) as env:
            obs = [env.reset()]
            rewards, dones = [], []
            for a in actions:
                r = env.step(a)
                obs.append(r.obs)
                rewards.append(r.reward)
                dones.append(r.terminated | r.truncated)
            return torch.stack(obs), torch.stack(rewards), torch.stack(dones)

    o1, r1, d1 = rollout()
    o2, r2, d2 = rollout()
    assert torch.equal(o1, o2) and torch.equal(r1, r2) and torch.equal(d1, d2)
    assert d1.any()  # a life was lost along the way, so the check covered an episode boundary


@pytest.mark.parametrize("backend", BACKENDS)
def test_different_seeds_differ(backend):
    def first_obs(seed):
        with make_env("ALE/Breakout-v5", 1, seed=seed, backend=backend) as env:
            env.reset()
            a = torch.zeros(1, dtype=torch.int64)
            return torch.stack([env.step(a).obs for _ in range(40)])

    assert not torch.equal(first_obs(1), first_obs(2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_life_loss_game_over_and_raw_return(backend):
    """Play Breakout randomly until a whole game ends; check every learning signal on the way."""
    with make_env("ALE/Breakout-v5", 1, seed=5, backend=backend) as env:
        obs = env.reset()
        life_losses, clipped_sum, steps = 0, 0.0, 0
        for a in _random_actions(5000, 1, 4, seed=1):
            r = env.step(a)
            steps += 1
            clipped_sum += float(r.reward)
            if r.reset.item():  # game over: the env reset within this step
                assert r.terminated.item()
                assert torch.all(r.obs[0, :3] == 0)  # new game's stack starts from zeros
                assert not torch.equal(r.next_obs, r.obs)  # true final frame kept for the learner
                assert torch.equal(r.next_obs[0, :3], obs[0, 1:])
                ep = r.episodes
                assert ep.env_ids.tolist() == [0] and ep.lengths.item() == steps
                assert ep.returns.item() == pytest.approx(clipped_sum)  # Breakout pays 1 per brick low down
                break
            assert len(r.episodes) == 0
            if r.terminated.item():  # a life lost: terminal for learning, but the game goes on
                life_losses += 1
                assert not r.reset.item()
                assert torch.equal(r.obs[0, :3], obs[0, 1:])  # stack not reset
            obs = r.obs
        else:
            pytest.fail("no game ended within 5000 random steps")
        assert life_losses == 4  # five lives: four life losses, then game over


def test_reward_clipping_keeps_raw_episode_return():
    """SpaceInvaders pays 5-30 points per alien: the learner sees signs, statistics see points."""
    actions = _random_actions(3000, 1, 6, seed=2)
    out = {}
    for clip in (True, False):
        cfg = AtariConfig(clip_rewards=clip, terminal_on_life_loss=False)
        with make_env("ALE/SpaceInvaders-v5", 1, seed=0, atari=cfg) as env:
            env.reset()
            rewards, ret = [], None
            for a in actions:
                r = env.step(a)
                rewards.append(float(r.reward))
                if len(r.episodes):
                    ret = r.episodes.returns.item()
                    break
            out[clip] = (np.array(rewards), ret)
    clipped, raw = out[True][0], out[False][0]
    assert len(clipped) == len(raw) and raw.max() > 1
    np.testing.assert_array_equal(clipped, np.sign(raw))
    assert out[True][1] == out[False][1] == pytest.approx(raw.sum())


@pytest.mark.parametrize("backend", BACKENDS)
def test_fire_reset_launches_the_ball(backend):
    """With only NOOPs, Breakout's ball is launched (and lost) only if FIRE is pressed on reset."""
    def lives_lost(fire):
        cfg = AtariConfig(fire_reset=fire)
        with make_env("ALE/Breakout-v5", 1, seed=0, atari=cfg, backend=backend) as env:
            env.reset()
            noop = torch.zeros(1, dtype=torch.int64)
            return sum(int(env.step(noop).terminated) for _ in range(400))

    assert lives_lost(True) >= 1
    assert lives_lost(False) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncation_gives_true_final_observation(backend):
    cfg = AtariConfig(max_episode_frames=400, terminal_on_life_loss=False)
    with make_env("ALE/Pong-v5", 1, seed=0, atari=cfg, backend=backend) as env:
        obs = env.reset()
        for t in range(200):
            r = env.step(torch.zeros(1, dtype=torch.int64))
            if r.reset.item():
                assert r.truncated.item() and not r.terminated.item()
                assert torch.equal(r.next_obs[0, :3], obs[0, 1:])
                assert torch.all(r.obs[0, :3] == 0)
                assert r.episodes.lengths.item() == t + 1
                break
            obs = r.obs
        else:
            pytest.fail("episode was not truncated")
    assert 90 <= t + 1 <= 100  # 400 frames / frame skip 4, less the reset no-ops


def test_backends_agree_on_semantics():
    """Same shapes, dtypes, value ranges and life accounting on both paths."""
    stats = {}
    for backend in BACKENDS:
        with make_env("ALE/Breakout-v5", 2, seed=0, backend=backend) as env:
            obs = env.reset()
            lives, games, means = 0, 0, []
            for a in _random_actions(600, 2, 4, seed=3):
                r = env.step(a)
                lives += int(r.terminated.sum())
                games += len(r.episodes)
                means.append(r.obs[:, 3].float().mean())
            stats[backend] = (obs.shape, obs.dtype, lives, games, float(torch.stack(means).mean()))
    (s1, d1, l1, g1, m1), (s2, d2, l2, g2, m2) = stats["ale"], stats["gymnasium"]
    assert s1 == s2 and d1 == d2
    assert g1 >= 1 and g2 >= 1
    assert l1 / g1 == pytest.approx(l2 / g2, rel=0.3)  # about five terminals (lives) per game
    assert m1 == pytest.approx(m2, abs=3.0)  # mean grey level of a frame


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_reference_env_passes_gymnasium_check_env():
    from gymnasium.utils.env_checker import check_env

    env = make_reference_atari("ALE/Breakout-v5", AtariConfig())
    check_env(env, skip_render_check=True)
    env.close()


def test_fire_reset_wrapper_only_for_fire_games():
    gym_env = gym.make("ALE/Breakout-v5")
    assert FireResetEnv(gym_env).needs_fire
    gym_env.close()
    gym_env = gym.make("ALE/Freeway-v5")  # NOOP, UP, DOWN
    assert not FireResetEnv(gym_env).needs_fire
    gym_env.close()


def test_sticky_actions_option_changes_dynamics():
    actions = _random_actions(200, 1, 4, seed=4)

    def frames(p):
        cfg = dataclasses.replace(AtariConfig(), repeat_action_probability=p)
        with make_env("ALE/Breakout-v5", 1, seed=0, atari=cfg) as env:
            env.reset()
            return torch.stack([env.step(a).obs for a in actions])

    assert not torch.equal(frames(0.0), frames(0.25))


def test_full_action_space_flag():
    with make_env("ALE/Breakout-v5", 1, atari=AtariConfig(full_action_space=True)) as env:
        assert env.num_actions == 18


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_cuda_device(backend):
    with make_env("ALE/Breakout-v5", 2, seed=0, device="cuda", backend=backend) as env:
        obs = env.reset()
        r = env.step(torch.ones(2, dtype=torch.int64, device="cuda"))
        assert obs.is_cuda and r.obs.is_cuda and r.reward.is_cuda and r.next_obs.is_cuda
