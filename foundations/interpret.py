"""Explaining a model's outputs: gradient saliency, integrated gradients, occlusion, LIME,
KernelSHAP (and exact Shapley values), permutation importance and partial dependence.

Every method takes a plain callable ``f`` mapping a batch ``[batch, *features]`` to outputs
``[batch]`` or ``[batch, outputs]`` (with ``target`` picking the output: a class, an action's Q
value), so it applies to any model: a classifier, a regressor, a DQN's Q-network on uint8
Atari frames (pass ``lambda x: qnet(x)`` on float inputs; gradients need float inputs).

- Gradient methods (:func:`saliency`, :func:`integrated_gradients`) differentiate ``f``.
- Perturbation methods (:func:`occlusion`, :func:`lime`, :func:`kernel_shap`,
  :func:`exact_shapley`, :func:`permutation_importance`, :func:`partial_dependence`) only call
  it, in batches of ``batch_size`` inputs, under ``torch.no_grad``.

Conventions follow Captum where both have the method (saliency's ``abs``, integrated gradients'
Gauss-Legendre rule and convergence delta, occlusion's window positions and averaging), and
tests compare against Captum where it is installed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from foundations.checks import positive_int

__all__ = [
    "Linear",
    "exact_shapley",
    "integrated_gradients",
    "kernel_shap",
    "lime",
    "occlusion",
    "partial_dependence",
    "permutation_importance",
    "saliency",
]

Model = Callable[[Tensor], Tensor]
Target = int | Tensor | None


def _select(out: Tensor, target: Target) -> Tensor:
    """Outputs ``[batch]`` of ``target`` from ``out [batch]`` or ``[batch, outputs]``."""
    if out.ndim == 1:
        if target is not None and not (isinstance(target, int) and target == 0):
            raise ValueError("the model returns one output per example; leave target=None")
        return out
    if out.ndim != 2:
        raise ValueError(f"the model must return [batch] or [batch, outputs], got shape {list(out.shape)}")
    if target is None:
        if out.shape[1] != 1:
            raise ValueError(f"the model returns {out.shape[1]} outputs per example: give target")
        return out[:, 0]
    if isinstance(target, int):
        if not 0 <= target < out.shape[1]:
            raise ValueError(f"target {target} out of range for {out.shape[1]} outputs")
        return out[:, target]
    target = target.to(out.device).reshape(-1)
    if target.shape[0] != out.shape[0]:
        raise ValueError(f"target has {target.shape[0]} entries for a batch of {out.shape[0]}")
    return out.gather(1, target[:, None].long()).squeeze(1)


def _batched(f: Model, inputs: Tensor, target: Target, batch_size: int) -> Tensor:
    """``_select(f(inputs), target)`` in chunks, no gradients: ``[n]``."""
    with torch.no_grad():
        return torch.cat([_select(f(chunk), target) for chunk in inputs.split(batch_size)])


# ------------------------------------------------------------------------------------ gradients
def saliency(f: Model, x: Tensor, target: Target = None, abs: bool = True) -> Tensor:
    """Gradient of the target output with respect to the input (Simonyan et al. 2014), ``[batch, *features]``.

    ``abs=True`` (Captum's default) returns magnitudes.
    """
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_select(f(x), target).sum(), x)
    return grad.abs() if abs else grad


def _ig_rule(method: str, steps: int) -> tuple[list[float], list[float]]:
    """(alphas, weights) of a quadrature rule on [0, 1] (Captum's conventions)."""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return list(0.5 * (nodes + 1)), list(0.5 * weights)
    if method == "riemann_trapezoid":
        if steps < 2:
            raise ValueError("riemann_trapezoid needs steps >= 2")
        w = [1.0 / (steps - 1)] * steps
        w[0] = w[-1] = 0.5 / (steps - 1)
        return list(np.linspace(0, 1, steps)), w
    offsets = {"riemann_left": (0.0, 1 - 1 / steps), "riemann_right": (1 / steps, 1.0),
               "riemann_middle": (0.5 / steps, 1 - 0.5 / steps)}  # fmt: skip
    if method not in offsets:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted([*offsets, 'gausslegendre', 'riemann_trapezoid'])}")
    return list(np.linspace(*offsets[method], steps)), [1.0 / steps] * steps


class Attribution(NamedTuple):
    """Attributions ``[batch, *features]`` and the completeness gap ``[batch]``:
    ``sum(attributions) - (f(x) - f(baseline))``."""

    attributions: Tensor
    delta: Tensor


def integrated_gradients(
    f: Model,
    x: Tensor,
    baseline: Tensor | float = 0.0,
    target: Target = None,
    steps: int = 64,
    method: Literal["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"] = "gausslegendre",
    batch_size: int = 512,
) -> Attribution:
    """Integrated gradients (Sundararajan et al. 2017): ``(x - x') * int_0^1 grad f(x' + a (x - x')) da``.

    The integral uses ``steps`` points of ``method`` (Gauss-Legendre by default, as in Captum),
    evaluated ``batch_size`` inputs at a time. Completeness: the attributions of an example add
    up to ``f(x) - f(x')``; ``delta`` reports the numerical gap. (The trapezoid rule here weights
    its points by their spacing ``1 / (steps - 1)``; Captum's uses ``1 / steps``, which scales
    its attributions by ``(steps - 1) / steps``. The other rules agree with Captum's.)
    """
    positive_int("steps", steps)
    alphas, weights = _ig_rule(method, steps)
    x = x.detach()
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    diff = x - base
    total = torch.zeros_like(x)
    per_chunk = max(1, batch_size // max(1, x.shape[0]))
    for start in range(0, steps, per_chunk):
        a = torch.tensor(alphas[start : start + per_chunk], dtype=x.dtype, device=x.device)
        w = torch.tensor(weights[start : start + per_chunk], dtype=x.dtype, device=x.device)
        shape = (len(a),) + (1,) * x.ndim
        points = (base.unsqueeze(0) + a.view(shape) * diff.unsqueeze(0)).reshape(-1, *x.shape[1:])
        points.requires_grad_(True)
        tgt = target.repeat(len(a)) if isinstance(target, Tensor) else target
        (grad,) = torch.autograd.grad(_select(f(points), tgt).sum(), points)
        total += (grad.view(len(a), *x.shape) * w.view(shape)).sum(0)
    attributions = total * diff
    with torch.no_grad():
        gap = _select(f(x), target) - _select(f(base), target)
    return Attribution(attributions, attributions.flatten(1).sum(1) - gap)


# --------------------------------------------------------------------------------- perturbation
def occlusion(
    f: Model,
    x: Tensor,
    window: Sequence[int],
    strides: int | Sequence[int] = 1,
    baseline: float | Tensor = 0.0,
    target: Target = None,
    batch_size: int = 256,
) -> Tensor:
    """Occlusion (Zeiler & Fergus 2014): slide a ``window`` over each example ``x [batch, *features]``,
    replace it by ``baseline`` and record ``f(x) - f(occluded)``; each feature's attribution is
    the mean of the differences of the windows covering it. ``[batch, *features]``.

    Windows start at multiples of the stride in each dimension, ``ceil((D - W) / S) + 1``
    positions per dimension, the last ones cut at the border (Captum's layout).
    """
    feat = tuple(x.shape[1:])
    window = tuple(int(w) for w in window)
    if len(window) != len(feat):
        raise ValueError(f"window must have one size per feature dimension {list(feat)}, got {list(window)}")
    strides_t = (strides,) * len(feat) if isinstance(strides, int) else tuple(strides)
    if len(strides_t) != len(feat) or any(s < 1 for s in strides_t):
        raise ValueError(f"strides must be positive, one per feature dimension, got {strides}")
    if any(w < 1 or w > d for w, d in zip(window, feat, strict=True)):
        raise ValueError(f"window {list(window)} must be between 1 and the input size {list(feat)}")
    ranges = [range(0, math.ceil((d - w) / s) * s + 1, s) for d, w, s in zip(feat, window, strides_t, strict=True)]
    masks = []
    for corner in itertools.product(*ranges):
        m = torch.zeros(feat, dtype=torch.bool, device=x.device)
        m[tuple(slice(c, c + w) for c, w in zip(corner, window, strict=True))] = True
        masks.append(m)
    mask = torch.stack(masks)  # [P, *features]
    weight = mask.sum(0).to(x.dtype)
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    out = torch.zeros_like(x)
    for i in range(x.shape[0]):
        xi = x[i]
        tgt = target[i : i + 1] if isinstance(target, Tensor) else target
        full = _batched(f, xi.unsqueeze(0), tgt, 1)
        occluded = torch.where(mask, base.expand_as(xi) if base.ndim else base, xi.unsqueeze(0))
        tgt_many = tgt.expand(len(mask)) if isinstance(tgt, Tensor) else tgt
        diffs = full - _batched(f, occluded, tgt_many, batch_size)  # [P]
        out[i] = (diffs.view(-1, *([1] * len(feat))) * mask).sum(0) / weight
    return out


def _groups(x: Tensor, feature_groups: Tensor | None) -> tuple[Tensor, int]:
    """Group id per feature element (``[*features]``, ids 0..M-1) and M."""
    if feature_groups is None:
        return torch.arange(x.numel(), device=x.device).view(x.shape), x.numel()
    groups = feature_groups.to(x.device).long()
    if groups.shape != x.shape:
        raise ValueError(f"feature_groups must have the example's shape {list(x.shape)}, got {list(groups.shape)}")
    ids = groups.unique()
    if not torch.equal(ids, torch.arange(len(ids), device=ids.device)):
        raise ValueError("feature_groups must number the groups 0, 1, ..., M-1")
    return groups, len(ids)


def _compose(x: Tensor, background: Tensor, coalitions: Tensor, groups: Tensor) -> Tensor:
    """Inputs ``[K * B, *features]``: ``x`` where the coalition holds the feature's group, else
    the background row (every coalition against every background row)."""
    keep = coalitions[:, groups.flatten()].view(coalitions.shape[0], 1, *x.shape)  # [K, 1, *f]
    mixed = torch.where(keep, x.unsqueeze(0).unsqueeze(0), background.unsqueeze(0))  # [K, B, *f]
    return mixed.reshape(-1, *x.shape)


def _value(f: Model, x: Tensor, background: Tensor, coalitions: Tensor, groups: Tensor, target: Target,
           batch_size: int) -> Tensor:  # fmt: skip
    """Mean output over the background for each coalition: ``[K]``."""
    values = []
    per = max(1, batch_size // background.shape[0])
    for chunk in coalitions.split(per):
        out = _batched(f, _compose(x, background, chunk, groups), target, batch_size)
        values.append(out.view(len(chunk), background.shape[0]).mean(1))
    return torch.cat(values)


def _background(x: Tensor, baseline: Tensor | float) -> Tensor:
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    if base.ndim == x.ndim + 1:
        if tuple(base.shape[1:]) != tuple(x.shape):
            raise ValueError(f"background rows must have shape {list(x.shape)}, got {list(base.shape[1:])}")
        return base
    return base.expand_as(x).unsqueeze(0)


class Linear(NamedTuple):
    """A local linear explanation: one coefficient per feature group ``[M]`` and the intercept
    (for SHAP: the expected value ``f`` over the background)."""

    coefficients: Tensor
    intercept: Tensor


def lime(
    f: Model,
    x: Tensor,
    target: Target = None,
    baseline: Tensor | float = 0.0,
    feature_groups: Tensor | None = None,
    num_samples: int = 1000,
    kernel_width: float = 0.25,
    ridge: float = 0.0,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
) -> Linear:
    """LIME (Ribeiro et al. 2016) for one example ``x [*features]``.

    Samples ``num_samples`` binary masks ``z`` over the M feature groups (the first is all
    ones), builds inputs with the groups where ``z = 0`` replaced by ``baseline``, weights them by
    ``exp(-d(z)^2 / kernel_width^2)`` with ``d`` the cosine distance from the all-ones mask, and
    fits a weighted (ridge) linear model ``f ~ intercept + coefficients . z``.
    """
    positive_int("num_samples", num_samples)
    groups, m = _groups(x, feature_groups)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    z = torch.rand(num_samples, m, generator=generator, device=gen_device).to(x.device) < 0.5
    z[0] = True
    y = _value(f, x, _background(x, baseline), z, groups, target, batch_size).double()
    zd = z.double()
    cos = zd.sum(1) / (zd.norm(dim=1).clamp_min(1e-12) * math.sqrt(m))
    weights = torch.exp(-((1 - cos) ** 2) / kernel_width**2)
    design = torch.cat([torch.ones(num_samples, 1, dtype=torch.float64, device=x.device), zd], dim=1)
    sw = weights.sqrt()[:, None]
    a, b = design * sw, y[:, None] * sw.squeeze(1)[:, None]
    if ridge > 0:
        reg = math.sqrt(ridge) * torch.eye(m + 1, dtype=torch.float64, device=x.device)[1:]
        a, b = torch.cat([a, reg]), torch.cat([b, torch.zeros(m, 1, dtype=torch.float64, device=x.device)])
    solution = torch.linalg.lstsq(a.cpu(), b.cpu(), driver="gelsd").solution.squeeze(1).to(x.device)
    return Linear(solution[1:].to(x.dtype), solution[0].to(x.dtype))


def _shapley_kernel(m: int, sizes: Tensor) -> Tensor:
    """Shapley kernel weight of a coalition of each size (Lundberg & Lee 2017)."""
    binom = torch.tensor([math.comb(m, int(s)) for s in sizes], dtype=torch.float64)
    s = sizes.double()
    return (m - 1) / (binom * s * (m - s))


def kernel_shap(
    f: Model,
    x: Tensor,
    baseline: Tensor | float = 0.0,
    target: Target = None,
    feature_groups: Tensor | None = None,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
) -> Linear:
    """KernelSHAP (Lundberg & Lee 2017) for one example ``x [*features]``.

    The value of a coalition S of feature groups is the mean of ``f`` over inputs taking S from
    ``x`` and the rest from each background row (``baseline``: a value, an input-shaped tensor,
    or background rows ``[B, *features]``). The Shapley values solve the Shapley-kernel
    weighted least squares with the efficiency constraint ``sum(phi) = v(all) - v(none)``.
    With every coalition enumerated (``num_samples`` None or >= 2^M - 2, the default for
    M <= 16) the result is the exact Shapley values; otherwise coalitions are sampled in
    complementary pairs, sizes drawn in proportion to the kernel's mass.
    """
    groups, m = _groups(x, feature_groups)
    background = _background(x, baseline)
    device = x.device
    ends = torch.stack([torch.zeros(m, dtype=torch.bool), torch.ones(m, dtype=torch.bool)]).to(device)
    v_none, v_all = _value(f, x, background, ends, groups, target, batch_size).double()
    if m == 1:
        return Linear(torch.stack([v_all - v_none]).to(x.dtype), v_none.to(x.dtype))
    exhaustive = 2**m - 2
    if num_samples is None:
        num_samples = exhaustive if m <= 16 else 2048
    positive_int("num_samples", num_samples)
    if num_samples >= exhaustive:
        codes = torch.arange(1, 2**m - 1)
        z = ((codes[:, None] >> torch.arange(m)) & 1).bool()
        w = _shapley_kernel(m, z.sum(1))
    else:
        sizes = torch.arange(1, m)
        mass = _shapley_kernel(m, sizes) * torch.tensor([math.comb(m, int(s)) for s in sizes], dtype=torch.float64)
        half = (num_samples + 1) // 2
        drawn = sizes[torch.multinomial(mass / mass.sum(), half, replacement=True, generator=generator)]
        ranks = torch.rand(half, m, generator=generator).argsort(1).argsort(1)
        first = ranks < drawn[:, None]
        z = torch.cat([first, ~first])[:num_samples]
        w = torch.ones(len(z), dtype=torch.float64)
    z = z.to(device)
    y = _value(f, x, background, z, groups, target, batch_size).double() - v_none
    total = v_all - v_none
    zd = z.double()
    last = zd[:, -1:]
    design = (zd[:, :-1] - last) * w.sqrt().to(device)[:, None]
    rhs = (y - last.squeeze(1) * total) * w.sqrt().to(device)
    head = torch.linalg.lstsq(design.cpu(), rhs.cpu()[:, None], driver="gelsd").solution.squeeze(1).to(device)
    phi = torch.cat([head, (total - head.sum())[None]])
    return Linear(phi.to(x.dtype), v_none.to(x.dtype))


def exact_shapley(
    f: Model,
    x: Tensor,
    baseline: Tensor | float = 0.0,
    target: Target = None,
    feature_groups: Tensor | None = None,
    batch_size: int = 1024,
) -> Linear:
    """Shapley values by enumeration of all 2^M coalitions (M <= 16):
    ``phi_i = sum_S |S|! (M - |S| - 1)! / M! (v(S + i) - v(S))``, same value function as
    :func:`kernel_shap`."""
    groups, m = _groups(x, feature_groups)
    if m > 16:
        raise ValueError(f"exact Shapley values enumerate 2^M coalitions; M = {m} is too many (max 16)")
    codes = torch.arange(2**m)
    z = ((codes[:, None] >> torch.arange(m)) & 1).bool()
    v = _value(f, x, _background(x, baseline), z.to(x.device), groups, target, batch_size).double().cpu()
    phi = torch.zeros(m, dtype=torch.float64)
    fact = [math.factorial(k) for k in range(m + 1)]
    for code in range(2**m):
        size = bin(code).count("1")
        for i in range(m):
            if not code >> i & 1:
                phi[i] += fact[size] * fact[m - size - 1] / fact[m] * (v[code | 1 << i] - v[code])
    return Linear(phi.to(x.dtype).to(x.device), v[0].to(x.dtype).to(x.device))


# ------------------------------------------------------------------------------ global methods
def permutation_importance(
    f: Model,
    x: Tensor,
    y: Tensor,
    metric: Callable[[Tensor, Tensor], float | Tensor],
    n_repeats: int = 5,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, float]:
    """Permutation feature importance (Breiman 2001; Fisher et al. 2019) on tabular ``x [n, F]``.

    For each feature, shuffle its column ``n_repeats`` times and record the drop of
    ``metric(f(x), y)`` (higher is better, e.g. accuracy or negative MSE). Returns the mean
    drops ``[F]``, their standard deviations ``[F]`` and the unshuffled score.
    """
    positive_int("n_repeats", n_repeats)
    if x.ndim != 2:
        raise ValueError(f"permutation_importance expects tabular x [n, features], got {list(x.shape)}")
    with torch.no_grad():
        score = float(metric(f(x), y))
        drops = torch.zeros(x.shape[1], n_repeats, dtype=torch.float64)
        for j in range(x.shape[1]):
            for r in range(n_repeats):
                perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
                shuffled = x.clone()
                shuffled[:, j] = x[perm, j]
                drops[j, r] = score - float(metric(f(shuffled), y))
    std = drops.std(1) if n_repeats > 1 else torch.zeros(x.shape[1], dtype=torch.float64)
    return drops.mean(1), std, score


def partial_dependence(
    f: Model,
    x: Tensor,
    features: int | tuple[int, int],
    target: Target = None,
    grid_points: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
    batch_size: int = 4096,
) -> tuple[list[Tensor], Tensor]:
    """Partial dependence (Friedman 2001) of the output on one or two columns of ``x [n, F]``.

    For each grid value (``grid_points`` evenly spaced between the given percentiles of the
    column, or its distinct values when there are fewer), set the column(s) to it in every row
    and average the output. Returns the grid(s) and the averages ``[G]`` or ``[G1, G2]``.
    """
    positive_int("grid_points", grid_points)
    cols = (features,) if isinstance(features, int) else tuple(features)
    if len(cols) not in (1, 2) or any(not 0 <= c < x.shape[1] for c in cols):
        raise ValueError(f"features must be one or two column indices in [0, {x.shape[1]}), got {features}")
    grids = []
    for c in cols:
        column = x[:, c]
        distinct = column.unique()
        if len(distinct) <= grid_points:
            grids.append(distinct)
        else:
            lo, hi = torch.quantile(column.double(), torch.tensor(percentiles, dtype=torch.float64, device=x.device))
            grids.append(torch.linspace(float(lo), float(hi), grid_points, dtype=x.dtype, device=x.device))
    combos = list(itertools.product(*[g.tolist() for g in grids]))
    values = []
    for combo in combos:
        modified = x.clone()
        for c, v in zip(cols, combo, strict=True):
            modified[:, c] = v
        values.append(_batched(f, modified, target, batch_size).double().mean())
    return grids, torch.stack(values).view(*[len(g) for g in grids]).to(x.dtype)
