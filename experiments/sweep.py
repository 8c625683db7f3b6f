"""Run a grid of RL experiments (envs x seeds x configurations) as separate runs, locally in
parallel or on a Ray cluster, and pick up where an interrupted sweep stopped.

    python -m experiments.sweep --experiment ppo --env-ids CartPole-v1 Acrobot-v1 --seeds 1 2 3 \\
        --configs "total-steps=50000" --runs-dir runs/ppo-sweep
    python -m experiments.sweep --experiment dqn --env-ids CartPole-v1 --seeds 1 2 3 4 5 \\
        --configs double no-double --runs-dir runs/double              # a 2-configuration grid
    python -m experiments.sweep ... --ray-address auto                 # on a running Ray cluster
    python -m experiments.compare runs/ppo-sweep --out runs/ppo-sweep/report

Each run is ``python -m experiments.<experiment> --env-id E --seed S <configuration flags>``
(a configuration ``"total-steps=50000 double"`` gives ``--total-steps 50000 --double``)
writing into ``<runs-dir>/cfg<i>/``; its output goes to ``<runs-dir>/logs/``. The sweep keeps
``<runs-dir>/sweep.json`` (one entry per run: command, status, run directory), rewritten
atomically at every change and printed as a table. Running the same command again skips runs
that finished, resumes interrupted ones from their latest checkpoint (``--resume``) and
starts the others. Locally, ``--workers`` runs at a time (default: CPU cores / ``--cpus-per-run``),
each limited to ``--cpus-per-run`` threads. With ``--ray-address`` (``auto``, ``HOST:PORT`` or
``local`` for a fresh single-machine instance) each run is one Ray task asking for
``--cpus-per-run`` CPUs and ``--gpus-per-run`` GPUs; the cluster's nodes must share the
runs directory (NFS or similar) and have this project installed (``pip install .[cluster]``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Literal

from experiments.common import parse_and_run
from foundations.interrupts import Interrupted, StopRequests
from foundations.runlog import load_checkpoint, run_name

EXPERIMENTS = ("dqn", "dqn_atari", "ppo", "ppo_atari", "a2c", "reinforce")
"""Sweepable experiments: they share the run options (--env-id, --seed, --runs-dir, --resume)."""


@dataclasses.dataclass(frozen=True)
class SweepArgs:
    """Options of the sweep runner."""

    experiment: Literal["dqn", "dqn_atari", "ppo", "ppo_atari", "a2c", "reinforce"] = "ppo"
    env_ids: tuple[str, ...] = ("CartPole-v1",)
    seeds: tuple[int, ...] = (1, 2, 3)
    configs: tuple[str, ...] = ("",)
    """configurations, each a space-separated list of the experiment's flags without their dashes:
    "total-steps=50000 double" means --total-steps 50000 --double."""
    runs_dir: str = "runs/sweep"
    workers: int | None = None
    """runs at a time on this machine (default: CPU cores // cpus-per-run)."""
    cpus_per_run: int = 1
    gpus_per_run: float = 0.0
    ray_address: str | None = None
    """run on Ray: auto (a running cluster), HOST:PORT, or local (a new instance on this machine)."""
    ray_num_cpus: int | None = None
    """CPUs of a --ray-address local instance (default: all)."""
    quiet: bool = False
    """print only the final table."""

    def __post_init__(self) -> None:
        if not self.env_ids or not self.seeds or not self.configs:
            raise ValueError("a sweep needs at least one env id, one seed and one configuration")
        if self.cpus_per_run < 1:
            raise ValueError(f"cpus_per_run must be >= 1, got {self.cpus_per_run}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        for config in self.configs:
            for flag in ("--env-id", "--seed", "--runs-dir", "--resume", "--threads"):
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


@dataclasses.dataclass
class RunSpec:
    key: str
    env_id: str
    seed: int
    config_index: int
    config: str
    status: str = "pending"  # pending | running | done | interrupted | failed
    returncode: int | None = None
    run_dir: str | None = None
    attempts: int = 0


def plan(args: SweepArgs) -> list[RunSpec]:
    """The grid, in a stable order: configuration, env, seed."""
    return [
        RunSpec(f"cfg{c}/{run_name(env, args.experiment, seed, 0).rsplit('__', 1)[0]}", env, seed, c, config)
        for c, config in enumerate(args.configs)
        for env in args.env_ids
        for seed in args.seeds
    ]


class Manifest:
    """``sweep.json``: the runs and their status, rewritten atomically under a lock."""

    def __init__(self, root: Path, args: SweepArgs) -> None:
        self.path = root / "sweep.json"
        self.lock = threading.Lock()
        self.runs = {r.key: r for r in plan(args)}
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("experiment") != args.experiment:
                raise ValueError(f"{self.path} belongs to a {saved.get('experiment')!r} sweep, not {args.experiment!r}")
            for entry in saved["runs"]:
                if entry["key"] in self.runs and entry["config"] == self.runs[entry["key"]].config:
                    self.runs[entry["key"]] = RunSpec(**entry)
        self.experiment = args.experiment

    def save(self) -> None:
        data = {"experiment": self.experiment, "runs": [dataclasses.asdict(r) for r in self.runs.values()]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".sweep.", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.path)

    def update(self, key: str, **changes: Any) -> None:
        with self.lock:
            for name, value in changes.items():
                setattr(self.runs[key], name, value)
            self.save()

    def table(self) -> str:
        rows = [f"{'run':<58} {'status':<8} {'rc':>4}  run directory"]
        for r in self.runs.values():
            rc = "" if r.returncode is None else str(r.returncode)
            rows.append(f"{r.key:<58} {r.status:<8} {rc:>4}  {r.run_dir or ''}")
        counts = {s: sum(r.status == s for r in self.runs.values())
                  for s in ("done", "running", "interrupted", "pending", "failed")}
        return "\n".join(rows) + "\n" + ", ".join(f"{n} {s}" for s, n in counts.items())


def _run_dirs(parent: Path, spec: RunSpec, experiment: str) -> list[Path]:
    prefix = run_name(spec.env_id, experiment, spec.seed, 0).rsplit("__", 1)[0] + "__"
    if not parent.is_dir():
        return []
    return sorted((p for p in parent.iterdir() if p.is_dir() and p.name.startswith(prefix)), key=lambda p: p.stat().st_mtime)


def command(args: SweepArgs, spec: RunSpec, root: Path) -> list[str]:
    """The run's command line: a fresh start, or ``--resume`` from the newest checkpoint of an
    earlier attempt."""
    parent = root / f"cfg{spec.config_index}"
    for previous in reversed(_run_dirs(parent, spec, args.experiment)):
        if (previous / "checkpoint.pt").is_file():
            return [sys.executable, "-m", f"experiments.{args.experiment}", "--resume", str(previous / "checkpoint.pt"),
                    "--no-progress", "--threads", str(args.cpus_per_run)]  # fmt: skip
    return [sys.executable, "-m", f"experiments.{args.experiment}", "--env-id", spec.env_id, "--seed", str(spec.seed),
            "--runs-dir", str(parent), "--no-progress", "--threads", str(args.cpus_per_run),
            *config_flags(spec.config)]  # fmt: skip


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


_PR_SET_PDEATHSIG = 1
try:  # resolved before any fork: the child only makes the call
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the sweep dies, however it dies (no orphans)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def execute(cmd: list[str], log_path: str, threads: int, cwd: str,
            running: set[subprocess.Popen] | None = None) -> int:
    """Run one command with its output appended to ``log_path``; returns the exit status.

    The child stays in the sweep's process group (a terminal's Ctrl-C reaches it too) and gets
    SIGTERM if the sweep process dies. ``running``: a set the process is kept in while it runs,
    so the sweep can forward signals to it.
    """
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_child_env(threads), cwd=cwd,
                                preexec_fn=_die_with_parent)
        if running is not None:
            running.add(proc)
        try:
            return proc.wait()
        finally:
            if running is not None:
                running.discard(proc)


def finished_run(run_dir: Path | None) -> bool:
    """Whether ``run_dir``'s checkpoint says the run reached its ``total_steps``."""
    if run_dir is None or not (run_dir / "checkpoint.pt").is_file():
        return False
    try:
        state = load_checkpoint(run_dir / "checkpoint.pt")
        return int(state["loop"]["step"]) >= int(state["args"]["agent"]["total_steps"])
    except (ValueError, KeyError, TypeError):
        return False


def run(args: SweepArgs) -> dict[str, Any]:
    """Run every unfinished run of the grid; returns the manifest's runs."""
    root = Path(args.runs_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(root, args)
    for spec in manifest.runs.values():  # a run that finished while the sweep was being killed
        if spec.status != "done":
            dirs = _run_dirs(root / f"cfg{spec.config_index}", spec, args.experiment)
            if dirs and finished_run(dirs[-1]):
                spec.status, spec.run_dir = "done", str(dirs[-1])
    manifest.save()
    todo = [r for r in manifest.runs.values() if r.status != "done"]
    skipped = len(manifest.runs) - len(todo)

    def show() -> None:
        if not args.quiet:
            print(manifest.table(), flush=True)

    if skipped and not args.quiet:
        print(f"skipping {skipped} finished run(s)")

    def started(spec: RunSpec) -> tuple[list[str], str]:
        cmd = command(args, spec, root)
        manifest.update(spec.key, status="running", attempts=spec.attempts + 1, returncode=None)
        show()
        return cmd, str(root / "logs" / (spec.key.replace("/", "__") + ".log"))

    def finished(spec: RunSpec, rc: int) -> None:
        dirs = _run_dirs(root / f"cfg{spec.config_index}", spec, args.experiment)
        run_dir = dirs[-1] if dirs else None
        if rc == 0 or finished_run(run_dir):  # a run that ended just as a signal came is done
            status = "done"
        elif rc in (130, 143):  # stopped by a signal after its checkpoint: resumed next time
            status = "interrupted"
        else:
            status = "failed"
        manifest.update(spec.key, status=status, returncode=rc, run_dir=str(run_dir) if run_dir else None)
        show()

    cwd = str(Path(__file__).resolve().parent.parent)
    stopped = None
    if args.ray_address is None:
        stopped = _run_locally(args, todo, started, finished, cwd)
    else:
        _run_on_ray(args, todo, started, finished, cwd)
    if args.quiet:
        print(manifest.table())
    return {"runs": manifest.runs, "skipped": skipped, "manifest": manifest.path, "stopped": stopped}


def _run_locally(args: SweepArgs, todo: list[RunSpec], started: Any, finished: Any, cwd: str) -> int | None:
    """Run ``todo`` on a thread pool of ``--workers`` subprocesses. SIGINT / SIGTERM: no new run
    starts, the signal goes to the running ones (which checkpoint and exit), and the sweep waits
    for them; a second signal is forwarded too. Returns the signal that stopped the sweep."""
    workers = args.workers or max(1, (os.cpu_count() or 1) // args.cpus_per_run)
    running: set[subprocess.Popen] = set()
    stopping = threading.Event()

    def local(spec: RunSpec) -> None:
        if stopping.is_set():
            return  # never started: stays pending
        cmd, log = started(spec)
        finished(spec, execute(cmd, log, args.cpus_per_run, cwd, running))

    def forward(signum: int) -> None:
        stopping.set()
        for proc in list(running):
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

    with StopRequests() as stop, ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(local, spec) for spec in todo]
        forwarded = False
        while not all(f.done() for f in futures):
            try:
                wait(futures, timeout=0.2)
            except Interrupted as e:  # a second signal: pass it on, the runs stop at once
                forward(e.signum)
                continue
            if stop.requested and not forwarded:
                forwarded = True
                print(f"sweep: {signal.Signals(stop.signal).name}: waiting for {len(running)} running run(s) to "
                      "checkpoint; the same command resumes the sweep", file=sys.stderr, flush=True)
                forward(stop.signal)
        for f in futures:
            f.result()
    return stop.signal


def _run_on_ray(args: SweepArgs, todo: list[RunSpec], started: Any, finished: Any, cwd: str) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--ray-address needs Ray: pip install -e '.[cluster]'") from None
    if args.ray_address == "local":
        ray.init(num_cpus=args.ray_num_cpus, include_dashboard=False, log_to_driver=False)
    else:
        try:
            ray.init(address=args.ray_address, log_to_driver=False)
        except Exception as e:  # no cluster there: ConnectionError, or Ray's own errors
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ValueError(f"cannot reach a Ray cluster at --ray-address {args.ray_address} ({reason}); start one "
                             "with 'ray start --head', or run on this machine with --ray-address local") from None
    try:
        task = ray.remote(num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run)(execute)
        pending: dict[Any, RunSpec] = {}
        for spec in todo:
            cmd, log = started(spec)
            pending[task.remote(cmd, log, args.cpus_per_run, cwd)] = spec
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    rc = int(ray.get(ref))
                except Exception as e:  # a worker that died: the run failed, the sweep goes on
                    print(f"{spec.key}: Ray task failed: {e}", file=sys.stderr)
                    rc = -1
                finished(spec, rc)
    finally:
        ray.shutdown()


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    _, r = parse_and_run(SweepArgs, run, argv, __doc__)
    if r["stopped"] is not None:
        raise SystemExit(128 + r["stopped"])
    failed = [k for k, spec in r["runs"].items() if spec.status != "done"]
    if failed:
        print(f"{len(failed)} run(s) did not finish; see {Path(r['manifest']).parent / 'logs'}", file=sys.stderr)
        raise SystemExit(1)
    return r


if __name__ == "__main__":
    main()
