"""A supervised training loop: ``fit`` and ``evaluate`` for classification and regression.

    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()), train, val,
                  epochs=10, batch_size=128, early_stopping=3, checkpoint="runs/best.pt", logger=log)

What it does each epoch: shuffle, (augment,) forward, backward, (clip,) step, (schedule,) then
evaluate on ``val`` with the model in eval mode (dropout off, batch-norm running statistics).
It logs ``train/loss`` (mean over the last ``log_every`` steps), ``charts/learning_rate``,
``eval/loss`` and ``eval/accuracy`` (classification) against optimizer steps, keeps the best
model by the monitored metric (written atomically to ``checkpoint`` when given) and stops when
the metric has not improved by ``min_delta`` for ``early_stopping`` epochs. Loss values are
accumulated on the device and read back once per logging interval, not once per step.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from foundations.batches import Labelled
from foundations.checks import choose, positive_int
from foundations.interrupts import StopRequests
from foundations.runlog import RunLogger, Tags, save_checkpoint

__all__ = ["History", "accuracy", "correct", "evaluate", "fit"]

Task = Literal["classification", "regression"]


def correct(output: Tensor, target: Tensor) -> Tensor:
    """Number of correct predictions (a 0-d int64 tensor).

    ``output [batch, classes]`` logits against class indices ``target [batch]``; a single
    logit per example (``[batch]`` or ``[batch, 1]``) is a binary classifier (positive when > 0)
    against ``target`` in {0, 1}.
    """
    if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
        pred = (output.reshape(-1) > 0).long()
    else:
        pred = output.argmax(dim=-1)
    return (pred == target.reshape(pred.shape).long()).sum()


def accuracy(output: Tensor, target: Tensor) -> Tensor:
    """Fraction of correct predictions (a 0-d float tensor); see :func:`correct`."""
    return correct(output, target).double() / max(target.shape[0], 1)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    data: Labelled,
    batch_size: int = 1024,
    task: Task = "classification",
) -> dict[str, float]:
    """Mean loss (and accuracy, for classification) of ``model`` on ``data`` in eval mode.

    The mean is over examples (batch means weighted by batch size), so it does not depend on
    ``batch_size`` for a mean-reduced ``loss_fn``. The model's train/eval mode is restored.
    """
    choose("task", task, {"classification": 0, "regression": 0})
    was_training = model.training
    model.eval()
    device = _device_of(model)
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    total_correct = torch.zeros((), device=device, dtype=torch.int64)
    try:
        for x, y in data.batches(batch_size, shuffle=False):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x)
            total_loss += loss_fn(out, y).double() * len(y)
            if task == "classification":
                total_correct += correct(out, y)
    finally:
        model.train(was_training)
    n = len(data)
    metrics = {"loss": total_loss.item() / n}
    if task == "classification":
        metrics["accuracy"] = total_correct.item() / n
    return metrics


@dataclasses.dataclass
class History:
    """What :func:`fit` measured. One entry per epoch in each list."""

    train_loss: list[float] = dataclasses.field(default_factory=list)
    val: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int = -1
    """epoch (0-based) of the best monitored value; -1 without validation data."""
    best_value: float = math.nan
    stopped_early: bool = False
    interrupted: int | None = None
    """the signal (SIGINT, SIGTERM) that ended training early, when a ``stop`` was given."""
    steps: int = 0
    """optimizer steps taken."""
    checkpoint: Path | None = None

    @property
    def best(self) -> dict[str, float]:
        """Validation metrics of the best epoch."""
        return self.val[self.best_epoch] if self.best_epoch >= 0 else {}


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def fit(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    train_data: Labelled,
    val_data: Labelled | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    *,
    task: Task = "classification",
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scheduler_per: Literal["step", "epoch"] = "epoch",
    augment: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
    clip_grad_norm: float | None = None,
    early_stopping: int | None = None,
    monitor: Literal["loss", "accuracy"] = "loss",
    min_delta: float = 0.0,
    checkpoint: str | os.PathLike | None = None,
    restore_best: bool = True,
    logger: RunLogger | None = None,
    log_every: int = 50,
    progress: bool = False,
    generator: torch.Generator | None = None,
    eval_batch_size: int = 1024,
    stop: StopRequests | None = None,
) -> History:
    """Train ``model`` on ``train_data``; returns a :class:`History`.

    Args:
      model: maps a batch ``x`` to outputs compared with ``y`` by ``loss_fn``.
      loss_fn: ``loss_fn(output, target) -> []``, mean-reduced (``nn.CrossEntropyLoss()``...).
      optimizer: any ``torch.optim.Optimizer`` (``foundations.optim`` or ``torch.optim``).
      train_data / val_data: :class:`Labelled` data; moved to the model's device once.
      epochs: passes over ``train_data``.
      batch_size: training batch size (the last, smaller batch of an epoch is dropped when it
        would be a single example, which batch norm cannot normalise).
      task: "classification" (also reports accuracy) or "regression".
      scheduler: stepped after every optimizer step (``scheduler_per="step"``) or epoch.
      augment: ``augment(x, generator) -> x`` applied to each training batch (e.g. ``Augment``).
      clip_grad_norm: clip the global gradient norm to this value before each step.
      early_stopping: stop after this many epochs without improvement of ``monitor`` on
        ``val_data`` by more than ``min_delta`` (needs ``val_data``).
      monitor: the validation metric that picks the best epoch ("accuracy": classification).
      stop: a :class:`foundations.interrupts.StopRequests` in force: on SIGINT / SIGTERM training
        ends after the current step (``History.interrupted``); the checkpoint keeps the best
        epoch so far (or, without validation data, the last complete one).
      checkpoint: write the best model (and optimizer, epoch, metrics) here, atomically; without
        ``val_data``, the model after each epoch.
      restore_best: load the best epoch's weights back into ``model`` at the end.
      logger: a :class:`RunLogger` for TensorBoard scalars and its progress bar.
      log_every: steps between ``train/loss`` points.
      progress: show a progress bar when no ``logger`` is given.
      generator: drives shuffling and augmentation (seeded runs repeat exactly).
      eval_batch_size: batch size of evaluation passes.
    """
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    positive_int("log_every", log_every)
    choose("task", task, {"classification": 0, "regression": 0})
    choose("scheduler_per", scheduler_per, {"step": 0, "epoch": 0})
    choose("monitor", monitor, {"loss": 0, "accuracy": 0})
    if monitor == "accuracy" and task != "classification":
        raise ValueError("monitor='accuracy' needs task='classification'")
    if early_stopping is not None:
        positive_int("early_stopping", early_stopping)
        if val_data is None:
            raise ValueError("early_stopping needs val_data to watch")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm must be > 0, got {clip_grad_norm}")
    if len(train_data) == 0:
        raise ValueError("train_data is empty")

    device = _device_of(model)
    train_data = train_data.to(device)
    val_data = val_data.to(device) if val_data is not None else None
    history = History(checkpoint=Path(checkpoint) if checkpoint is not None else None)
    sign = 1.0 if monitor == "loss" else -1.0  # minimise sign * metric
    best_score, best_state, bad_epochs = math.inf, None, 0
    steps_per_epoch = len(train_data) // batch_size + int(len(train_data) % batch_size > 1)
    bar = None
    if logger is None and progress:
        bar = tqdm(total=epochs * steps_per_epoch, unit="step", dynamic_ncols=True, mininterval=1.0)
    step = 0
    window_loss = torch.zeros((), device=device)
    window_steps = 0
    model.train()
    for epoch in range(epochs):
        epoch_loss = torch.zeros((), device=device, dtype=torch.float64)
        epoch_examples = 0
        for x, y in train_data.batches(batch_size, shuffle=True, generator=generator):
            if len(y) == 1 and len(train_data) > 1:
                continue  # a one-example tail batch: no batch statistics, no signal worth a step
            if augment is not None:
                x = augment(x, generator)
            out = model(x)
            loss = loss_fn(out, y)
            if not loss.ndim == 0:
                raise ValueError(f"loss_fn must return a scalar (mean-reduced) loss, got shape {list(loss.shape)}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if scheduler is not None and scheduler_per == "step":
                scheduler.step()
            step += 1
            detached = loss.detach()
            epoch_loss += detached.double() * len(y)
            epoch_examples += len(y)
            window_loss += detached
            window_steps += 1
            if stop is not None and stop.requested:
                history.interrupted = stop.signal
                break
            if step % log_every == 0:
                mean = window_loss.item() / window_steps
                if not math.isfinite(mean):
                    raise FloatingPointError(f"training loss became {mean} at step {step} (epoch {epoch})")
                if logger is not None:
                    logger.log_scalar(Tags.TRAIN_LOSS, mean, step)
                    logger.log_scalar(Tags.LEARNING_RATE, optimizer.param_groups[0]["lr"], step)
                    logger.progress(step)
                elif bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(loss=f"{mean:.4g}", refresh=False)
                window_loss.zero_()
                window_steps = 0
        if history.interrupted is not None:
            history.steps = step
            break
        if scheduler is not None and scheduler_per == "epoch":
            scheduler.step()
        history.train_loss.append(epoch_loss.item() / max(epoch_examples, 1))
        history.steps = step
        if val_data is None:  # nothing to select by: the checkpoint follows the latest epoch
            if checkpoint is not None:
                save_checkpoint(checkpoint, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                    "step": step, "metrics": {"train_loss": history.train_loss[-1]},
                })  # fmt: skip
            continue
        metrics = evaluate(model, loss_fn, val_data, eval_batch_size, task)
        history.val.append(metrics)
        if logger is not None:
            logger.log_scalar(Tags.EVAL_LOSS, metrics["loss"], step)
            if "accuracy" in metrics:
                logger.log_scalar(Tags.EVAL_ACCURACY, metrics["accuracy"], step)
            logger.progress(step)
        score = sign * metrics[monitor]
        if score < best_score - min_delta or best_state is None:
            best_score, bad_epochs = score, 0
            history.best_epoch, history.best_value = epoch, metrics[monitor]
            best_state = copy.deepcopy(model.state_dict())
            if checkpoint is not None:
                save_checkpoint(
                    checkpoint,
                    {
                        "model": best_state,
                        "optimizer": optimizer.state_dict(),
                        "epoch": epoch,
                        "step": step,
                        "metrics": metrics,
                    },
                )
        else:
            bad_epochs += 1
            if early_stopping is not None and bad_epochs >= early_stopping:
                history.stopped_early = True
                break
    if bar is not None:
        bar.close()
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return history
