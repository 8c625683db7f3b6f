"""Device-resident replay buffers: uniform and proportional prioritized, with frame de-duplication.

All storage is preallocated torch tensors on ``device``; ``add`` and ``sample`` are a handful of
batched tensor ops (no Python loop over transitions, no NumPy round trip, and on a GPU no batch
ever crosses the PCIe bus).

Layout
------
Each of the ``num_envs`` env streams owns a ring of ``capacity // num_envs`` slots
(storage ``[num_envs, slots, ...]``). Transitions are written in stream order, so the n-step
window of a transition is the next slots of its own ring.

Frame de-duplication (``frame_stack=K``)
----------------------------------------
Observations are stacks ``[K, H, W]`` whose newest frame is ``obs[-1]``. A slot stores only that
newest frame, and a stack is rebuilt at sample time by gathering the slot and its ``K - 1``
predecessors. Frames from before the episode's first step are zero, exactly as in the reset stack
of ``envs.make_env`` (and Gymnasium's ``FrameStackObservation(padding_type="zero")``), so stacks
never mix two episodes.

When an env resets, the final frame of the old episode and the first frame of the new one are
both needed, so each reset costs one extra slot: the old episode's final frame stays in a
*phantom* slot that is never sampled, and the new episode starts in the slot after it. A reset
is recognised by the data itself: after a transition flagged ``terminated`` or ``truncated``, the
stream continues unless the next ``obs`` differs from that transition's ``next_obs``. So a life
loss reported as ``terminated`` (the game goes on, the env's stack is not reset) keeps the stack
continuous, exactly as the agent saw it.

Each slot also records which rows of the frame store make up its stack and next frame (written
at add time, ``K + 1`` int32), so sampling is one table lookup and one ``index_select``. An Atari
transition therefore costs one 84x84 frame (7,056 bytes) plus about 50 bytes of per-slot
bookkeeping, plus one frame per episode.

n-step returns (``n_step=n``)
-----------------------------
``rewards = sum_{k<m} gamma^k r_{t+k}`` and ``discounts = gamma^m * (1 - terminated_{t+m-1})``
where ``m <= n`` stops at the first transition that is terminated or truncated; ``next_obs`` is
the successor of transition ``t+m-1``. Bootstrapping goes through truncation, never through
termination. A transition is sampled only once its window is complete.

Sampling
--------
Uniform sampling draws slots uniformly and redraws those that hold no ready transition
(phantoms, the slot awaiting the next frame, slots whose window is incomplete): exactly uniform
over ready transitions. Checking that every draw is ready reads one boolean on the host per
round (one device synchronisation per ``sample`` on a GPU, no data transfer).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
import torch

from foundations.checks import positive_int, unit_interval


@dataclasses.dataclass(frozen=True)
class ReplayBatch:
    """A sampled batch; every tensor is on the buffer's device.

    Attributes:
      obs: ``[batch, *obs_shape]`` observations (stored dtype, e.g. uint8 frames).
      actions: ``[batch, *action_shape]``.
      rewards: ``[batch]`` float32, n-step discounted sum of rewards.
      next_obs: ``[batch, *obs_shape]`` observation to bootstrap from (n steps ahead, or the
        true final observation where the window ended at a truncation).
      discounts: ``[batch]`` float32, ``gamma^m`` (``m`` the window length), 0 after termination.
      indices: ``[batch]`` int64 flat slot indices (for ``update_priorities``).
      weights: ``[batch]`` float32 importance-sampling weights (all ones for uniform sampling).
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    discounts: torch.Tensor
    indices: torch.Tensor
    weights: torch.Tensor


class ReplayBuffer:
    """Uniform replay on ``device``; see the module docstring for layout and semantics.

    Args:
      capacity: total number of slots (split evenly over ``num_envs`` streams).
      obs_shape: one observation's shape, e.g. ``(4, 84, 84)`` or ``(4,)``.
      obs_dtype: stored observation dtype (``torch.uint8`` for frames).
      action_shape: one action's shape (``()`` for discrete actions).
      action_dtype: stored action dtype (``torch.int64`` for discrete actions).
      num_envs: transitions per ``add`` call (one per env stream).
      device: where everything is stored and sampled.
      frame_stack: ``K`` to store each frame once (``obs_shape[0]`` must be ``K``); ``None``
        stores whole observations and next observations.
      n_step: length of the return window.
      gamma: discount factor.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        frame_stack: int | None = None,
        n_step: int = 1,
        gamma: float = 0.99,
    ) -> None:
        positive_int("capacity", capacity)
        positive_int("num_envs", num_envs)
        positive_int("n_step", n_step)
        unit_interval("gamma", gamma)
        obs_shape, action_shape = tuple(obs_shape), tuple(action_shape)
        if frame_stack is not None:
            positive_int("frame_stack", frame_stack)
            if len(obs_shape) < 2 or obs_shape[0] != frame_stack:
                raise ValueError(
                    f"with frame_stack={frame_stack}, obs_shape must be ({frame_stack}, ...), got {obs_shape}"
                )
        slots = capacity // num_envs
        min_slots = (frame_stack or 1) + n_step + 2
        if slots < min_slots:
            raise ValueError(
                f"capacity {capacity} gives {slots} slots per env for {num_envs} envs; need at least "
                f"{min_slots} (frame_stack + n_step + 2) per env"
            )
        self.capacity, self.num_envs, self.slots = slots * num_envs, num_envs, slots
        self.obs_shape, self.obs_dtype = obs_shape, obs_dtype
        self.action_shape, self.action_dtype = action_shape, action_dtype
        self.device = torch.device(device)
        self._on_cpu = self.device.type == "cpu"
        self.frame_stack, self.n_step, self.gamma = frame_stack, n_step, float(gamma)

        n, s, dev = num_envs, slots, self.device
        if frame_stack is not None:
            # Flat frame store with one extra all-zero row: stack positions before an episode's
            # first frame point at it, so rebuilding stacks is a single index_select.
            self._frame_store = torch.zeros((n * s + 1, *obs_shape[1:]), dtype=obs_dtype, device=dev)
            self.frames = self._frame_store[:-1].view(n, s, *obs_shape[1:])
            self._zero_row = n * s
            self.ep_step = torch.zeros((n, s), dtype=torch.int32, device=dev)
            # Rows of the frame store that make up each slot's stack and its next frame, written
            # at add time: [n, s, K + 1] (oldest .. newest, then the next frame). Sampling is then
            # one lookup and one index_select, whatever the episode boundaries.
            self.frame_rows = torch.full((n, s, frame_stack + 1), n * s, dtype=torch.int32, device=dev)
            self._row_offsets = torch.arange(frame_stack - 1, -2, -1, device=dev)  # K-1 .. 0, -1
            self._last_next_obs = torch.zeros((n, *obs_shape), dtype=obs_dtype, device=dev)
        else:
            self.observations = torch.zeros((n, s, *obs_shape), dtype=obs_dtype, device=dev)
            self.next_observations = torch.zeros((n, s, *obs_shape), dtype=obs_dtype, device=dev)
        self.actions = torch.zeros((n, s, *action_shape), dtype=action_dtype, device=dev)
        self.rewards = torch.zeros((n, s), dtype=torch.float32, device=dev)
        self.terminated = torch.zeros((n, s), dtype=torch.bool, device=dev)
        self.truncated = torch.zeros((n, s), dtype=torch.bool, device=dev)
        self.valid = torch.zeros((n, s), dtype=torch.bool, device=dev)  # slot holds a transition
        self.step_id = torch.full((n, s), -1, dtype=torch.int64, device=dev)  # add() call that wrote it
        # Absolute (not wrapped) slot of each stream's newest transition; -1 before the first add.
        self.head = torch.full((n,), -1, dtype=torch.int64, device=dev)
        self._last_done = torch.zeros(n, dtype=torch.bool, device=dev)
        self._env_ids = torch.arange(n, device=dev)
        self._adds = 0
        self._gamma_powers = self.gamma ** torch.arange(n_step + 1, dtype=torch.float64, device=dev)
        # NumPy views of the CPU storage for add() (frame stacks keep the tensor path); the
        # tensors are only ever written in place (load_state_dict copies), so the views stay valid.
        self._host: dict[str, np.ndarray] | None = None
        if dev.type == "cpu" and frame_stack is None and action_dtype != torch.bfloat16 and obs_dtype != torch.bfloat16:
            names = ("observations", "next_observations", "actions", "rewards", "terminated", "truncated",
                     "step_id", "valid", "head")
            self._host = {name: getattr(self, name).numpy() for name in names}

    # ------------------------------------------------------------------------------- add
    def add(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
    ) -> None:
        """Store one transition per env stream.

        Args:
          obs, next_obs: ``[num_envs, *obs_shape]``; ``next_obs`` is the true successor (the final
            observation where the episode ended), as in ``envs.StepResult.next_obs``.
          action: ``[num_envs, *action_shape]``.
          reward: ``[num_envs]`` (the learner's reward, e.g. clipped).
          terminated, truncated: ``[num_envs]`` bool.
        """
        n = self.num_envs
        self._check("obs", obs, (n, *self.obs_shape), self.obs_dtype)
        self._check("next_obs", next_obs, (n, *self.obs_shape), self.obs_dtype)
        self._check("action", action, (n, *self.action_shape), self.action_dtype)
        self._check("reward", reward, (n,), None)
        self._check("terminated", terminated, (n,), torch.bool)
        self._check("truncated", truncated, (n,), torch.bool)
        first = self._adds == 0
        s = self.slots
        if self.frame_stack is not None:
            if first:
                start = torch.ones(n, dtype=torch.bool, device=self.device)
                slot_abs = self.head + 1
            else:
                same = (obs == self._last_next_obs).flatten(1).all(dim=1)
                start = self._last_done & ~same
                # head + 1 holds the previous transition's next frame: continue there, or leave
                # it as the old episode's phantom final frame and start one slot further on.
                slot_abs = self.head + 1 + start.long()
            slot = slot_abs % s
            prev_ep = self.ep_step[self._env_ids, (slot_abs - 1) % s]
            ep = torch.where(start, torch.zeros_like(prev_ep), prev_ep + 1)
            nxt = (slot_abs + 1) % s
            back = self._row_offsets
            rows = self._env_ids[:, None] * s + (slot_abs[:, None] - back) % s  # [n, K + 1]
            rows = torch.where(back > ep[:, None], self._zero_row, rows)
            self.frame_rows[self._env_ids, slot] = rows.int()
            self.frames[self._env_ids, slot] = obs[:, -1]
            self.ep_step[self._env_ids, slot] = ep
            self.frames[self._env_ids, nxt] = next_obs[:, -1]
            self.ep_step[self._env_ids, nxt] = ep + 1
            self._last_next_obs.copy_(next_obs)
            # Slots whose stacks read the two slots just written can no longer be rebuilt.
            # (This includes the new next-frame slot; after a reset, the phantom left behind is the
            # previous add's next-frame slot, already marked empty then.)
            stale = (slot_abs[:, None] + torch.arange(1, self.frame_stack + 1, device=self.device)) % s
            self._invalidate(stale)
            rows_at: Any = (self._env_ids, slot)  # per-env slots (on the device): advanced indexing
            self.head = slot_abs
        elif self._host is not None:
            # CPU storage: write through NumPy views of it (a tenth of torch's per-index-op cost)
            slot, h = self._adds % s, self._host
            h["observations"][:, slot] = obs.numpy()
            h["next_observations"][:, slot] = next_obs.numpy()
            h["actions"][:, slot] = action.numpy()
            h["rewards"][:, slot] = reward.numpy()
            h["terminated"][:, slot] = terminated.numpy()
            h["truncated"][:, slot] = truncated.numpy()
            h["step_id"][:, slot] = self._adds
            h["head"][:] = self._adds
            self._set_valid(slot)
            self._adds += 1
            return
        else:
            # Every stream writes slot adds % slots, known on the host: plain slicing (no index tensors).
            slot = self._adds % s
            rows_at = (slice(None), slot)
            self.observations[rows_at] = obs
            self.next_observations[rows_at] = next_obs
            self.head.fill_(self._adds)
        self.actions[rows_at] = action
        self.rewards[rows_at] = reward.to(torch.float32)
        self.terminated[rows_at] = terminated
        self.truncated[rows_at] = truncated
        self.step_id[rows_at] = self._adds
        self._set_valid(slot)
        if self.frame_stack is not None:
            self._last_done = terminated | truncated
        self._adds += 1

    def _invalidate(self, slots: torch.Tensor) -> None:
        """Mark ``slots`` ``[num_envs, k]`` (wrapped) as holding no transition."""
        rows = self._env_ids[:, None].expand_as(slots)
        self.valid[rows, slots] = False

    def _set_valid(self, slot: torch.Tensor | int) -> None:
        """Mark ``slot`` (``[num_envs]``, or one slot for every stream) as holding a transition."""
        if isinstance(slot, int):
            if self._host is not None:
                self._host["valid"][:, slot] = True
            else:
                self.valid[:, slot] = True
        else:
            self.valid[self._env_ids, slot] = True

    # ---------------------------------------------------------------------------- sample
    @property
    def num_added(self) -> int:
        """Transitions added since the buffer was built or restored (all envs; a host counter)."""
        return self._adds * self.num_envs

    def __len__(self) -> int:
        """Number of stored transitions (synchronises with the device)."""
        return int(self.valid.sum())

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffer's tensors."""
        return sum(t.nbytes for t in self._tensors().values())

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly (with replacement) from the ready ones."""
        self._check_sample(batch_size)
        if self.frame_stack is None and self.n_step == 1:  # every written slot is ready: no check
            idx = self._draw_uniform(batch_size, generator)
            return self._get_host(idx) if self._host is not None else self.get(idx)
        idx, window = self._draw_ready(batch_size, generator, self._draw_uniform, in_range=True)
        return self.get(idx, window=window)

    def _check_sample(self, batch_size: int) -> None:
        positive_int("batch_size", batch_size)
        if self._adds == 0:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        stored_at_most = self.num_envs * min(self._adds, self.slots)
        if batch_size > stored_at_most:
            raise ValueError(
                f"batch_size {batch_size} is more than the {stored_at_most} transitions stored so far"
            )

    def _draw_uniform(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        if self._adds >= self.slots:  # every ring has wrapped: all slots written
            return torch.randint(0, self.capacity, (batch_size,), device=self.device, generator=generator)
        if self.frame_stack is None:  # slots [0, adds) of every ring are written: known on the host
            u = torch.randint(0, self._adds * self.num_envs, (batch_size,), device=self.device, generator=generator)
            return u if self.num_envs == 1 else (u // self._adds) * self.slots + u % self._adds
        # Slots [0, max head + 2) have been written so far.
        filled = (self.head.max() + 2).clamp(max=self.slots).double()
        env = torch.randint(0, self.num_envs, (batch_size,), device=self.device, generator=generator)
        u = torch.rand(batch_size, device=self.device, dtype=torch.float64, generator=generator)
        return env * self.slots + (u * filled).long()

    def _draw_ready(self, batch_size: int, generator: torch.Generator | None, draw, in_range: bool = False,
                    redraw=None):
        """Indices ``[batch]`` that are all ready, and their n-step window (``None`` for n=1) for :meth:`get`.

        Indices that are not ready are replaced by ``redraw`` (default ``draw``) draws until all are."""
        idx = draw(batch_size, generator)
        redraw = draw if redraw is None else redraw
        for _ in range(200):
            ready, window = self._ready(idx, in_range)
            if bool(ready.all()):
                return idx, window
            idx = torch.where(ready, idx, redraw(batch_size, generator))
        raise ValueError(
            "the replay buffer holds no transition ready to sample (n-step windows incomplete?); "
            "add more transitions before sampling"
        )

    def ready(self, indices: torch.Tensor, in_range: bool = False) -> torch.Tensor:
        """``[batch]`` bool: the slot holds a transition whose n-step window is complete.

        ``in_range=True`` promises ``0 <= indices < capacity`` (skips that check).
        """
        return self._ready(indices, in_range)[0]

    def _ready(self, indices: torch.Tensor, in_range: bool):
        """:meth:`ready`, plus the n-step window it computed (``None`` for n=1)."""
        window = None
        if in_range:
            ok = self.valid.view(-1).index_select(0, indices)
        else:
            inside = (indices >= 0) & (indices < self.capacity)
            indices = torch.where(inside, indices, 0)
            ok = self.valid.view(-1)[indices] & inside
        if self.n_step > 1:
            window = self._window(indices // self.slots, indices % self.slots)
            ok &= window[1] >= 0
        return ok, window

    def _window(self, env: torch.Tensor, slot: torch.Tensor):
        """n-step window of transitions at ``(env, slot)``.

        Returns (rewards [batch] float64, last offset m-1 [batch] int64 (-1: incomplete),
        terminated at the last transition [batch] bool).
        """
        n, s = self.n_step, self.slots
        offs = torch.arange(n, device=self.device)
        pos = (slot[:, None] + offs) % s  # [batch, n]
        e = env[:, None].expand_as(pos)
        done = self.terminated[e, pos] | self.truncated[e, pos]
        # Later slots must hold the transitions that followed: written by consecutive add() calls.
        sid = self.step_id[e, pos]
        follows = (sid == sid[:, :1] + offs) & self.valid[e, pos]
        # Offset of the window's last transition: first done, else n - 1.
        done_before = torch.cumsum(done.long(), dim=1) - done.long()  # dones strictly before k
        in_window = done_before == 0
        last = in_window.long().sum(dim=1) - 1
        complete = (follows | ~in_window).all(dim=1)
        rewards = (self.rewards[e, pos].double() * self._gamma_powers[:n] * in_window).sum(dim=1)
        last = torch.where(complete, last, torch.full_like(last, -1))
        term = self.terminated[env, (slot + last.clamp(min=0)) % s]
        return rewards, last, term

    def get(self, indices: torch.Tensor, *, window: Any = None) -> ReplayBatch:
        """The transitions at flat slot ``indices`` ``[batch]`` (which must be ready).

        ``window``: their n-step window if the caller already has it (sampling does).
        """
        idx = indices
        if idx.dtype != torch.int64 or idx.device != self.device:
            idx = idx.to(self.device, torch.int64)
        if self.n_step > 1:
            slot = idx % self.slots
            base = idx - slot  # flat index of slot 0 of each transition's env ring
            rewards, last, term = window if window is not None else self._window(idx // self.slots, slot)
            discounts = self._gamma_powers[last + 1].float() * ~term
            end = base + (slot + last) % self.slots
            rewards = rewards.float()
        else:
            rewards = self.rewards.view(-1).index_select(0, idx)  # index_select: cheapest gather per call
            discounts = torch.where(self.terminated.view(-1).index_select(0, idx), 0.0, self.gamma)
            end = idx
        if self.frame_stack is not None:
            k, table = self.frame_stack, self.frame_rows.view(-1, self.frame_stack + 1)
            store = self._frame_store.view(self._frame_store.shape[0], -1)  # 2-D: fast index_select
            if self.n_step == 1:
                # obs and next_obs share K-1 frames: gather K+1 frames once, return two views.
                rows = table.index_select(0, idx).flatten()
                frames = store.index_select(0, rows).view(-1, k + 1, *self.obs_shape[1:])
                obs, next_obs = frames[:, :-1], frames[:, 1:]
            else:
                obs = store.index_select(0, table.index_select(0, idx)[:, :k].flatten())
                next_obs = store.index_select(0, table.index_select(0, end)[:, 1:].flatten())
                obs, next_obs = obs.view(-1, *self.obs_shape), next_obs.view(-1, *self.obs_shape)
        else:
            rows = self.capacity
            obs = self.observations.view(rows, -1).index_select(0, idx).view(-1, *self.obs_shape)
            next_obs = self.next_observations.view(rows, -1).index_select(0, end).view(-1, *self.obs_shape)
        return ReplayBatch(
            obs=obs,
            actions=self.actions.view(-1, *self.action_shape).index_select(0, idx),
            rewards=rewards,
            next_obs=next_obs,
            discounts=discounts,
            indices=idx,
            weights=torch.ones(idx.shape[0], dtype=torch.float32, device=self.device),
        )

    def _get_host(self, idx: torch.Tensor) -> ReplayBatch:
        """:meth:`get` for 1-step transitions of vector observations in CPU storage, gathering
        through the NumPy views (a third of ``index_select``'s cost per field at batch 32)."""
        i, h, cap = idx.numpy(), self._host, self.capacity
        rewards = h["rewards"].reshape(cap)[i]
        discounts = np.where(h["terminated"].reshape(cap)[i], np.float32(0.0), np.float32(self.gamma))
        return ReplayBatch(
            obs=torch.from_numpy(h["observations"].reshape(cap, *self.obs_shape)[i]),
            actions=torch.from_numpy(h["actions"].reshape(cap, *self.action_shape)[i]),
            rewards=torch.from_numpy(rewards),
            next_obs=torch.from_numpy(h["next_observations"].reshape(cap, *self.obs_shape)[i]),
            discounts=torch.from_numpy(discounts),
            indices=idx,
            weights=torch.ones(idx.shape[0], dtype=torch.float32),
        )

    def valid_indices(self) -> torch.Tensor:
        """Flat indices of every ready transition (O(capacity); for tests and debugging)."""
        idx = torch.nonzero(self.valid.flatten()).flatten()
        return idx[self.ready(idx)]

    # ----------------------------------------------------------------------- persistence
    def _tensors(self) -> dict[str, torch.Tensor]:
        names = ["actions", "rewards", "terminated", "truncated", "valid", "step_id", "head", "_last_done"]
        names += ["_frame_store", "ep_step", "frame_rows", "_last_next_obs"] if self.frame_stack else ["observations", "next_observations"]
        return {name: getattr(self, name) for name in names}

    def _config(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "obs_shape": list(self.obs_shape),
            "action_shape": list(self.action_shape),
            "num_envs": self.num_envs,
            "frame_stack": self.frame_stack,
            "n_step": self.n_step,
            "gamma": self.gamma,
        }

    # Tensors laid out [num_envs, slots, ...]: a checkpoint keeps their filled slots only.
    _SLOT_MAJOR = ("actions", "rewards", "terminated", "truncated", "valid", "step_id", "ep_step", "frame_rows",
                   "observations", "next_observations")

    def state_dict(self) -> dict[str, Any]:
        """Tensors and counters needed to resume; loadable with ``weights_only=True``.

        Holds the filled slots only (each env stream fills its ring in order until it wraps), so
        its size follows what is stored: a few thousand Atari transitions are megabytes even in
        a 1M-slot buffer. Sliced tensors are copies (a saved view would carry its whole storage).
        """
        filled = self._filled_slots()
        tensors: dict[str, torch.Tensor] = {}
        for name, t in self._tensors().items():
            if name == "_frame_store":
                name, t = "frames", self.frames[:, :filled].clone()  # the zero row is rebuilt
            elif name in self._SLOT_MAJOR:
                t = t[:, :filled].clone()
            tensors[name] = t
        return {"config": self._config(), "adds": self._adds, "tensors": tensors}

    def _filled_slots(self) -> int:
        """Slots ``[0, k)`` of every ring that may hold data: ``min(adds, slots)``; with frame
        stacks, up to the newest next-frame slot (episode starts skip a slot)."""
        if self._adds == 0:
            return 0
        last = int(self.head.max()) + 1 if self.frame_stack is not None else self._adds - 1
        return min(self.slots, last + 1)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the buffer must be built with the same arguments).

        Slots the state does not hold are reset to empty. Also reads states that hold every
        slot (written before checkpoints kept the filled part only).
        """
        if state.get("config") != self._config():
            raise ValueError(f"replay state was saved with {state.get('config')}, this buffer is {self._config()}")
        for name, tensor in state["tensors"].items():
            if name == "frames" or name in self._SLOT_MAJOR:
                target = self.frames if name == "frames" else getattr(self, name)
                k = tensor.shape[1]
                target[:, :k].copy_(tensor)
                if k < self.slots:  # empty slots: what a fresh buffer holds there
                    empty = {"step_id": -1, "frame_rows": self._zero_row if self.frame_stack else 0}.get(name, 0)
                    target[:, k:].fill_(empty)
            else:
                getattr(self, name).copy_(tensor)
        if self.frame_stack is not None:
            self._frame_store[self._zero_row].zero_()
        self._adds = int(state["adds"])

    # --------------------------------------------------------------------------- checks
    def _check(self, name: str, t: Any, shape: tuple[int, ...], dtype: torch.dtype | None) -> None:
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape {list(shape)}, got {type(t).__name__}")
        if t.shape != shape:
            raise ValueError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
        if dtype is not None and t.dtype != dtype:
            raise ValueError(f"{name} must have dtype {dtype}, got {t.dtype}")
        if t.is_cpu != self._on_cpu or (not self._on_cpu and t.device.type != self.device.type):
            raise ValueError(f"{name} must be on {self.device}, got {t.device}")


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016) on a sum tree held in one tensor.

    Transition ``i`` is sampled with probability ``P(i) = p_i^alpha / sum_k p_k^alpha``; new
    transitions get the largest priority seen so far. Sampling is stratified (one draw in each
    of ``batch`` equal segments of the total) and descends the tree for all draws at once:
    ``O(batch * log capacity)`` tensor work. Importance weights are
    ``w_i = (N * P(i))^-beta / max_j w_j`` with the max over the batch, ``N`` the number of
    stored transitions. ``beta`` is passed to :meth:`sample` (annealed by the caller).

    Extra args:
      alpha: priority exponent (0: uniform).
      eps: added to priorities given to :meth:`update_priorities` so none is zero.
    """

    def __init__(self, *args: Any, alpha: float = 0.6, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.alpha, self.eps = float(alpha), float(eps)
        self._leaves = 1 << max(1, math.ceil(math.log2(self.capacity)))
        self._depth = int(math.log2(self._leaves))
        # tree[1] is the root, tree[leaves + i] the leaf of flat slot i; tree[0] is unused.
        self.tree = torch.zeros(2 * self._leaves, dtype=torch.float64, device=self.device)
        self.max_priority = torch.ones((), dtype=torch.float64, device=self.device)

    @property
    def total(self) -> torch.Tensor:
        """Sum of ``priority^alpha`` over stored transitions (a 0-d tensor)."""
        return self.tree[1]

    def _write_leaves(self, flat: torch.Tensor, values: torch.Tensor) -> None:
        """Set leaves ``flat`` ``[k]`` to ``values`` and recompute their ancestors."""
        node = flat + self._leaves
        self.tree[node] = values
        for _ in range(self._depth):
            node = node // 2
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]

    def _set_valid(self, slot: torch.Tensor | int) -> None:
        super()._set_valid(slot)
        flat = self._env_ids * self.slots + slot
        self._write_leaves(flat, self.max_priority.pow(self.alpha).expand(flat.shape[0]))

    def _invalidate(self, slots: torch.Tensor) -> None:
        super()._invalidate(slots)
        flat = (self._env_ids[:, None] * self.slots + slots).flatten()
        self._write_leaves(flat, torch.zeros(flat.shape[0], dtype=torch.float64, device=self.device))

    def state_dict(self) -> dict[str, Any]:
        """:meth:`ReplayBuffer.state_dict` with the filled slots' leaf priorities ``[num_envs,
        filled]`` in place of the whole sum tree (whose inner nodes are rebuilt on load)."""
        state = super().state_dict()
        tensors = state["tensors"]
        del tensors["tree"]
        filled = self._filled_slots()
        flat = self._env_ids[:, None] * self.slots + torch.arange(filled, device=self.device)
        tensors["leaf_priorities"] = self.tree[self._leaves + flat]  # [num_envs, filled], a copy
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (or a state holding the whole tree, the format before)."""
        tensors = dict(state["tensors"])
        leaves = tensors.pop("leaf_priorities", None)
        super().load_state_dict({**state, "tensors": tensors})
        if leaves is not None:
            flat = self._env_ids[:, None] * self.slots + torch.arange(leaves.shape[1], device=self.device)
            self.tree.zero_()
            self.tree[self._leaves + flat] = leaves.to(self.device, torch.float64)
            for level in range(self._depth - 1, -1, -1):  # each inner node: the sum of its children
                lo, hi = 1 << level, 2 << level
                self.tree[lo:hi] = self.tree[2 * lo:2 * hi:2] + self.tree[2 * lo + 1:2 * hi:2]

    def update_priorities(self, indices: torch.Tensor, priorities: torch.Tensor) -> None:
        """Set priorities ``[batch]`` (e.g. ``|TD error|``) of the transitions at ``indices``."""
        if indices.shape != priorities.shape or indices.ndim != 1:
            raise ValueError(
                f"indices and priorities must both be [batch], got {list(indices.shape)} and {list(priorities.shape)}"
            )
        p = priorities.detach().to(self.device, torch.float64).abs() + self.eps
        if not bool(torch.isfinite(p).all()):
            raise ValueError("priorities must be finite (got NaN or inf)")
        indices = indices.to(self.device, torch.int64)
        self.max_priority = torch.maximum(self.max_priority, p.max())
        still_there = self.valid.flatten()[indices]  # a slot may have been overwritten since
        leaf = self.tree[indices + self._leaves]
        self._write_leaves(indices, torch.where(still_there, p.pow(self.alpha), leaf))

    def _draw_prioritized(self, batch_size: int, generator: torch.Generator | None,
                          stratified: bool = True) -> torch.Tensor:
        """``[batch]`` indices drawn in proportion to priority: one from each of ``batch_size``
        equal slices of the priority mass (stratified), or independently."""
        total = self.tree[1]
        u = torch.rand(batch_size, device=self.device, dtype=torch.float64, generator=generator)
        if stratified:
            u = u + torch.arange(batch_size, device=self.device, dtype=torch.float64)
        u = (u * (total / batch_size if stratified else total)).clamp(max=total * (1 - 1e-12))
        node = torch.ones(batch_size, dtype=torch.int64, device=self.device)
        for _ in range(self._depth):
            left = self.tree[2 * node]
            go_right = u >= left
            u = torch.where(go_right, u - left, u)
            node = 2 * node + go_right.long()
        return node - self._leaves  # leaves past capacity have priority 0; ready() rejects them

    def sample(self, batch_size: int, generator: torch.Generator | None = None, beta: float = 0.4) -> ReplayBatch:
        """Prioritized batch; ``weights`` are the normalised importance-sampling weights."""
        unit_interval("beta", beta)
        self._check_sample(batch_size)
        # A slice may hold only transitions whose n-step window is still open (the newest, at
        # the highest priority): their replacements are drawn from the whole mass, not the slice.
        idx, window = self._draw_ready(batch_size, generator, self._draw_prioritized,
                                       redraw=functools.partial(self._draw_prioritized, stratified=False))
        batch = self.get(idx, window=window)
        probs = self.tree[idx + self._leaves] / self.tree[1]
        w = (self.valid.sum() * probs).pow(-beta)  # N: stored transitions
        return dataclasses.replace(batch, weights=(w / w.max()).float())

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "alpha": self.alpha}

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {**super()._tensors(), "tree": self.tree, "max_priority": self.max_priority}
