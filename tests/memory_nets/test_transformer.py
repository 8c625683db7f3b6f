"""The gated transformer core: causal, windowed, reset at episode starts, and the same whether
a sequence runs at once or one step at a time."""

from __future__ import annotations

import pytest
import torch

from memory_nets.transformer import GatedTransformer, GatedTransformerConfig, GRUGate

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
