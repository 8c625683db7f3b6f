"""The memory figures: the panels each core should have, labelled, with colour bars, drawn from a
real short run, and no figure left open however many are logged."""

import matplotlib.pyplot as plt
import torch
from torch.utils.tensorboard import SummaryWriter

from experiments.memory_pictures import log_memory_figure, memory_figure, trace
from experiments.memory_task import MemoryTaskArgs, train
from memory_nets import DNC, NTM
from memory_nets.baseline import LSTMBaseline


def _visible(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _titles(fig):
    return [ax.get_title() for ax in _visible(fig)]


def _sequence(steps=7, bits=5):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 2, (steps, bits + 2), generator=g).float(), torch.rand(steps, bits, generator=g)


def test_dnc_figure_has_io_every_head_usage_and_the_link_matrix():
    torch.manual_seed(0)
    core = DNC(input_size=7, output_size=5, memory_slots=12, word_size=6, read_heads=2)
    inputs, targets = _sequence()
    memory = trace(core, inputs)
    assert memory.read_weights.shape == (7, 2, 12) and memory.write_weights.shape == (7, 1, 12)
    assert memory.usage.shape == (7, 12) and memory.link.shape == (1, 12, 12)
    fig = memory_figure(inputs, targets, memory, title="DNC")
    assert _titles(fig) == ["input", "target", "output (sigmoid)", "read head 0 weighting", "read head 1 weighting",
                            "write head 0 weighting", "usage", "link matrix (write head 0), last step"]
    visible = _visible(fig)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in visible)
    assert [ax.get_ylabel() for ax in visible[3:7]] == ["memory slot"] * 4
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == len(visible)  # a colour bar each
    image = visible[3].get_images()[0].get_array()
    assert image.shape == (12, 7)  # slot x time
    assert torch.allclose(torch.as_tensor(image.data), memory.read_weights[:, 0].t().float())


def test_ntm_figure_has_no_dnc_row_and_the_lstm_only_io():
    torch.manual_seed(0)
    inputs, targets = _sequence()
    ntm = trace(NTM(input_size=7, output_size=5, memory_slots=10, word_size=4), inputs)
    assert ntm.usage is None and ntm.link is None
    assert _titles(memory_figure(inputs, targets, ntm)) == ["input", "target", "output (sigmoid)",
                                                            "read head 0 weighting", "write head 0 weighting"]
    lstm = trace(LSTMBaseline(input_size=7, output_size=5, hidden_size=8), inputs)
    assert lstm.read_weights is None
    assert _titles(memory_figure(inputs, targets, lstm)) == ["input", "target", "output (sigmoid)"]


def test_logging_many_figures_leaves_none_open(tmp_path):
    torch.manual_seed(0)
    inputs, targets = _sequence(steps=4)
    dnc = trace(DNC(input_size=7, output_size=5, memory_slots=8, word_size=4), inputs)
    lstm = trace(LSTMBaseline(input_size=7, output_size=5, hidden_size=8), inputs)  # the cheapest figure to draw
    open_before = len(plt.get_fignums())
    with SummaryWriter(str(tmp_path)) as writer:
        for step in range(12):
            log_memory_figure(writer, "memory/figure", step, inputs, targets, dnc if step == 11 else lstm,
                              png=tmp_path / "p.png" if step == 11 else None)
    assert len(plt.get_fignums()) == open_before
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_a_short_dnc_run_draws_its_figure_at_every_evaluation_and_saves_pngs(tmp_path):
    result = train(MemoryTaskArgs(model="dnc", task="copy", runs_dir=str(tmp_path), device="cpu", controller_size=16,
                                  memory_slots=16, word_size=6, bits=4, max_length=4, batch_size=4, num_sequences=32,
                                  eval_every=16, eval_sequences=8, progress=False, save_pictures=True))
    pictures = sorted(p.name for p in (result["run_dir"] / "pictures").iterdir())
    assert pictures == ["memory-16.png", "memory-32.png"]
