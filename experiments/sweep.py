"""Run a grid of RL experiments (configurations x env ids x seeds) as Ray Tune trials, on this
machine or on a Ray cluster, with every run's files gathered in one storage location.

    python -m experiments.sweep --experiment ppo --env-ids CartPole-v1 Acrobot-v1 --seeds 1 2 3 \\
        --configs "total-steps=50000" --storage runs/ppo-sweep
    python -m experiments.sweep --experiment dqn --env-ids CartPole-v1 --seeds 1 2 3 4 5 \\
        --configs double no-double --storage runs/double                # a 2-configuration grid
    python -m experiments.sweep ... --ray-address auto --storage s3://bucket/sweeps/ppo   # a cluster
    python -m experiments.compare runs/ppo-sweep --out runs/ppo-sweep/report

Each trial runs ``python -m experiments.<experiment> --env-id E --seed S <configuration flags>``
(a configuration ``"total-steps=50000 double"`` gives ``--total-steps 50000 --double``) as a
subprocess in a scratch folder of the node it lands on, with ``--cpus-per-run`` threads. A
subprocess, not the train function in the trial's thread, because the experiments' Ctrl-C
handling, checkpoints and exact ``--resume`` are what a single run already uses (tested once, in
one place), and signals can only be handled in a process's main thread.

Each time the run writes a checkpoint (and when it ends) the trial reports a Tune checkpoint: a
snapshot of the run's folder (event files cut at their last whole record, ``config.json``,
``checkpoint.pt`` and its replay, and the run's output as ``run.log``). Tune copies it to
``--storage`` (a local or shared path, or a URI of any filesystem ``pyarrow.fs`` supports), so
nothing depends on the workers sharing a filesystem with the driver, and ``experiments.compare
<storage>`` reads the runs there. Trials report their evaluation returns as they go.

Re-running the same command (or ``--resume``) restores the experiment with ``Tuner.restore``:
finished trials are not re-run, interrupted or failed ones resume from their last checkpoint. A
trial that crashes is retried ``--max-failures`` times from its last checkpoint. Ctrl-C (or
SIGTERM) stops the sweep cleanly: every running trial's run checkpoints, the checkpoint reaches
storage, and the sweep prints how to resume (exit status 130 / 143). On a remote cluster
(``--ray-address HOST:PORT`` or ``auto``) the project's code goes with the job (Ray's
``runtime_env`` working directory); the nodes need only the installed dependencies.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from experiments.common import parse_and_run
from experiments.compare import whole_records_length
from foundations.interrupts import Interrupted, StopRequests
from foundations.runlog import lock_run_dir, run_name

EXPERIMENTS = ("dqn", "dqn_atari", "pqn", "ppo", "ppo_atari", "a2c", "reinforce", "memory_task")
"""Sweepable experiments: they share the run options (--seed, --runs-dir, --resume, --threads,
--no-progress); the RL ones take the env as --env-id, memory_task takes it as --task."""

ENV_FLAG = {"memory_task": "--task"}
"""The flag that names a run's env, where it is not --env-id."""

INSTALL = "pip install -e '.[cluster]'  (Ray Tune)"
EVAL_TAG = "eval/episodic_return"
POLL_S = 0.5
"""how often a trial looks at its run (checkpoint, evaluations, stop request)."""
NAMESPACE = "deep-rl-sandbox-sweep"
REPO = Path(__file__).resolve().parent.parent
SHIPPED_EXCLUDES = [".git", ".venv", "runs", "results", "docs", "data", "*.pt", "__pycache__", ".pytest_cache",
                    ".ruff_cache"]
"""left out of the code shipped to a remote cluster (runtime_env working directory)."""


@dataclasses.dataclass(frozen=True)
class SweepArgs:
    """Options of the sweep."""

    experiment: Literal["dqn", "dqn_atari", "pqn", "ppo", "ppo_atari", "a2c", "reinforce", "memory_task"] = "ppo"
    env_ids: tuple[str, ...] = ("CartPole-v1",)
    """env ids (memory_task: task names, e.g. copy)."""
    seeds: tuple[int, ...] = (1, 2, 3)
    configs: tuple[str, ...] = ("",)
    """configurations, each a space-separated list of the experiment's flags without their dashes:
    "total-steps=50000 double" means --total-steps 50000 --double."""
    storage: str = "runs/sweep"
    """where the runs' files and Tune's experiment state go: a local or shared path, or a URI
    (s3://bucket/path, gs://..., any pyarrow.fs filesystem)."""
    resume: bool = False
    """restore the sweep at --storage (the same command without --resume does too when one is
    there; --resume makes it an error when none is)."""
    workers: int | None = None
    """trials at a time (default: as many as the CPUs and GPUs allow)."""
    cpus_per_run: int = 1
    """CPUs per trial (also the run's thread count)."""
    gpus_per_run: float = 0.0
    """GPUs per trial; fractions share a GPU (0.25: four runs on one)."""
    max_failures: int = 2
    """retries of a crashing trial, each from its last checkpoint."""
    ray_address: str | None = None
    """a running Ray cluster (auto, HOST:PORT); default: a new Ray instance on this machine."""
    ray_num_cpus: int | None = None
    """CPUs of the local Ray instance (default: all)."""
    scratch_dir: str | None = None
    """where a trial's run works before its files go to storage (default: the node's temp folder)."""
    quiet: bool = False
    """print only the final table."""

    def __post_init__(self) -> None:
        if not self.env_ids or not self.seeds or not self.configs:
            raise ValueError("a sweep needs at least one env id, one seed and one configuration")
        if self.cpus_per_run < 1:
            raise ValueError(f"--cpus-per-run must be >= 1, got {self.cpus_per_run}")
        if self.gpus_per_run < 0:
            raise ValueError(f"--gpus-per-run must be >= 0, got {self.gpus_per_run}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.max_failures < 0:
            raise ValueError(f"--max-failures must be >= 0, got {self.max_failures}")
        for config in self.configs:
            for flag in ("--env-id", "--task", "--seed", "--runs-dir", "--resume", "--threads"):
                if flag in config_flags(config):
                    raise ValueError(f"configuration {config!r} sets {flag}, which the sweep sets itself")


def config_flags(config: str) -> list[str]:
    """``"total-steps=300 double"`` -> ``["--total-steps", "300", "--double"]``; a configuration
    written as flags already (``"--total-steps 300 --double"``) passes through unchanged."""
    tokens = shlex.split(config)
    if any(t.startswith("-") for t in tokens):
        return tokens
    flags: list[str] = []
    for token in tokens:
        if "=" in token:
            name, value = token.split("=", 1)
            flags += [f"--{name}", value]
        else:
            flags.append(f"--{token}")
    return flags


def plan(args: SweepArgs) -> list[dict[str, Any]]:
    """The grid's runs, in a stable order (configuration, env, seed); each run's ``key``
    (``cfg0__CartPole-v1__ppo__1``) names its trial."""
    return [
        {"key": f"cfg{c}__{run_name(env, args.experiment, seed, 0).rsplit('__', 1)[0]}", "experiment": args.experiment,
         "env_id": env, "seed": seed, "config_index": c, "config": config}
        for c, config in enumerate(args.configs)
        for env in args.env_ids
        for seed in args.seeds
    ]


# ------------------------------------------------------------------------------------ the trial
def command(run: dict[str, Any], runs_dir: Path, checkpoint: Path | None, threads: int) -> list[str]:
    """The run's command line: a fresh start in ``runs_dir``, or ``--resume`` from ``checkpoint``."""
    head = [sys.executable, "-m", f"experiments.{run['experiment']}"]
    if checkpoint is not None:
        return [*head, "--resume", str(checkpoint), "--no-progress", "--threads", str(threads)]
    env_flag = ENV_FLAG.get(run["experiment"], "--env-id")
    return [*head, env_flag, run["env_id"], "--seed", str(run["seed"]), "--runs-dir", str(runs_dir),
            "--no-progress", "--threads", str(threads), *config_flags(run["config"])]  # fmt: skip


def code_root() -> Path:
    """Where this node's copy of the project is: the folder Ray unpacked the job's code into on a
    cluster, this checkout locally. Looked up when called, not at import: Tune ships the trial
    function by value, with the driver's module globals."""
    import experiments

    return Path(experiments.__file__).resolve().parent.parent


def _child_env(threads: int, code: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = str(code) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _child_signals() -> None:
    """In the child before exec: undo the Ray worker's signal settings (its threads block and
    ignore SIGINT / SIGTERM, and both the mask and the ignoring survive exec), and SIGTERM the
    child when the trial's process dies, however it dies."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def snapshot(scratch: Path, run_dir: Path | None, out: Path) -> Path:
    """A consistent copy of the run for a Tune checkpoint: ``out/run.log`` and ``out/<run name>/``.

    Event files are cut at their last whole record (the writer may be mid-record); checkpoints
    and replays are hard links (the run replaces them atomically, never rewrites them in place);
    the run's lock and temporary files stay behind. Files that vanish meanwhile (an old replay
    the run just deleted) are skipped.
    """
    out.mkdir(parents=True)
    if (scratch / "run.log").is_file():
        shutil.copy2(scratch / "run.log", out / "run.log")
    if run_dir is None:
        return out
    dest = out / run_dir.name
    dest.mkdir()
    for src in sorted(run_dir.iterdir()):
        try:
            if src.name.startswith("."):
                continue
            if src.is_dir():
                shutil.copytree(src, dest / src.name)
            elif src.name.startswith("events.out.tfevents."):
                raw = src.read_bytes()
                (dest / src.name).write_bytes(raw[:whole_records_length(raw)])
            elif src.suffix == ".pt":
                try:
                    os.link(src, dest / src.name)
                except OSError:  # another filesystem: copy
                    shutil.copy2(src, dest / src.name)
            else:
                shutil.copy2(src, dest / src.name)
        except FileNotFoundError:
            continue
    return out


def _run_folder(runs: Path) -> Path | None:
    folders = [p for p in runs.iterdir() if p.is_dir()] if runs.is_dir() else []
    return folders[0] if len(folders) == 1 else None


def _restore(checkpoint: Any, scratch: Path, runs: Path) -> Path | None:
    """Copy a Tune checkpoint back into ``scratch``; returns the run's ``checkpoint.pt`` (or
    ``None`` when the run had not checkpointed yet: it starts over, its log kept)."""
    with checkpoint.as_directory() as d:
        saved = Path(d)
        if (saved / "run.log").is_file():
            shutil.copy2(saved / "run.log", scratch / "run.log")
        folder = _run_folder(saved)
        if folder is None or not (folder / "checkpoint.pt").is_file():
            return None
        shutil.copytree(folder, runs / folder.name)
    return runs / folder.name / "checkpoint.pt"


class _Evaluations:
    """The run's evaluation points (``eval/episodic_return``), read as its event files grow."""

    def __init__(self) -> None:
        self.acc: Any = None
        self.seen = 0

    def new(self, run_dir: Path | None) -> list[tuple[int, float]]:
        if run_dir is None:
            return []
        if self.acc is None:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

            self.acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        self.acc.Reload()
        if EVAL_TAG not in self.acc.Tags().get("scalars", []):
            return []
        points = [(int(e.step), float(e.value)) for e in self.acc.Scalars(EVAL_TAG)]
        fresh, self.seen = points[self.seen:], len(points)
        return fresh


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        s = path.stat()
    except FileNotFoundError:
        return None
    return s.st_ino, s.st_mtime_ns


class _Trial:
    """One run of the grid inside a Tune trial: start or resume it, watch it, report it."""

    def __init__(self, config: dict[str, Any]) -> None:
        import ray

        self.run, self.threads, self.code = config["run"], int(config["threads"]), code_root()
        self.flag = ray.get_actor(config["stop_actor"], namespace=NAMESPACE)  # experiments.sweep_stop.StopFlag
        if config["scratch_dir"]:
            Path(config["scratch_dir"]).mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix=self.run["key"] + "-", dir=config["scratch_dir"]))
        self.runs = self.scratch / "runs"
        self.runs.mkdir()
        self.metrics: dict[str, Any] = {"step": 0, "finished": False, "interrupted": False}
        self.evaluations = _Evaluations()

    def stop_requested(self) -> bool:
        import ray

        try:
            return bool(ray.get(self.flag.requested.remote(), timeout=30))
        except Exception:  # the driver is gone: stop too
            return True

    def report(self, with_checkpoint: bool) -> None:
        from ray import tune

        if not with_checkpoint:
            tune.report(dict(self.metrics))
            return
        out = snapshot(self.scratch, _run_folder(self.runs), self.scratch / f"snapshot-{time.monotonic_ns()}")
        tune.report(dict(self.metrics), checkpoint=tune.Checkpoint.from_directory(str(out)))
        shutil.rmtree(out, ignore_errors=True)

    def read_evaluations(self) -> bool:
        fresh = self.evaluations.new(_run_folder(self.runs))
        if fresh:
            self.metrics["step"], self.metrics["eval_return"] = fresh[-1]
        return bool(fresh)

    def wait_to_be_stopped(self) -> None:
        """Storage holds the run now; the driver ends this trial's actor once every trial is there."""
        shutil.rmtree(self.scratch, ignore_errors=True)
        while True:
            time.sleep(1.0)

    def start(self) -> tuple[subprocess.Popen, tuple[int, int] | None]:
        """The run's process (resumed from the trial's Tune checkpoint when it has one) and the
        stamp of the checkpoint it started from."""
        from ray import tune

        restored = tune.get_checkpoint()
        resume = _restore(restored, self.scratch, self.runs) if restored is not None else None
        if resume is None:
            for leftover in self.runs.iterdir():  # a run that never checkpointed starts over
                shutil.rmtree(leftover)
        cmd = command(self.run, self.runs, resume, self.threads)
        with open(self.scratch / "run.log", "a") as log:
            log.write(f"# on {socket.gethostname()}, code from {self.code}\n$ {shlex.join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_child_env(self.threads, self.code),
                                    cwd=self.scratch, preexec_fn=_child_signals)  # fmt: skip
        return proc, (_stat(resume) if resume is not None else None)

    def watch(self, proc: subprocess.Popen, last_checkpoint: tuple[int, int] | None) -> tuple[int, bool]:
        """Report each new checkpoint (with the run's files) and each new evaluation until the run
        ends; pass a stop request on as SIGINT. Returns the exit status and whether we asked."""
        asked, next_look = False, 0.0
        while (rc := proc.poll()) is None:
            if not asked and time.monotonic() >= next_look:
                next_look = time.monotonic() + 1.0
                if self.stop_requested():
                    proc.send_signal(signal.SIGINT)  # the run checkpoints and exits 130
                    asked = True
            fresh = self.read_evaluations()
            run_dir = _run_folder(self.runs)
            stamp = _stat(run_dir / "checkpoint.pt") if run_dir is not None else None
            if stamp is not None and stamp != last_checkpoint:
                last_checkpoint = stamp
                self.report(with_checkpoint=True)
            elif fresh:
                self.report(with_checkpoint=False)
            time.sleep(POLL_S)
        return rc, asked

    def finish(self, rc: int, asked: bool) -> None:
        """Done: the final report. Stopped: report the checkpoint and wait. Crashed: report what
        the retry resumes from (and the log), then fail the trial."""
        self.read_evaluations()
        if rc == 0:
            self.metrics["finished"] = True
            self.report(with_checkpoint=True)
            shutil.rmtree(self.scratch, ignore_errors=True)
            return
        if not asked and rc in (130, 143):  # a signal from the terminal: the driver's request follows
            deadline = time.monotonic() + 30.0
            while not (asked := self.stop_requested()) and time.monotonic() < deadline:
                time.sleep(POLL_S)
        if asked:
            folder = _run_folder(self.runs)
            has = folder is not None and (folder / "checkpoint.pt").is_file()
            self.metrics.update(interrupted=True, has_checkpoint=has)
            self.report(with_checkpoint=has)
            self.wait_to_be_stopped()
        self.report(with_checkpoint=True)
        tail = (self.scratch / "run.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{self.run['key']}: the run exited with status {rc}; the end of its log: " + " | ".join(tail))


def trial(config: dict[str, Any]) -> None:
    """Tune's function trainable: one run of the grid (see the module docstring)."""
    from ray import tune

    t = _Trial(config)
    if t.stop_requested():  # started after Ctrl-C: nothing to checkpoint
        t.metrics.update(interrupted=True, has_checkpoint=False)
        tune.report(dict(t.metrics))
        t.wait_to_be_stopped()
    proc, stamp = t.start()
    t.finish(*t.watch(proc, stamp))


# ----------------------------------------------------------------------------------- the driver
def storage_location(storage: str) -> tuple[str, str, Any]:
    """``(storage_path, name, filesystem)`` for Tune from ``--storage`` (the experiment folder):
    a local path becomes absolute; a URI needs its pyarrow filesystem, checked here."""
    if "://" not in storage:
        path = Path(storage).expanduser().resolve()
        return str(path.parent), path.name, None
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(storage)
    except Exception as e:  # ArrowInvalid / ArrowNotImplementedError / import errors of fsspec shims
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"--storage {storage}: no filesystem for it here ({reason}); give a local or shared path, "
                         "or a URI whose filesystem pyarrow.fs has (s3://, gs://, hdfs://, file://)") from None
    parent, _, name = path.rstrip("/").rpartition("/")
    if not name:
        raise ValueError(f"--storage {storage}: give a folder inside the bucket or filesystem, e.g. {storage.rstrip('/')}/my-sweep")
    return parent, name, filesystem


def runtime_env() -> dict[str, Any]:
    """The code of this checkout, shipped to a remote cluster's workers."""
    return {"working_dir": str(REPO), "excludes": SHIPPED_EXCLUDES}


def _unreachable(address: str) -> str | None:
    """Why a ``HOST:PORT`` address (or the one ``auto`` stands for: ``RAY_ADDRESS``, else the
    cluster Ray last recorded in ``/tmp/ray/ray_current_cluster``) cannot be reached, or ``None``
    (reachable, ``ray://``, or ``auto`` with nothing recorded, which Ray reports itself)."""
    if address == "auto":
        recorded = Path("/tmp/ray/ray_current_cluster")
        address = os.environ.get("RAY_ADDRESS") or (recorded.read_text().strip() if recorded.is_file() else "")
        if not address or address == "auto":
            return None
    if "://" in address or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5.0).close()
    except ValueError:
        return f"port {port!r} is not a number"
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def connect(args: SweepArgs) -> None:
    """``ray.init``: a new local instance, or the cluster at ``--ray-address`` with this code
    shipped; fails in one line when the cluster cannot be reached or lacks the GPUs asked for."""
    import ray

    refused = _unreachable(args.ray_address) if args.ray_address is not None else None
    if refused is not None:  # Ray itself would retry for minutes
        raise ValueError(f"cannot reach a Ray cluster at --ray-address {args.ray_address} ({refused}); start one with "
                         "'ray start --head' (then --ray-address auto), or leave --ray-address out to run on a new "
                         "Ray instance on this machine")
    if args.ray_address is None:
        # address="local": a new instance of our own, even when another sweep runs one on this machine
        ray.init(address="local", num_cpus=args.ray_num_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    else:
        try:
            ray.init(address=args.ray_address, runtime_env=runtime_env(), log_to_driver=False, logging_level="ERROR")
        except Exception as e:  # no cluster there: ConnectionError, or Ray's own errors
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"cannot reach a Ray cluster at --ray-address {args.ray_address} ({reason}); start one "
                             "with 'ray start --head' (then --ray-address auto), or leave --ray-address out to run on "
                             "a new Ray instance on this machine") from None
    resources = ray.cluster_resources()
    if args.gpus_per_run > 0 and resources.get("GPU", 0) < args.gpus_per_run:
        ray.shutdown()
        raise ValueError(f"--gpus-per-run {args.gpus_per_run}: the Ray cluster has {resources.get('GPU', 0):g} GPU(s); "
                         "drop --gpus-per-run or connect to a cluster with GPUs (--ray-address)")
    if resources.get("CPU", 0) < args.cpus_per_run:
        ray.shutdown()
        raise ValueError(f"--cpus-per-run {args.cpus_per_run}: the Ray cluster has {resources.get('CPU', 0):g} CPU(s)")


@dataclasses.dataclass
class TrialRow:
    """One line of the final table."""

    key: str
    env_id: str
    seed: int
    config: str
    status: str  # done | interrupted | failed | pending
    eval_return: float | None
    files: str  # the run's folder in storage (or the checkpoint holding run.log)


def rows_of(results: Any, planned: Sequence[dict[str, Any]]) -> list[TrialRow]:
    """The table's rows from Tune's ``ResultGrid``, in the grid's order."""
    by_key, planned_by_key = {}, {r["key"]: r for r in planned}
    for result in results:
        run, metrics = planned_by_key[Path(result.path).name], result.metrics or {}
        if result.error is not None:
            status = "failed"
        elif metrics.get("finished"):
            status = "done"
        elif metrics:
            status = "interrupted"
        else:
            status = "pending"
        files = f"{result.path}/error.txt" if status == "failed" else ""
        if result.checkpoint is not None:
            files = result.checkpoint.path
            if status != "failed":
                inner = [p for p in Path(files).iterdir() if p.is_dir()] if Path(files).is_dir() else []
                files = str(inner[0]) if len(inner) == 1 else files
            else:
                files = f"{files}/run.log"
        by_key[run["key"]] = TrialRow(run["key"], run["env_id"], run["seed"], run["config"], status,
                                      metrics.get("eval_return"), files)
    return [by_key[r["key"]] for r in planned if r["key"] in by_key]


def table(rows: Sequence[TrialRow]) -> str:
    lines = [f"{'run':<44} {'env':<22} {'seed':>4}  {'status':<11} {'final eval':>10}  config / files"]
    for r in rows:
        ret = "" if r.eval_return is None else f"{r.eval_return:.1f}"
        lines.append(f"{r.key:<44} {r.env_id:<22} {r.seed:>4}  {r.status:<11} {ret:>10}  {r.config or '(defaults)'}")
        if r.files:
            lines.append(f"{'':<44} {r.files}")
    counts = {s: sum(r.status == s for r in rows) for s in ("done", "interrupted", "failed", "pending")}
    return "\n".join(lines) + "\n" + ", ".join(f"{n} {s}" for s, n in counts.items())


def run(args: SweepArgs, planned: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run (or restore and finish) the grid; returns the rows, the storage folder and the signal
    that stopped the sweep (``None`` when it ran to the end).

    ``planned``: the runs to make instead of ``args``' grid (each as :func:`plan` makes them,
    with its own ``experiment``, ``env_id``, ``seed``, ``config`` and a unique ``key``), for a
    caller such as ``benchmarks.learning`` that runs several experiments in one sweep."""
    try:
        import ray.tune  # noqa: F401  (only: is it installed?)
    except ImportError:
        raise ValueError(f"experiments.sweep runs on Ray Tune, which is not installed: {INSTALL}") from None
    storage_path, name, filesystem = storage_location(args.storage)
    experiment = f"{storage_path.rstrip('/')}/{name}"
    planned = plan(args) if planned is None else list(planned)
    if len({r["key"] for r in planned}) != len(planned):
        raise ValueError("the planned runs' keys must be unique")
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # only result.json: no Tune event files beside the runs'
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # verbose=0 then prints nothing; the table below says it all
    os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"  # a run checkpoints when it likes
    # Two sweeps on one local storage would run every trial twice into the same folders (each
    # trial then holds two runs); the second is refused while the first holds the folder's lock.
    lock = None
    if filesystem is None:
        Path(experiment).mkdir(parents=True, exist_ok=True)
        lock = lock_run_dir(Path(experiment))
    try:
        return _run_locked(args, planned, experiment, storage_path, name, filesystem)
    finally:
        if lock is not None:
            lock.close()


def _run_locked(args: SweepArgs, planned: list[dict[str, Any]], experiment: str, storage_path: str, name: str,
                filesystem: Any) -> dict[str, Any]:
    """:func:`run` once the storage is this process's."""
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    connect(args)
    from experiments import sweep_stop

    requests = StopRequests()
    try:
        flag = sweep_stop.StopFlag.options(name=f"stop:{experiment}", namespace=NAMESPACE).remote()
        sweep_stop.ACTIVE = sweep_stop.Stopping(requests, flag, quiet=args.quiet)
        trainable = tune.with_resources(trial, {"cpu": args.cpus_per_run, "gpu": args.gpus_per_run})
        run_config = tune.RunConfig(
            name=name, storage_path=storage_path, storage_filesystem=filesystem, verbose=0,
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1), callbacks=[sweep_stop.Driver(), JsonLoggerCallback()],
        )
        restoring = tune.Tuner.can_restore(experiment, storage_filesystem=filesystem)
        if args.resume and not restoring:
            raise ValueError(f"--resume: no sweep to restore at {args.storage}; drop --resume to start one there")
        if restoring:
            tuner = tune.Tuner.restore(experiment, trainable, resume_unfinished=True, resume_errored=True,
                                       storage_filesystem=filesystem)
            saved = sorted(Path(r.path).name for r in tuner.get_results())  # trial folders are named by key
            if saved != sorted(r["key"] for r in planned):
                raise ValueError(f"{args.storage} holds a sweep of other runs ({len(saved)}: {', '.join(saved[:3])}...); "
                                 "give the same grid to resume it, or another --storage")
            if not args.quiet:
                print(f"sweep: restoring {experiment} (finished runs are not run again)", flush=True)
        else:
            grid = {"run": tune.grid_search(planned), "threads": args.cpus_per_run, "scratch_dir": args.scratch_dir,
                    "stop_actor": f"stop:{experiment}"}
            tuner = tune.Tuner(trainable, param_space=grid, run_config=run_config,
                               tune_config=tune.TuneConfig(max_concurrent_trials=args.workers, reuse_actors=True,
                                                           trial_name_creator=_trial_name,
                                                           trial_dirname_creator=_trial_name))
        previous = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours checkpoints the trials first
        try:
            with requests:
                results = tuner.fit()
        finally:
            if previous is None:
                os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
            else:
                os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous
        rows = rows_of(results, planned)
    finally:
        sweep_stop.ACTIVE = None
        ray.shutdown()
    print(table(rows), flush=True)
    if requests.requested:
        print(f"sweep stopped by {signal.Signals(requests.signal).name}; the trials' checkpoints are in {args.storage}; "  # type: ignore[arg-type]
              "resume with the same command (or add --resume)", file=sys.stderr, flush=True)
    return {"rows": rows, "storage": experiment, "stopped": requests.signal}


def _trial_name(trial: Any) -> str:
    return str(trial.config["run"]["key"])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    try:
        _, r = parse_and_run(SweepArgs, run, argv, __doc__)
    except Interrupted as e:  # a second Ctrl-C: Tune ended the trials at once
        print(f"sweep: stopped at once by a second {signal.Signals(e.signum).name}; running trials resume from "
              "their last checkpoint in storage with the same command", file=sys.stderr)
        raise SystemExit(128 + e.signum) from None
    if r["stopped"] is not None:
        raise SystemExit(128 + r["stopped"])
    failed = [row for row in r["rows"] if row.status != "done"]
    if failed:
        print(f"{len(failed)} run(s) did not finish: " + "; ".join(f"{row.key} {row.status}"
              + (f" (log: {row.files})" if row.status == "failed" else "") for row in failed), file=sys.stderr)
        raise SystemExit(1)
    return r


if __name__ == "__main__":
    main()
