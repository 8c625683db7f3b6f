"""Replay buffers: equivalence with a naive full-stack reference, n-step, PER, memory, errors."""

import math

import numpy as np
import pytest
import torch

from agents.replay import PrioritizedReplayBuffer, ReplayBuffer
from foundations.runlog import load_checkpoint, save_checkpoint

K, H, W = 4, 6, 5


class FakeFrameEnvs:
    """Env streams emitting zero-padded frame stacks, like envs.make_env for Atari.

    Each step ends the episode with some probability (terminated or truncated, the env resets)
    or reports a life loss (terminated, the game and the stack go on).
    """

    def __init__(self, num_envs, seed):
        self.rng = np.random.default_rng(seed)
        self.n = num_envs
        self.obs = np.stack([self._reset_stack() for _ in range(num_envs)])

    def _frame(self):
        return self.rng.integers(1, 256, (H, W), dtype=np.uint8)  # never all-zero

    def _reset_stack(self):
        stack = np.zeros((K, H, W), dtype=np.uint8)
        stack[-1] = self._frame()
        return stack

    def step(self):
        obs = self.obs.copy()
        next_obs = np.concatenate([obs[:, 1:], np.stack([self._frame() for _ in range(self.n)])[:, None]], axis=1)
        u = self.rng.random(self.n)
        terminated = u < 0.12  # 0.07 game over + 0.05 life loss
        truncated = (u >= 0.12) & (u < 0.16)
        resets = (u < 0.07) | truncated
        reward = self.rng.normal(size=self.n).astype(np.float32)
        action = self.rng.integers(0, 6, self.n)
        self.obs = next_obs.copy()
        for i in np.flatnonzero(resets):
            self.obs[i] = self._reset_stack()
        return obs, action, reward, next_obs, terminated, truncated


def _t(x, dtype=None):
    return torch.as_tensor(x, dtype=dtype)


def reference_batch(transitions, j, n, gamma):
    """Naive n-step transition j from a list of full transitions of one env stream."""
    ret, m = 0.0, 0
    for k in range(n):
        if j + k >= len(transitions):
            return None  # window not complete yet
        tr = transitions[j + k]
        ret += gamma**k * tr["reward"]
        m = k + 1
        if tr["terminated"] or tr["truncated"]:
            break
    last = transitions[j + m - 1]
    discount = 0.0 if last["terminated"] else gamma**m
    return transitions[j]["obs"], transitions[j]["action"], ret, last["next_obs"], discount


@pytest.mark.parametrize("num_envs", [1, 4])
@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("buffer_cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_frame_dedup_matches_full_stack_reference(num_envs, n_step, buffer_cls):
    gamma = 0.9
    slots = 40
    buf = buffer_cls(slots * num_envs, (K, H, W), torch.uint8, (), torch.int64, num_envs,
                     frame_stack=K, n_step=n_step, gamma=gamma)
    envs = FakeFrameEnvs(num_envs, seed=num_envs * 10 + n_step)
    history = [[] for _ in range(num_envs)]
    for step in range(300):  # the rings wrap several times
        obs, action, reward, next_obs, term, trunc = envs.step()
        buf.add(_t(obs), _t(action), _t(reward), _t(next_obs), _t(term), _t(trunc))
        for e in range(num_envs):
            history[e].append(dict(obs=obs[e], action=action[e], reward=float(reward[e]), next_obs=next_obs[e],
                                   terminated=bool(term[e]), truncated=bool(trunc[e])))
        if step % 37 != 36 and step != 299:
            continue
        idx = buf.valid_indices()
        batch = buf.get(idx)
        env = idx // buf.slots
        sid = buf.step_id.flatten()[idx]
        for b in range(idx.numel()):
            e, j = int(env[b]), int(sid[b])
            ref = reference_batch(history[e], j, n_step, gamma)
            assert ref is not None, "a sampled transition must have a complete window"
            r_obs, r_act, r_ret, r_next, r_disc = ref
            np.testing.assert_array_equal(batch.obs[b].numpy(), r_obs)
            np.testing.assert_array_equal(batch.next_obs[b].numpy(), r_next)
            assert int(batch.actions[b]) == r_act
            assert float(batch.rewards[b]) == pytest.approx(r_ret, abs=1e-5)
            assert float(batch.discounts[b]) == pytest.approx(r_disc, abs=1e-6)
        # Nothing recent is missing: every complete transition among the newest half is stored.
        stored = set(zip(env.tolist(), sid.tolist(), strict=True))
        for e in range(num_envs):
            newest = len(history[e])
            for j in range(max(0, newest - slots // 2), newest):
                if reference_batch(history[e], j, n_step, gamma) is not None:
                    assert (e, j) in stored, f"env {e} transition {j} missing"
        assert len(buf) == int(buf.valid.sum())


def test_vector_observations_with_n_step_hand_computed():
    """Non-frame mode, one env: r = [1, 2, 3, 4], episode terminated at t=2, truncated at t=5."""
    gamma = 0.5
    buf = ReplayBuffer(16, (2,), torch.float32, (), torch.int64, 1, n_step=3, gamma=gamma)
    #        t:   0      1      2(term) 3      4      5(trunc) 6
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    term = [False, False, True, False, False, False, False]
    trunc = [False, False, False, False, False, True, False]
    for t in range(7):
        obs = torch.tensor([[t, 0.0]])
        nxt = torch.tensor([[t + 1, 100.0 if term[t] or trunc[t] else 0.0]])  # final obs marked
        buf.add(obs, torch.tensor([t]), torch.tensor([rewards[t]]), nxt, torch.tensor([term[t]]), torch.tensor([trunc[t]]))
    got = buf.get(torch.arange(6))
    expect_rewards = [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0, 4 + 0.5 * 5 + 0.25 * 6, 5 + 0.5 * 6, 6 + 0.5 * 7]
    expect_disc = [0.0, 0.0, 0.0, 0.125, 0.25, 0.125]
    expect_next = [[3, 100], [3, 100], [3, 100], [6, 100], [6, 100], [7, 0]]
    torch.testing.assert_close(got.rewards[:5], torch.tensor(expect_rewards[:5]))
    torch.testing.assert_close(got.discounts[:5], torch.tensor(expect_disc[:5]))
    torch.testing.assert_close(got.next_obs[:5], torch.tensor(expect_next[:5], dtype=torch.float32))
    # transition 5 (truncated) bootstraps after one step; transition 6's window is incomplete
    t5 = buf.get(torch.tensor([5]))
    assert float(t5.rewards) == 6.0 and float(t5.discounts) == 0.5
    torch.testing.assert_close(t5.next_obs, torch.tensor([[6.0, 100.0]]))
    assert buf.ready(torch.arange(7)).tolist() == [True] * 6 + [False]


def test_life_loss_keeps_the_stack_and_reset_zeroes_it():
    buf = ReplayBuffer(32, (K, H, W), torch.uint8, (), torch.int64, 1, frame_stack=K)
    f = [torch.full((H, W), i + 1, dtype=torch.uint8) for i in range(10)]

    def stack(*frames):
        pad = [torch.zeros(H, W, dtype=torch.uint8)] * (K - len(frames))
        return torch.stack(pad + list(frames))[None]

    no, yes = torch.tensor([False]), torch.tensor([True])
    a, r = torch.tensor([0]), torch.tensor([0.0])
    buf.add(stack(f[0]), a, r, stack(f[0], f[1]), no, no)
    buf.add(stack(f[0], f[1]), a, r, stack(f[0], f[1], f[2]), yes, no)  # life lost
    buf.add(stack(f[0], f[1], f[2]), a, r, stack(f[0], f[1], f[2], f[3]), yes, no)  # game over
    buf.add(stack(f[5]), a, r, stack(f[5], f[6]), no, no)  # new game
    b = buf.get(buf.valid_indices())
    assert torch.equal(b.obs[1], stack(f[0], f[1])[0])
    assert torch.equal(b.obs[2], stack(f[0], f[1], f[2])[0])  # continued across the life loss
    assert torch.equal(b.next_obs[2], stack(f[0], f[1], f[2], f[3])[0])  # true final frame kept
    assert torch.equal(b.obs[3], stack(f[5])[0])  # new episode: zeros before its first frame
    assert b.discounts.tolist() == pytest.approx([0.99, 0.0, 0.0, 0.99])


def test_uniform_sampling_covers_ready_transitions_uniformly():
    buf = ReplayBuffer(64, (K, H, W), torch.uint8, (), torch.int64, 2, frame_stack=K)
    envs = FakeFrameEnvs(2, seed=0)
    for _ in range(100):
        buf.add(*[_t(x) for x in envs.step()])
    ready = buf.valid_indices()
    g = torch.Generator().manual_seed(0)
    draws = torch.cat([buf.sample(32, generator=g).indices for _ in range(1600)])
    assert set(draws.tolist()) == set(ready.tolist())  # never a phantom or stale slot
    counts = torch.bincount(draws, minlength=buf.capacity)[ready].double()
    expected = draws.numel() / ready.numel()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = ready.numel() - 1
    assert chi2 < dof + 4 * math.sqrt(2 * dof)


def _filled_per(n=64, alpha=0.7, seed=0):
    buf = PrioritizedReplayBuffer(n, (3,), torch.float32, (), torch.int64, 1, alpha=alpha)
    for t in range(n + 5):  # wraps: the oldest five slots are overwritten
        x = torch.tensor([[float(t), 0.0, 0.0]])
        buf.add(x, torch.tensor([t]), torch.tensor([1.0]), x, torch.tensor([False]), torch.tensor([False]))
    idx = buf.valid_indices()
    pri = torch.rand(idx.numel(), generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 5
    buf.update_priorities(idx, pri)
    return buf, idx, pri


def test_per_tree_total_equals_sum_of_priorities_to_the_alpha():
    buf, _, pri = _filled_per()
    expected = ((pri + buf.eps) ** buf.alpha).sum()
    torch.testing.assert_close(buf.total, expected)
    # internal nodes are sums of their children at every level
    leaves = buf._leaves
    torch.testing.assert_close(buf.tree[1:leaves], buf.tree[2:2 * leaves:2] + buf.tree[3:2 * leaves:2])


def test_per_sampling_frequencies_match_priorities_chi_square():
    buf, idx, pri = _filled_per()
    g = torch.Generator().manual_seed(1)
    draws = torch.cat([buf.sample(64, generator=g).indices for _ in range(1000)])
    counts = torch.bincount(draws, minlength=buf.capacity)[idx].double()
    p = (pri + buf.eps) ** buf.alpha
    expected = draws.numel() * p / p.sum()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = idx.numel() - 1
    # Wilson-Hilferty: the chi-square 0.999 quantile is dof * (1 - 2/(9 dof) + 3.09 sqrt(2/(9 dof)))^3
    critical = dof * (1 - 2 / (9 * dof) + 3.09 * (2 / (9 * dof)) ** 0.5) ** 3
    assert chi2 < critical, (chi2, critical)
    assert counts.sum() == draws.numel()  # nothing outside the stored transitions


def test_per_importance_weights_hand_made_case():
    buf = PrioritizedReplayBuffer(8, (1,), torch.float32, (), torch.int64, 1, alpha=1.0, eps=1e-12)
    for t in range(4):
        x = torch.tensor([[float(t)]])
        buf.add(x, torch.tensor([0]), torch.tensor([0.0]), x, torch.tensor([False]), torch.tensor([False]))
    buf.update_priorities(torch.arange(4), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    g = torch.Generator().manual_seed(0)
    batch = buf.sample(4, generator=g, beta=0.5)
    p = batch.indices.double() + 1  # priority of slot i is i + 1
    w = (4 * p / 10) ** -0.5
    torch.testing.assert_close(batch.weights, (w / w.max()).float())
    # Stratified: one draw per quarter of the total 10 -> slots 0..3 in the four segments
    # [0,2.5) [2.5,5) [5,7.5) [7.5,10) with cumulative priorities 1, 3, 6, 10.
    assert batch.indices.tolist()[0] in (0, 1) and batch.indices.tolist()[-1] == 3


def test_per_new_transitions_get_max_priority():
    buf, _, pri = _filled_per(alpha=1.0)
    x = torch.tensor([[0.5, 0.0, 0.0]])
    buf.add(x, torch.tensor([0]), torch.tensor([0.0]), x, torch.tensor([False]), torch.tensor([False]))
    newest = buf.head[0] % buf.slots
    assert float(buf.tree[buf._leaves + newest]) == pytest.approx(float(pri.max()) + buf.eps)


def test_atari_bytes_per_transition():
    for cls in (ReplayBuffer, PrioritizedReplayBuffer):
        buf = cls(100_000, (4, 84, 84), torch.uint8, (), torch.int64, 8, frame_stack=4, n_step=3)
        per_transition = buf.nbytes / buf.capacity
        assert 7056 <= per_transition <= 7200, (cls.__name__, per_transition)


def test_state_dict_round_trip(tmp_path):
    buf = PrioritizedReplayBuffer(80, (K, H, W), torch.uint8, (), torch.int64, 2, frame_stack=K, n_step=2)
    envs = FakeFrameEnvs(2, seed=3)
    for _ in range(60):
        buf.add(*[_t(x) for x in envs.step()])
    buf.update_priorities(torch.tensor([3, 5]), torch.tensor([9.0, 0.5]))
    save_checkpoint(tmp_path / "replay.pt", {"replay": buf.state_dict()})
    other = PrioritizedReplayBuffer(80, (K, H, W), torch.uint8, (), torch.int64, 2, frame_stack=K, n_step=2)
    other.load_state_dict(load_checkpoint(tmp_path / "replay.pt")["replay"])
    a = buf.sample(32, generator=torch.Generator().manual_seed(0))
    b = other.sample(32, generator=torch.Generator().manual_seed(0))
    for name in ("obs", "actions", "rewards", "next_obs", "discounts", "indices", "weights"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    # adding continues identically
    step = [_t(x) for x in envs.step()]
    buf.add(*step)
    other.add(*step)
    assert torch.equal(buf.frames, other.frames) and torch.equal(buf.tree, other.tree)
    wrong = ReplayBuffer(80, (K, H, W), torch.uint8, (), torch.int64, 2, frame_stack=K, n_step=3)
    with pytest.raises(ValueError, match="n_step"):
        wrong.load_state_dict(buf.state_dict())


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_state_dict_holds_only_the_filled_slots(tmp_path, cls):
    """A checkpoint of a large, barely filled buffer is as small as what it stores, restores
    every tensor exactly, and a full-size state (the format before) still loads."""
    def build():
        return cls(20_000, (K, H, W), torch.uint8, (), torch.int64, 2, frame_stack=K, n_step=2)

    buf, envs = build(), FakeFrameEnvs(2, seed=3)
    for _ in range(30):
        buf.add(*[_t(x) for x in envs.step()])
    path = save_checkpoint(tmp_path / "replay.pt", {"replay": buf.state_dict()})
    frame_bytes = H * W
    assert path.stat().st_size < 2 * 40 * frame_bytes + 20_000, path.stat().st_size  # not 20,000 frames
    assert buf.nbytes > 20 * path.stat().st_size
    for state in (load_checkpoint(path)["replay"],
                  {"config": buf._config(), "adds": buf._adds, "tensors": dict(buf._tensors())}):  # full (old)
        other = build()
        other.add(*[_t(x) for x in FakeFrameEnvs(2, seed=9).step()])  # stale content is replaced
        other.load_state_dict(state)
        for name, tensor in buf._tensors().items():
            assert torch.equal(getattr(other, name), tensor), name
        assert other._adds == buf._adds


def test_bad_input():
    buf = ReplayBuffer(64, (K, H, W), torch.uint8, (), torch.int64, 2, frame_stack=K)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1)
    ok = dict(obs=torch.zeros(2, K, H, W, dtype=torch.uint8), action=torch.zeros(2, dtype=torch.int64),
              reward=torch.zeros(2), next_obs=torch.zeros(2, K, H, W, dtype=torch.uint8),
              terminated=torch.zeros(2, dtype=torch.bool), truncated=torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"obs must have shape \[2, 4, 6, 5\], got \[2, 4, 5, 6\]"):
        buf.add(**{**ok, "obs": torch.zeros(2, K, W, H, dtype=torch.uint8)})
    with pytest.raises(ValueError, match=r"obs must have dtype torch\.uint8, got torch\.float32"):
        buf.add(**{**ok, "obs": torch.zeros(2, K, H, W)})
    with pytest.raises(ValueError, match=r"terminated must have dtype torch\.bool"):
        buf.add(**{**ok, "terminated": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"action must have shape \[2\]"):
        buf.add(**{**ok, "action": torch.zeros(3, dtype=torch.int64)})
    buf.add(**ok)
    with pytest.raises(ValueError, match="more than the 2 transitions"):
        buf.sample(3)
    with pytest.raises(ValueError, match="obs_shape must be"):
        ReplayBuffer(64, (3, H, W), torch.uint8, (), torch.int64, 1, frame_stack=K)
    with pytest.raises(ValueError, match="slots per env"):
        ReplayBuffer(16, (K, H, W), torch.uint8, (), torch.int64, 4, frame_stack=K)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, (2,), torch.float32, (), torch.int64)
    with pytest.raises(ValueError, match="beta"):
        PrioritizedReplayBuffer(16, (2,), torch.float32, (), torch.int64).sample(1, beta=2.0)


def test_n_step_window_not_ready_until_complete():
    buf = ReplayBuffer(32, (2,), torch.float32, (), torch.int64, 1, n_step=3)
    x = torch.zeros(1, 2)
    buf.add(x, torch.tensor([0]), torch.tensor([1.0]), x, torch.tensor([False]), torch.tensor([False]))
    with pytest.raises(ValueError, match="no transition ready"):
        buf.sample(1)


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_cuda_matches_cpu(cls):
    bufs = [cls(80, (K, H, W), torch.uint8, (), torch.int64, 2, device=d, frame_stack=K, n_step=3)
            for d in ("cpu", "cuda")]
    envs = FakeFrameEnvs(2, seed=5)
    for _ in range(70):
        step = [_t(x) for x in envs.step()]
        for b in bufs:
            b.add(*[x.to(b.device) for x in step])
    idx = bufs[0].valid_indices()
    assert torch.equal(idx, bufs[1].valid_indices().cpu())
    a, b = bufs[0].get(idx), bufs[1].get(idx.cuda())
    for name in ("obs", "actions", "rewards", "next_obs", "discounts"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name).cpu())
    assert bufs[1].sample(16).obs.is_cuda


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_host_writes_equal_the_tensor_path(cls):
    """On the CPU, vector observations are written through NumPy views; the tensor path (used
    on other devices) must leave the same storage behind, wrapped rings and PER leaves included."""
    host, tensor_path = (cls(24, (3,), torch.float32, (), torch.int64, 2, n_step=1) for _ in range(2))
    tensor_path._host = None
    assert host._host is not None
    rng = np.random.default_rng(0)
    for _ in range(30):
        obs, next_obs = (_t(rng.normal(size=(2, 3)).astype(np.float32)) for _ in range(2))
        step = (obs, _t(rng.integers(0, 4, 2)), _t(rng.normal(size=2).astype(np.float32)), next_obs,
                _t(rng.random(2) < 0.1), _t(rng.random(2) < 0.1))
        host.add(*step)
        tensor_path.add(*step)
    for name, t in host._tensors().items():
        assert torch.equal(t, tensor_path._tensors()[name]), name
    if cls is PrioritizedReplayBuffer:
        assert torch.equal(host.tree, tensor_path.tree)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = host.sample(8, generator=g1), tensor_path.sample(8, generator=g2)
    for name in ("obs", "actions", "rewards", "next_obs", "discounts", "indices"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
