"""The gated transformer core: causal, windowed, reset at episode starts, and the same whether
a sequence runs at once or one step at a time."""

from __future__ import annotations

import math

import pytest
import torch

from memory_nets.transformer import (
    GatedTransformer,
    GatedTransformerConfig,
    GRUGate,
    TransformerSequenceModel,
    sinusoid,
)

CFG = GatedTransformerConfig(model_size=16, heads=2, layers=2, window=4, ff_size=32)


def _core(seed: int = 0) -> GatedTransformer:
    torch.manual_seed(seed)
    return GatedTransformer(3, CFG).eval()


def _stepwise(core: GatedTransformer, x: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, object]:
    state = core.initial_state(x.shape[1])
    ys = []
    for t in range(x.shape[0]):
        y, state = core(x[t:t + 1], state, starts[t:t + 1])
        ys.append(y)
    return torch.cat(ys), state


def test_a_sequence_at_once_equals_one_step_at_a_time_across_resets_and_roll_over() -> None:
    core = _core()
    x = torch.randn(13, 3, 3)
    starts = torch.zeros(13, 3, dtype=torch.bool)
    starts[0] = True
    starts[5, 1] = starts[6, 2] = starts[7, 1] = True
    y, state = core(x, core.initial_state(3), starts)
    y_steps, state_steps = _stepwise(core, x, starts)
    torch.testing.assert_close(y, y_steps, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, state_steps, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # and in two chunks carried by the state (a rollout boundary)
    y1, mid = core(x[:6], core.initial_state(3), starts[:6])
    y2, _ = core(x[6:], mid, starts[6:])
    torch.testing.assert_close(torch.cat([y1, y2]), y, atol=1e-5, rtol=1e-5)
    assert state.positions[:, 0].tolist() == [9, 10, 11, 12]  # no reset in env 0: positions 9..12
    assert state.positions[:, 1].tolist() == [2, 3, 4, 5] and state.next_position.tolist() == [13, 6, 7]


def test_outputs_are_causal_and_see_exactly_the_window() -> None:
    core = _core()
    x = torch.randn(10, 1, 3)
    starts = torch.zeros(10, 1, dtype=torch.bool)
    y, _ = core(x, core.initial_state(1), starts)
    later = x.clone()
    later[7] += 5.0
    y_later, _ = core(later, core.initial_state(1), starts)
    assert torch.equal(y_later[:7], y[:7])  # the future changes nothing before it
    assert (y_later[7] - y[7]).abs().max() > 1e-3
    # One layer's window is K = 4 steps; two layers see 2K back. Step 9 depends on step 1 ...
    early = x.clone()
    early[1] += 5.0
    y_early, _ = core(early, core.initial_state(1), starts)
    assert (y_early[9] - y[9]).abs().max() > 1e-6  # small: the gates start near the identity
    # ... but not on step 0: 9 - 0 > 2K (the information would need three hops)
    first = x.clone()
    first[0] += 5.0
    y_first, _ = core(first, core.initial_state(1), starts)
    assert torch.equal(y_first[9], y[9])
    assert (y_first[8] - y[8]).abs().max() > 1e-6  # 8 - 0 = 2K: in reach


def test_an_episode_start_cuts_every_influence_of_the_steps_before_it() -> None:
    core = _core()
    x = torch.randn(8, 2, 3)
    starts = torch.zeros(8, 2, dtype=torch.bool)
    starts[4] = True
    y, _ = core(x, core.initial_state(2), starts)
    other = x.clone()
    other[:4] = torch.randn(4, 2, 3)
    y_other, _ = core(other, core.initial_state(2), starts)
    assert torch.equal(y_other[4:], y[4:])
    fresh, _ = core(x[4:], core.initial_state(2), starts[4:])
    torch.testing.assert_close(fresh, y[4:], atol=1e-5, rtol=1e-5)  # the same as a new episode from scratch


def test_gate_starts_near_the_identity_and_bad_sizes_are_refused() -> None:
    torch.manual_seed(0)
    gate = GRUGate(8, bias=2.0)
    x = torch.randn(100, 8)
    moved = (gate(x, torch.zeros_like(x)) - x).abs().mean() / x.abs().mean()
    assert moved < 0.2  # z = sigmoid(-2) ~ 0.12 with y = 0 and small weights
    # b_g is learned, from the paper's 2
    assert isinstance(gate.bias, torch.nn.Parameter) and torch.equal(gate.bias.detach(), torch.full((8,), 2.0))
    gate(x, torch.randn_like(x)).sum().backward()
    assert gate.bias.grad is not None and gate.bias.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"model_size \(10\) must be a multiple of heads \(4\)"):
        GatedTransformerConfig(model_size=10, heads=4)
    with pytest.raises(ValueError, match="window"):
        GatedTransformerConfig(window=0)


def test_no_absolute_position_reaches_the_output_and_the_lag_bias_is_learned() -> None:
    """The same observation at every step of an episode gives the same output at every step
    (nothing says how far into the episode a step is), while how far back a key lies enters the
    attention through a learned bias per head and lag that the loss reaches."""
    core = _core()
    x = torch.randn(1, 2, 3).expand(12, 2, 3).contiguous()
    starts = torch.zeros(12, 2, dtype=torch.bool)
    starts[0] = True
    y, _ = core(x, core.initial_state(2), starts)
    torch.testing.assert_close(y, y[:1].expand_as(y), atol=1e-5, rtol=1e-5)
    layer = core.layers[0]
    assert tuple(layer.lag_bias.shape) == (CFG.heads, CFG.window + 1) and not layer.lag_bias.detach().any()
    varied = torch.randn(12, 2, 3)
    out, _ = core(varied, core.initial_state(2), starts)
    out.pow(2).sum().backward()
    assert layer.lag_bias.grad is not None and layer.lag_bias.grad[:, 1:].abs().sum() > 0
    # a bias towards lag 2 in every head of every layer changes what a step reads
    with torch.no_grad():
        for each in core.layers:
            each.lag_bias[:, 2] = 6.0
    shifted, _ = core(varied, core.initial_state(2), starts)
    assert (shifted[3:] - out[3:]).abs().max() > 1e-3


@pytest.mark.parametrize("position", ["learned", "alibi", "sinusoid", "none"])
def test_sequence_model_is_causal_stepwise_equal_and_fresh_per_call(position: str) -> None:
    torch.manual_seed(0)
    cfg = GatedTransformerConfig(model_size=16, heads=2, layers=2, window=32, ff_size=32, position=position)
    model = TransformerSequenceModel(5, 3, cfg).eval()
    x = torch.randn(12, 2, 5, requires_grad=True)
    y, _ = model(x)
    assert y.shape == (12, 2, 3)
    # causal: the output at t has no gradient from any later input (and some from its own and earlier ones)
    for t in (0, 5, 11):
        (grad,) = torch.autograd.grad(y[t].sum(), x, retain_graph=True)
        assert grad[t + 1:].abs().sum() == 0 and grad[: t + 1].abs().sum() > 0
    # one input at a time with the state carried gives the whole-sequence outputs
    state, steps = None, []
    with torch.no_grad():
        for t in range(12):
            out, state = model(x[t:t + 1].detach(), state)
            steps.append(out)
        torch.testing.assert_close(torch.cat(steps), y.detach(), atol=1e-5, rtol=1e-5)
        # a call without a state starts afresh: a second sequence's outputs do not depend on the first
        again, _ = model(x[6:].detach())
        alone, _ = model(x[6:].detach(), model.initial_state(2))
        torch.testing.assert_close(again, alone)
        if position != "none":  # with positions, starting mid-way is not the same as continuing
            assert not torch.allclose(again, y[6:].detach(), atol=1e-4)


def test_alibi_slopes_and_sinusoid_code() -> None:
    torch.manual_seed(0)
    layer = TransformerSequenceModel(3, 2, GatedTransformerConfig(heads=4, position="alibi")).transformer.layers[0]
    torch.testing.assert_close(layer.slopes, torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8]))
    lags = torch.tensor([[0, 1, 3]])
    torch.testing.assert_close(layer.lag_logits(lags)[:, 0], -layer.slopes[:, None] * torch.tensor([0.0, 1.0, 3.0]))
    assert not any(n.endswith("lag_bias") for n, _ in layer.named_parameters())
    code = sinusoid(torch.tensor([0, 3]), 6)
    torch.testing.assert_close(code[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(code[1, :2], torch.tensor([math.sin(3.0), math.cos(3.0)]))
    torch.testing.assert_close(code[1, 2:4], torch.tensor([math.sin(3.0 * 10_000 ** (-2 / 6)),
                                                          math.cos(3.0 * 10_000 ** (-2 / 6))]))
    with pytest.raises(ValueError, match="position"):
        GatedTransformerConfig(position="rotary")
    with pytest.raises(ValueError, match=r"a sequence must be \[time, batch, 3\]"):
        TransformerSequenceModel(3, 2)(torch.zeros(4, 3))
