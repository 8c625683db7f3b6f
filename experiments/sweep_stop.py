"""The sweep's clean stop on Ray Tune (imported only with Ray installed; see experiments.sweep).

On the first SIGINT / SIGTERM the driver sets a flag that every trial polls (a small named Ray
actor, so trials on other nodes see it); each trial has its run checkpoint, reports that
checkpoint to Tune, and waits. Once every running trial's checkpoint is registered, the driver
stops Tune with SIGUSR1 (Tune's own interrupt), which saves the experiment state with those
checkpoints in it; ``Tuner.restore`` resumes from them.

The callback is stateless and module-level because Tune pickles it into ``tuner.pkl`` and
unpickles it on restore: its state lives in :data:`ACTIVE`, set by the sweep that runs now.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from typing import Any

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial

from foundations.interrupts import StopRequests


@ray.remote(num_cpus=0)
class StopFlag:
    """The driver's stop request, seen by every trial."""

    def __init__(self) -> None:
        self.flag = False

    def set(self) -> None:
        self.flag = True

    def requested(self) -> bool:
        return self.flag


@dataclasses.dataclass
class Stopping:
    """What the running sweep's callback needs: its signal requests, the flag, what it has done."""

    requests: StopRequests
    flag: Any
    quiet: bool = False
    told: bool = False
    fired: bool = False
    acked: set[str] = dataclasses.field(default_factory=set)


ACTIVE: Stopping | None = None


def _key(trial: Any) -> str:
    return str(trial.config["run"]["key"])


class Driver(Callback):
    """Progress lines and the clean stop (module docstring)."""

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        s = ACTIVE
        if s is None or not s.requests.requested:
            return
        if not s.told:
            s.told = True
            s.flag.set.remote()
            running = sum(t.status == Trial.RUNNING for t in trials)
            print(f"sweep: {signal.Signals(s.requests.signal or signal.SIGINT).name}: waiting for {running} running "
                  "trial(s) to checkpoint", file=sys.stderr, flush=True)
        if not s.fired and all(t.trial_id in s.acked for t in trials if t.status == Trial.RUNNING):
            s.fired = True
            os.kill(os.getpid(), signal.SIGUSR1)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if ACTIVE is not None and not ACTIVE.quiet:
            print(f"sweep: started {_key(trial)}", flush=True)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any) -> None:
        if ACTIVE is not None and result.get("interrupted") and not result.get("has_checkpoint"):
            ACTIVE.acked.add(trial.trial_id)

    def on_checkpoint(self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any) -> None:
        if ACTIVE is not None and trial.last_result.get("interrupted"):
            ACTIVE.acked.add(trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if ACTIVE is not None and not ACTIVE.quiet:
            print(f"sweep: finished {_key(trial)}", flush=True)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        print(f"sweep: {_key(trial)} failed ({trial.num_failures} attempt(s))", file=sys.stderr, flush=True)
