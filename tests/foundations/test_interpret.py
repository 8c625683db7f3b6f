"""Explanation methods against their defining properties, exact values and Captum."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from foundations.interpret import (
    exact_shapley,
    integrated_gradients,
    kernel_shap,
    lime,
    occlusion,
    partial_dependence,
    permutation_importance,
    saliency,
)

HAS_CAPTUM = importlib.util.find_spec("captum") is not None
needs_captum = pytest.mark.skipif(not HAS_CAPTUM, reason="captum is not installed (pip install -e '.[dev]')")


def _net(inp: int = 6, out: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(inp, 16), nn.Tanh(), nn.Linear(16, 16), nn.Softplus(), nn.Linear(16, out)).double()


def _image_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).double()


def test_integrated_gradients_completeness_at_64_steps() -> None:
    net = _net()
    x = torch.randn(5, 6, dtype=torch.float64)
    baseline = torch.zeros(6, dtype=torch.float64)
    attr, delta = integrated_gradients(net, x, baseline, target=torch.tensor([0, 1, 2, 0, 1]), steps=64)
    gap = net(x).gather(1, torch.tensor([[0], [1], [2], [0], [1]])).squeeze(1) - net(baseline[None])[0, [0, 1, 2, 0, 1]]
    assert torch.all((attr.sum(1) - gap).abs() <= 0.01 * gap.abs().clamp_min(1e-3))
    torch.testing.assert_close(delta, attr.sum(1) - gap)
    for method in ("riemann_trapezoid", "riemann_middle"):
        attr_r, _ = integrated_gradients(net, x, baseline, target=0, steps=64, method=method)
        assert (attr_r.sum(1) - (net(x)[:, 0] - net(baseline[None])[0, 0])).abs().max() < 0.01


def test_integrated_gradients_of_a_linear_model_is_weight_times_difference() -> None:
    w = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    x = torch.tensor([[1.0, 1.0, 2.0]], dtype=torch.float64)
    attr, delta = integrated_gradients(lambda v: v @ w, x, 0.5, steps=4)
    torch.testing.assert_close(attr, w * (x - 0.5))
    assert delta.abs().max() < 1e-12


def test_saliency_is_the_input_gradient() -> None:
    x = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    grad = saliency(lambda v: (v**2).sum(1, keepdim=True) * torch.tensor([[1.0, 3.0]], dtype=torch.float64), x, 1, abs=False)
    torch.testing.assert_close(grad, 3 * 2 * x)
    torch.testing.assert_close(saliency(lambda v: v.sum(1), x), torch.ones_like(x))


def test_occlusion_of_a_linear_model_averages_window_differences() -> None:
    w = torch.arange(1.0, 6.0, dtype=torch.float64)
    x = torch.ones(1, 5, dtype=torch.float64)
    attr = occlusion(lambda v: v @ w, x, window=(2,), strides=1)
    # windows [0,1], [1,2], [2,3], [3,4]: each removes w_i + w_{i+1}; feature j averages its windows
    sums = [3.0, 5.0, 7.0, 9.0]
    expected = torch.tensor([3.0, (3 + 5) / 2, (5 + 7) / 2, (7 + 9) / 2, 9.0], dtype=torch.float64)
    assert sums[0] == w[0] + w[1]
    torch.testing.assert_close(attr[0], expected)


@needs_captum
def test_gradient_methods_and_occlusion_match_captum() -> None:
    import warnings

    from captum.attr import IntegratedGradients, Occlusion, Saliency

    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")

    net = _image_net()
    x = torch.rand(3, 2, 8, 8, dtype=torch.float64)
    target = torch.tensor([0, 2, 1])
    ref = Saliency(net).attribute(x, target=target)
    torch.testing.assert_close(saliency(net, x, target), ref, atol=1e-4, rtol=0)
    for method in ("gausslegendre", "riemann_left", "riemann_middle"):
        ref_ig, ref_delta = IntegratedGradients(net).attribute(
            x, baselines=x * 0 + 0.2, target=target, n_steps=50, method=method, return_convergence_delta=True
        )
        ours = integrated_gradients(net, x, 0.2, target, steps=50, method=method)
        torch.testing.assert_close(ours.attributions, ref_ig, atol=1e-4, rtol=0)
        torch.testing.assert_close(ours.delta, ref_delta.to(ours.delta.dtype), atol=1e-4, rtol=0)
    # Captum's trapezoid rule weights n points by 1/n (halved at the ends), which sums to
    # (n - 1) / n; ours uses the spacing 1/(n - 1) of its points, so the weights sum to 1.
    ref_trap = IntegratedGradients(net).attribute(x, baselines=0.2, target=target, n_steps=50, method="riemann_trapezoid")
    ours_trap = integrated_gradients(net, x, 0.2, target, steps=50, method="riemann_trapezoid").attributions
    torch.testing.assert_close(ours_trap * 49 / 50, ref_trap, atol=1e-4, rtol=0)
    for window, strides in (((2, 3, 3), (1, 2, 2)), ((1, 2, 4), (1, 1, 3))):
        ref_occ = Occlusion(net).attribute(x, sliding_window_shapes=window, strides=strides, baselines=0.0, target=target)
        torch.testing.assert_close(occlusion(net, x, window, strides, 0.0, target), ref_occ.double(), atol=1e-4, rtol=0)


def _tabular_model(x: torch.Tensor) -> torch.Tensor:
    """A nonlinear model with interactions over 6 features: ``[batch, 6] -> [batch]``."""
    return torch.sin(x[:, 0]) * x[:, 1] + x[:, 2] ** 2 - 0.5 * x[:, 3] * x[:, 4] + torch.tanh(x[:, 5]) + 0.3


def test_kernel_shap_equals_enumerated_shapley_values() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, generator=g, dtype=torch.float64)
    background = torch.randn(20, 6, generator=g, dtype=torch.float64)
    exact = exact_shapley(_tabular_model, x, background)
    shap = kernel_shap(_tabular_model, x, background)
    torch.testing.assert_close(shap.coefficients, exact.coefficients, atol=1e-3, rtol=0)
    torch.testing.assert_close(shap.intercept, _tabular_model(background).mean())
    # efficiency: phi sums to f(x) - E[f(background)]
    assert abs(float(shap.coefficients.sum() + shap.intercept - _tabular_model(x[None])[0])) < 1e-9


def test_exact_shapley_of_an_additive_model() -> None:
    w = torch.tensor([2.0, -1.0, 0.5, 4.0], dtype=torch.float64)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    base = torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    phi = exact_shapley(lambda v: v @ w, x, base).coefficients
    torch.testing.assert_close(phi, w * (x - base))


def test_sampled_kernel_shap_and_feature_groups() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, generator=g, dtype=torch.float64)
    background = torch.randn(10, 6, generator=g, dtype=torch.float64)
    exact = exact_shapley(_tabular_model, x, background).coefficients
    sampled = kernel_shap(_tabular_model, x, background, num_samples=40, generator=torch.Generator().manual_seed(0))
    assert (sampled.coefficients - exact).abs().max() < 0.15 * exact.abs().max()
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    grouped = kernel_shap(_tabular_model, x, background, feature_groups=groups)
    grouped_exact = exact_shapley(_tabular_model, x, background, feature_groups=groups)
    torch.testing.assert_close(grouped.coefficients, grouped_exact.coefficients, atol=1e-9, rtol=0)


def test_lime_recovers_the_coefficients_of_a_linear_model() -> None:
    w = torch.tensor([3.0, -1.0, 0.0, 2.5, -4.0], dtype=torch.float64)
    x = torch.ones(5, dtype=torch.float64)
    out = lime(lambda v: v @ w + 1.5, x, num_samples=200, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.coefficients, w, atol=1e-6, rtol=0)
    assert float(out.intercept) == pytest.approx(1.5)


def test_permutation_importance_ranks_the_informative_feature_first() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 4, generator=g)
    y = 3 * x[:, 2] + 0.5 * x[:, 0] + 0.1 * torch.randn(500, generator=g)

    def model(v: torch.Tensor) -> torch.Tensor:
        return 3 * v[:, 2] + 0.5 * v[:, 0]

    def neg_mse(out: torch.Tensor, target: torch.Tensor) -> float:
        return -float(((out - target) ** 2).mean())

    mean, std, score = permutation_importance(model, x, y, neg_mse, n_repeats=5, generator=torch.Generator().manual_seed(0))
    assert mean.argsort(descending=True).tolist()[:2] == [2, 0]
    assert mean[1].abs() < 1e-9 and mean[3].abs() < 1e-9  # unused features: no drop at all
    assert score > -0.02 and (std >= 0).all()


def test_partial_dependence_one_and_two_features() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g, dtype=torch.float64)

    def model(v: torch.Tensor) -> torch.Tensor:
        return v[:, 0] ** 2 + v[:, 1] * v[:, 2]

    (grid,), pd = partial_dependence(model, x, 0, grid_points=7)
    torch.testing.assert_close(pd, grid**2 + (x[:, 1] * x[:, 2]).mean())
    lo, hi = torch.quantile(x[:, 0], torch.tensor([0.05, 0.95], dtype=torch.float64))
    assert grid[0] == pytest.approx(float(lo)) and grid[-1] == pytest.approx(float(hi))
    (g1, g2), pd2 = partial_dependence(model, x, (1, 2), grid_points=5)
    assert pd2.shape == (5, 5)
    torch.testing.assert_close(pd2, (x[:, 0] ** 2).mean() + g1[:, None] * g2[None, :])


def test_bad_inputs_are_refused() -> None:
    net = _net()
    x = torch.randn(2, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="returns 3 outputs per example: give target"):
        saliency(net, x)
    with pytest.raises(ValueError, match="target 5 out of range for 3 outputs"):
        saliency(net, x, 5)
    with pytest.raises(ValueError, match="window must have one size per feature dimension"):
        occlusion(net, x, (2, 2), target=0)
    with pytest.raises(ValueError, match="unknown method 'simpson'"):
        integrated_gradients(net, x, target=0, method="simpson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="feature_groups must number the groups"):
        kernel_shap(lambda v: v.sum(1), torch.zeros(3), feature_groups=torch.tensor([0, 2, 2]))
    with pytest.raises(ValueError, match="M = 17 is too many"):
        exact_shapley(lambda v: v.sum(1), torch.zeros(17))
    with pytest.raises(ValueError, match="features must be one or two column indices"):
        partial_dependence(lambda v: v.sum(1), torch.zeros(4, 3), 3)
