"""The run logger: run directory, TensorBoard writer, hyperparameters, progress bar, checkpoints.

One :class:`RunLogger` per run owns ``<root>/<env>__<experiment>__<seed>__<unix-time>/`` (the
CleanRL layout, with ``/`` in env ids replaced by ``-``), which holds the TensorBoard event files,
``config.json`` (what was run, for the compare and sweep tools) and the checkpoints.

Scalar tags follow CleanRL's names so curves are comparable with published runs; the constants
in :class:`Tags` are the ones agents in this project log.

Checkpoints are written atomically (temp file in the same directory, fsync, rename), so an
interrupted write never replaces a good checkpoint with a broken one, and are read back with
``torch.load(..., weights_only=True)``, so loading a downloaded checkpoint cannot run code.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary
from tqdm.auto import tqdm


class Tags:
    """Scalar tag names (CleanRL's where CleanRL has one)."""

    EPISODIC_RETURN = "charts/episodic_return"
    EPISODIC_LENGTH = "charts/episodic_length"
    SPS = "charts/SPS"
    LEARNING_RATE = "charts/learning_rate"
    EPSILON = "charts/epsilon"
    TD_LOSS = "losses/td_loss"
    Q_VALUES = "losses/q_values"
    POLICY_LOSS = "losses/policy_loss"
    VALUE_LOSS = "losses/value_loss"
    ENTROPY = "losses/entropy"
    APPROX_KL = "losses/approx_kl"
    CLIPFRAC = "losses/clipfrac"
    EXPLAINED_VARIANCE = "losses/explained_variance"
    EVAL_RETURN = "eval/episodic_return"
    TRAIN_LOSS = "train/loss"
    EVAL_LOSS = "eval/loss"
    EVAL_ACCURACY = "eval/accuracy"
    EVAL_BIT_ERROR = "eval/bit_error"


_TAG_RE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)+$")
_NAME_RE = re.compile(r"[^A-Za-z0-9_.\-]+")


def run_name(env_id: str, experiment: str, seed: int, unix_time: int | None = None) -> str:
    """``<env>__<experiment>__<seed>__<unix-time>`` with path-unsafe characters replaced by ``-``."""
    t = int(time.time()) if unix_time is None else unix_time
    env = _NAME_RE.sub("-", env_id)
    exp = _NAME_RE.sub("-", experiment)
    return f"{env}__{exp}__{seed}__{t}"


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a (nested) dataclass or mapping into ``{"a.b": value}`` with JSON-friendly values."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        items = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    elif isinstance(config, Mapping):
        items = dict(config)
    else:
        raise ValueError(f"config must be a dataclass instance or a mapping, got {type(config).__name__}")
    flat: dict[str, Any] = {}
    for key, value in items.items():
        name = f"{prefix}{key}"
        if (dataclasses.is_dataclass(value) and not isinstance(value, type)) or isinstance(value, Mapping):
            flat.update(flatten_config(value, prefix=f"{name}."))
        elif value is None or isinstance(value, bool | int | float | str):
            flat[name] = value
        elif isinstance(value, list | tuple):
            flat[name] = str(list(value))
        else:
            flat[name] = str(value)
    return flat


def _hparam_value(v: Any) -> bool | int | float | str:
    return "None" if v is None else v


NOT_CODE = ("results", "docs", "*.md")
"""Tracked paths (git pathspecs) whose changes leave the code a run executes as committed."""


def source_commit(root: str | os.PathLike | None = None) -> str:
    """The git commit of this project's source (``<sha>``, ``<sha>+modified`` when tracked files
    of the code differ from it), or ``"unknown"`` outside a git checkout: recorded in each run's
    ``config.json`` so a result can be traced to its code. Changes under :data:`NOT_CODE`
    (results, pictures, prose) do not mark it: a benchmark that writes its scores into
    ``results/`` between two batches of runs is still running the commit's code. ``root``: the
    checkout (default: this project's)."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *(f":(exclude){p}" for p in NOT_CODE)],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}+modified" if dirty else sha


class RunLogger:
    """Owns one run's directory, TensorBoard writer and progress bar.

    Args:
      env_id: environment (or dataset / task) name, e.g. ``"ALE/Breakout-v5"``.
      experiment: experiment name, e.g. ``"dqn_atari"``.
      seed: the run's seed.
      config: the run's configuration (dataclass or mapping), written as a hyperparameter table
        (``add_text("hyperparameters")``), as HParams (``add_hparams`` into this run's own event
        file, so the HParams dashboard lists this run) and to ``config.json``.
      root: parent directory of run directories.
      total_steps: length of the progress bar (``None``: no total).
      progress: show a tqdm progress bar with step, SPS and the latest return / loss.
      metrics: scalar tags shown as metrics in TensorBoard's HParams dashboard.
      run_dir: reuse this directory (resuming); ``start_step`` then drops the events the
        interrupted run logged *after* that step (TensorBoard ``purge_step = start_step + 1``):
        points at the checkpoint's step stay, and the resumed run logs only later steps, so
        every tag has each step once.
      start_step: the global step the run starts (or resumes) from.
    """

    def __init__(
        self,
        env_id: str,
        experiment: str,
        seed: int,
        config: Any | None = None,
        root: str | os.PathLike = "runs",
        total_steps: int | None = None,
        progress: bool = True,
        metrics: tuple[str, ...] = (Tags.EPISODIC_RETURN,),
        run_dir: str | os.PathLike | None = None,
        start_step: int = 0,
    ) -> None:
        if start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        if run_dir is None:
            self.run_dir = Path(root) / run_name(env_id, experiment, seed)
            suffix = 1
            while self.run_dir.exists():  # two runs started in the same second
                self.run_dir = Path(root) / f"{run_name(env_id, experiment, seed)}-{suffix}"
                suffix += 1
        else:
            self.run_dir = Path(run_dir)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file in the way, no permission, read-only disk
            raise ValueError(f"cannot create the run directory {self.run_dir}: {e.strerror or e}") from None
        self._lock = lock_run_dir(self.run_dir)
        self.env_id, self.experiment, self.seed = env_id, experiment, seed
        self.writer = SummaryWriter(  # flushed every 5 s: TensorBoard follows the run closely
            log_dir=str(self.run_dir), purge_step=start_step + 1 if start_step > 0 else None, flush_secs=5
        )
        self.config = flatten_config(config) if config is not None else {}
        resumed = run_dir is not None and start_step > 0
        if not resumed:
            self._write_config(metrics)
        self._start_time = time.perf_counter()
        self._start_step = start_step
        self._last_step = start_step
        self._latest: dict[str, float] = {}
        self._bar = tqdm(
            total=total_steps,
            initial=start_step,
            unit="step",
            unit_scale=True,
            dynamic_ncols=True,
            mininterval=1.0,
            disable=not progress,
            desc=f"{experiment} {env_id} seed={seed}",
        )
        self._closed = False

    # ------------------------------------------------------------------ setup
    def _write_config(self, metrics: tuple[str, ...]) -> None:
        meta = {"env_id": self.env_id, "experiment": self.experiment, "seed": self.seed, "commit": source_commit()}
        with open(self.run_dir / "config.json", "w") as f:
            json.dump({**meta, "config": self.config}, f, indent=2, sort_keys=True)
        table = "\n".join(f"|{k}|{v}|" for k, v in sorted({**meta, **self.config}.items()))
        self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")
        hp = {k: _hparam_value(v) for k, v in {**meta, **self.config}.items()}
        # SummaryWriter.add_hparams would write these into a new sub-run (and log the metrics as
        # NaN points); in this run's own file the HParams dashboard lists the run itself.
        exp, ssi, sei = hparams_summary(hp, {m: float("nan") for m in metrics})
        for summary in (exp, ssi, sei):
            self.writer.file_writer.add_summary(summary)  # the writer's file, opened by add_text

    # ---------------------------------------------------------------- scalars
    def log_scalar(self, tag: str, value: float | torch.Tensor, step: int) -> None:
        """Log one scalar. ``tag`` must look like ``section/name``."""
        self.log_scalars({tag: value}, step)

    def log_scalars(self, scalars: Mapping[str, float | torch.Tensor], step: int) -> None:
        """Log several scalars at one step (``SummaryWriter.add_scalar`` for each)."""
        for tag, value in scalars.items():
            if not _TAG_RE.match(tag):
                raise ValueError(f"tag must look like 'section/name' (e.g. 'charts/SPS'), got {tag!r}")
            v = float(value.item()) if isinstance(value, torch.Tensor) else float(value)
            self.writer.add_scalar(tag, v, int(step))
            self._latest[tag] = v

    def log_episodes(self, step: int, returns: Any, lengths: Any) -> None:
        """Log finished episodes' raw returns and lengths (``charts/episodic_*``), one point each."""
        rets = torch.as_tensor(returns).flatten().tolist()
        lens = torch.as_tensor(lengths).flatten().tolist()
        if len(rets) != len(lens):
            raise ValueError(f"returns and lengths differ in length: {len(rets)} vs {len(lens)}")
        for r, n in zip(rets, lens, strict=True):
            self.log_scalars({Tags.EPISODIC_RETURN: r, Tags.EPISODIC_LENGTH: n}, step)

    def sps(self, step: int) -> float:
        """Steps per second since this logger started (or resumed)."""
        elapsed = time.perf_counter() - self._start_time
        return (step - self._start_step) / elapsed if elapsed > 0 else 0.0

    def log_sps(self, step: int) -> float:
        """Log ``charts/SPS`` at ``step`` and return it."""
        sps = self.sps(step)
        self.log_scalar(Tags.SPS, int(sps), step)
        return sps

    def progress(self, step: int) -> None:
        """Advance the progress bar to ``step``, showing SPS and the latest return and loss."""
        if step > self._last_step:
            self._bar.update(step - self._last_step)
            self._last_step = step
        post: dict[str, str] = {"SPS": f"{self.sps(step):.0f}"}
        for tag, label in ((Tags.EPISODIC_RETURN, "return"), (Tags.EVAL_RETURN, "eval")):
            if tag in self._latest:
                post[label] = f"{self._latest[tag]:.1f}"
        for tag, value in self._latest.items():
            if tag.startswith(("losses/", "train/loss")) and tag.endswith("loss") and math.isfinite(value):
                post["loss"] = f"{value:.4g}"
                break
        self._bar.set_postfix(post, refresh=False)

    # ----------------------------------------------------------- checkpoints
    def checkpoint_path(self, name: str = "checkpoint.pt") -> Path:
        """Path of a checkpoint file inside the run directory."""
        return self.run_dir / name

    # ------------------------------------------------------------------ close
    def close(self) -> None:
        """Flush and close the writer and the progress bar (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._bar.close()
        self.writer.flush()
        self.writer.close()
        self._lock.close()  # releases the run directory

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lock_run_dir(run_dir: Path) -> Any:
    """Take ``run_dir``'s lock (an OS file lock on ``run_dir/.lock``, released when the returned
    file is closed or the process ends, however it ends); ``ValueError`` naming the holder's pid
    when another process holds it, so two processes never write one run."""
    f = open(run_dir / ".lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise ValueError(f"{run_dir} is in use by another process (pid {holder}); wait for it to finish or stop "
                         "it, then run this again") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically; returns the path.

    The state is serialised to a temporary file in the same directory, flushed to disk and
    renamed over ``path``: readers see either the old checkpoint or the new one, never a partial
    file. Keep ``state`` to tensors and plain Python containers/scalars so that
    :func:`load_checkpoint` (``weights_only=True``) can read it. A full disk raises ``OSError``
    (``ENOSPC``) whose message names the file and says the previous one is intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if _disk_full(e, path.parent):
            kept = f"the previous checkpoint {path} is intact" if path.exists() else "no earlier checkpoint exists"
            raise OSError(errno.ENOSPC, f"no space left on device while writing {path}; {kept}") from None
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def _disk_full(error: BaseException, directory: Path) -> bool:
    """Whether a failed write ran out of space (torch.save reports it as a RuntimeError about
    an "unexpected pos" of its zip writer, not as ENOSPC)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(error, RuntimeError):
        try:
            return shutil.disk_usage(directory).free < 1 << 20
        except OSError:
            return False
    return False


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    ``FileNotFoundError`` for a missing file; ``ValueError`` (one line, naming the file) for one
    that is truncated, not a checkpoint, or would need to run code to load.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "checkpoint not found", str(path))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, truncated files, disallowed globals
        text = str(e).strip().splitlines()
        reason = text[0] if text else type(e).__name__
        raise ValueError(f"cannot load checkpoint {path} (truncated, or not a checkpoint of this project?): "
                         f"{reason}") from e
