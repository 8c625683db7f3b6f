"""Figures of what a memory network did on one sequence: input | target | output, each head's
read and write weightings over time and, for the DNC, memory usage over time and the temporal
link matrix at the last step.

``trace(model, inputs)`` runs a core step by step and keeps what the figure shows;
``memory_figure(...)`` draws it (a ``matplotlib.figure.Figure`` outside pyplot's registry, so
nothing accumulates over a long run); ``log_memory_figure`` sends it to TensorBoard's IMAGES tab
(``SummaryWriter.add_figure``) and, on request, to a PNG file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.tensorboard import SummaryWriter


@dataclasses.dataclass
class MemoryTrace:
    """One sequence through a core, step by step (``T`` steps, ``N`` memory slots).

    Attributes:
      outputs: ``[T, out]`` the core's outputs (logits).
      read_weights: ``[T, R, N]``; write_weights: ``[T, Hw, N]`` (``None`` for an LSTM).
      usage: ``[T, N]`` DNC memory usage after each step (``None`` for the NTM).
      link: ``[Hw, N, N]`` DNC temporal link matrices after the last step (``None`` for the NTM).
    """

    outputs: torch.Tensor
    read_weights: torch.Tensor | None = None
    write_weights: torch.Tensor | None = None
    usage: torch.Tensor | None = None
    link: torch.Tensor | None = None


@torch.no_grad()
def trace(model: nn.Module, inputs: torch.Tensor) -> MemoryTrace:
    """Run ``inputs`` ``[T, in]`` (one sequence) through ``model`` one step at a time.

    Cores with a ``step`` (NTM, DNC) are stepped with their state; others (``nn.LSTM``-like
    baselines) run the sequence at once and have no weightings.
    """
    x = inputs[:, None]  # [T, 1, in]
    if not hasattr(model, "step"):
        logits, _ = model(x)
        return MemoryTrace(outputs=logits[:, 0].cpu())
    state = model.initial_state(1)
    outputs, reads, writes, usage = [], [], [], []
    for t in range(x.shape[0]):
        y, state = model(x[t], state)
        outputs.append(y[0])
        reads.append(state.read_weights[0])
        writes.append(state.write_weights[0])
        if hasattr(state, "usage"):
            usage.append(state.usage[0])
    return MemoryTrace(
        outputs=torch.stack(outputs).cpu(),
        read_weights=torch.stack(reads).cpu(),
        write_weights=torch.stack(writes).cpu(),
        usage=torch.stack(usage).cpu() if usage else None,
        link=state.link[0].cpu() if hasattr(state, "link") else None,
    )


def _heatmap(fig: Figure, ax, values: torch.Tensor, title: str, ylabel: str, xlabel: str = "time step",
             cmap: str = "viridis", vmax: float | None = None) -> None:
    """``values`` ``[rows, cols]`` as an image with labelled axes and a colour bar."""
    image = ax.imshow(values.float().numpy(), aspect="auto", origin="lower", interpolation="nearest", cmap=cmap,
                      vmin=0.0, vmax=vmax)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)


def memory_figure(inputs: torch.Tensor, targets: torch.Tensor, memory: MemoryTrace, title: str = "",
                  output: str = "sigmoid") -> Figure:
    """The figure of one traced sequence.

    Row 1: input | target | output (``output="sigmoid"``: the sigmoid of each logit, bits;
    ``"softmax"``: the softmax over channels, words), channels x time. Row 2: every read
    head's, then every write head's weighting, memory slot x time. Row 3 (DNC): usage, slot x
    time, and each write head's link matrix at the last step, slot x slot.

    Args:
      inputs: ``[T, in]``; targets: ``[T, out]`` in [0, 1]; memory: from :func:`trace`.
    """
    heads: list[tuple[str, torch.Tensor]] = []
    if memory.read_weights is not None and memory.write_weights is not None:
        heads += [(f"read head {h}", memory.read_weights[:, h]) for h in range(memory.read_weights.shape[1])]
        heads += [(f"write head {h}", memory.write_weights[:, h]) for h in range(memory.write_weights.shape[1])]
    dnc: list[tuple[str, torch.Tensor, str, str]] = []
    if memory.usage is not None:
        dnc.append(("usage", memory.usage.t(), "memory slot", "time step"))
    if memory.link is not None:
        dnc += [(f"link matrix (write head {h}), last step", memory.link[h], "to slot", "from slot")
                for h in range(memory.link.shape[0])]
    rows = 1 + bool(heads) + bool(dnc)
    cols = max(3, len(heads), len(dnc))
    width, height = 3.6 * cols, 2.8 * rows + 0.3
    fig = Figure(figsize=(width, height), dpi=80)
    # margins fixed in inches (a constrained layout re-solves for every colour bar: seconds a figure)
    fig.subplots_adjust(left=0.5 / width, right=1 - 0.45 / width, bottom=0.45 / height, top=1 - 0.6 / height,
                        wspace=0.45, hspace=0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)

    def show(r: int, c: int, *args, **kwargs) -> None:
        axes[r, c].set_visible(True)
        _heatmap(fig, axes[r, c], *args, **kwargs)

    if output not in ("sigmoid", "softmax"):
        raise ValueError(f"output must be 'sigmoid' or 'softmax', got {output!r}")
    outputs = torch.sigmoid(memory.outputs.float()) if output == "sigmoid" else memory.outputs.float().softmax(-1)
    show(0, 0, inputs.t(), "input", "channel", cmap="gray_r", vmax=1.0)
    show(0, 1, targets.t(), "target", "channel", cmap="gray_r", vmax=1.0)
    show(0, 2, outputs.t(), f"output ({output})", "channel", cmap="gray_r", vmax=1.0)
    for i, (name, w) in enumerate(heads):  # w [T, N]
        show(1, i, w.t(), f"{name} weighting", "memory slot", cmap="magma")
    for i, (name, values, ylabel, xlabel) in enumerate(dnc):
        show(rows - 1, i, values, name, ylabel, xlabel=xlabel, cmap="magma")
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    return fig


def agent_memory_figure(trace: dict[str, list[torch.Tensor]], title: str = "") -> Figure:
    """What an agent's NTM / DNC core did over one evaluation episode: every read head's and
    write head's weighting (memory slot x time step) and, for the DNC, the usage.

    Args:
      trace: :class:`agents.actor_critic.RecurrentActor`'s ``trace`` (per step: ``read_weights``
        ``[R, N]``, ``write_weights`` ``[Hw, N]``, ``usage`` ``[N]``).
    """
    reads, writes = torch.stack(trace["read_weights"]), torch.stack(trace["write_weights"])  # [T, H, N]
    panels = [(f"read head {h} weighting", reads[:, h].t()) for h in range(reads.shape[1])]
    panels += [(f"write head {h} weighting", writes[:, h].t()) for h in range(writes.shape[1])]
    if "usage" in trace:
        panels.append(("usage", torch.stack(trace["usage"]).t()))
    width, height = 3.8 * len(panels), 3.1
    fig = Figure(figsize=(width, height), dpi=80)
    fig.subplots_adjust(left=0.5 / width, right=1 - 0.45 / width, bottom=0.5 / height, top=1 - 0.65 / height,
                        wspace=0.45)
    for ax, (name, values) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _heatmap(fig, ax, values, name, "memory slot", cmap="magma")
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    return fig


def log_memory_figure(writer: SummaryWriter, tag: str, step: int, inputs: torch.Tensor, targets: torch.Tensor,
                      memory: MemoryTrace, png: Path | None = None, title: str = "", output: str = "sigmoid") -> Figure:
    """Draw the figure, add it to TensorBoard under ``tag`` at ``step`` and, if ``png`` is given,
    save it there; returns the (closed) figure."""
    fig = memory_figure(inputs, targets, memory, title, output)
    if png is not None:
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=90)
    writer.add_figure(tag, fig, step, close=True)
    return fig
