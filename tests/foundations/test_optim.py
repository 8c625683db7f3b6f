"""From-scratch optimizers against torch.optim: same trajectories, same state, clear errors."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable

import pytest
import torch
from torch import nn

from foundations import optim

STEPS = 200


def _least_squares() -> tuple[list[torch.Tensor], Callable[[list[torch.Tensor]], torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 10, generator=g, dtype=torch.float64)
    b = torch.randn(64, 3, generator=g, dtype=torch.float64)
    w = torch.randn(10, 3, generator=g, dtype=torch.float64)
    c = torch.randn(3, generator=g, dtype=torch.float64)

    def loss(params: list[torch.Tensor]) -> torch.Tensor:
        return ((a @ params[0] + params[1] - b) ** 2).mean()

    return [w, c], loss


def _small_mlp() -> tuple[list[torch.Tensor], Callable[[list[torch.Tensor]], torch.Tensor]]:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 5, generator=g, dtype=torch.float64)
    y = torch.sin(x.sum(1, keepdim=True))
    init = [p.detach().clone() for p in net.parameters()]

    def loss(params: list[torch.Tensor]) -> torch.Tensor:
        h = torch.tanh(x @ params[0].T + params[1])
        return ((h @ params[2].T + params[3] - y) ** 2).mean()

    return init, loss


PROBLEMS = {"least_squares": _least_squares, "mlp": _small_mlp}


def _grid(**options: list) -> list[dict]:
    keys = list(options)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*options.values())]


def _valid_sgd(kw: dict) -> bool:
    return not kw["nesterov"] or (kw["momentum"] > 0 and kw["dampening"] == 0)


CASES: list[tuple[type, type, dict]] = []
for kw in _grid(lr=[0.05], momentum=[0.0, 0.9], dampening=[0.0, 0.3], weight_decay=[0.0, 0.01],
                nesterov=[False, True], maximize=[False, True]):
    if _valid_sgd(kw):
        CASES.append((optim.SGD, torch.optim.SGD, kw))
for kw in _grid(lr=[0.1], lr_decay=[0.0, 0.01], weight_decay=[0.0, 0.01],
                initial_accumulator_value=[0.0, 0.1], eps=[1e-10, 1e-3], maximize=[False, True]):
    CASES.append((optim.AdaGrad, torch.optim.Adagrad, kw))
for kw in _grid(lr=[0.01], alpha=[0.99, 0.9], eps=[1e-8], weight_decay=[0.0, 0.01],
                momentum=[0.0, 0.9], centered=[False, True], maximize=[False, True]):
    CASES.append((optim.RMSProp, torch.optim.RMSprop, kw))
for kw in _grid(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.9)], eps=[1e-8, 1e-3],
                weight_decay=[0.0, 0.01], amsgrad=[False, True], maximize=[False, True]):
    CASES.append((optim.Adam, torch.optim.Adam, kw))
for kw in _grid(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.9)], weight_decay=[0.0, 0.1],
                amsgrad=[False, True], maximize=[False, True]):
    CASES.append((optim.AdamW, torch.optim.AdamW, kw))


def _case_id(case: tuple[type, type, dict]) -> str:
    ours, _, kw = case
    return ours.__name__ + "-" + ",".join(f"{k}={v}" for k, v in kw.items() if k != "lr")


def _trajectory(opt_cls: type, kw: dict, problem: str, steps: int = STEPS) -> list[torch.Tensor]:
    init, loss_fn = PROBLEMS[problem]()
    params = [p.clone().requires_grad_(True) for p in init]
    opt = opt_cls(params, **kw)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    return [p.detach() for p in params]


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_torch_optim_for_200_steps(case: tuple[type, type, dict], problem: str) -> None:
    ours_cls, ref_cls, kw = case
    ours = _trajectory(ours_cls, kw, problem)
    ref = _trajectory(ref_cls, {**kw, "foreach": False}, problem)
    start = PROBLEMS[problem]()[0]
    moved = max((r - s).abs().max().item() for r, s in zip(ref, start, strict=True))
    assert moved > 1e-3, "the reference did not move: the comparison would prove nothing"
    for o, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(o, r, atol=1e-6, rtol=0)


def test_every_optimizer_and_option_is_covered() -> None:
    covered = {c[0] for c in CASES}
    assert covered == set(optim.OPTIMIZERS.values())
    assert len(CASES) > 100


def _roundtrip_cases() -> list[tuple[type, dict]]:
    return [
        (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
        (optim.AdaGrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
        (optim.RMSProp, dict(lr=0.01, momentum=0.9, centered=True)),
        (optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
        (optim.AdamW, dict(lr=0.01, amsgrad=True)),
    ]


@pytest.mark.parametrize("opt_cls,kw", _roundtrip_cases(), ids=lambda v: getattr(v, "__name__", ""))
def test_state_dict_roundtrip_resumes_exactly(opt_cls: type, kw: dict) -> None:
    init, loss_fn = _small_mlp()
    uninterrupted = _trajectory(opt_cls, kw, "mlp", steps=100)

    params = [p.clone().requires_grad_(True) for p in init]
    opt = opt_cls(params, **kw)
    for _ in range(40):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    params2 = [p.clone().requires_grad_(True) for p in saved["params"]]
    opt2 = opt_cls(params2, **kw)
    opt2.load_state_dict(saved["opt"])
    for _ in range(60):
        opt2.zero_grad()
        loss_fn(params2).backward()
        opt2.step()
    for a, b in zip(params2, uninterrupted, strict=True):
        assert torch.equal(a.detach(), b)


@pytest.mark.parametrize(
    "ours_cls,ref_cls,kw",
    [
        (optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
        (optim.RMSProp, torch.optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
        (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    ],
    ids=["adam", "rmsprop", "sgd"],
)
def test_state_dict_interchangeable_with_torch_optim(ours_cls: type, ref_cls: type, kw: dict) -> None:
    """A torch.optim checkpoint resumes in ours (same state keys), giving the same trajectory."""
    init, loss_fn = _small_mlp()
    params = [p.clone().requires_grad_(True) for p in init]
    ref = ref_cls(params, **kw, foreach=False)
    for _ in range(30):
        ref.zero_grad()
        loss_fn(params).backward()
        ref.step()
    mine_params = [p.detach().clone().requires_grad_(True) for p in params]
    mine = ours_cls(mine_params, **kw)
    buffer = io.BytesIO()  # a checkpoint, not the live tensors (load_state_dict may alias them)
    torch.save(ref.state_dict(), buffer)
    buffer.seek(0)
    mine.load_state_dict(torch.load(buffer, weights_only=True))
    for _ in range(30):
        for o, ps in ((ref, params), (mine, mine_params)):
            o.zero_grad()
            loss_fn(ps).backward()
            o.step()
    for a, b in zip(mine_params, params, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_param_groups_and_lr_scheduler() -> None:
    w1 = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    w2 = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([{"params": [w1]}, {"params": [w2], "lr": 0.5}], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(2):
        opt.zero_grad()
        (w1.sum() + w2.sum()).backward()
        opt.step()
        sched.step()
    # grads are 1: w1 = -(0.1 + 0.05), w2 = -(0.5 + 0.25)
    torch.testing.assert_close(w1.detach(), torch.full((3,), -0.15, dtype=torch.float64))
    torch.testing.assert_close(w2.detach(), torch.full((3,), -0.75, dtype=torch.float64))


def test_closure_returns_loss_and_params_without_grad_are_skipped() -> None:
    w = torch.ones(2, requires_grad=True)
    frozen = torch.ones(2, requires_grad=True)
    opt = optim.Adam([w, frozen], lr=0.1)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(2.0)
    assert torch.equal(frozen.detach(), torch.ones(2))
    assert frozen not in opt.state
    assert (w.detach() < 1).all()


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda p: optim.SGD(p, lr=-0.1), "lr must be a finite number > 0, got -0.1"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1.0), "weight_decay must be"),
        (lambda p: optim.AdaGrad(p, initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda p: optim.RMSProp(p, alpha=1.0), r"alpha must be in \[0, 1\), got 1.0"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.5)), r"betas\[1\] must be in \[0, 1\), got 1.5"),
        (lambda p: optim.Adam(p, betas=(0.9,)), "betas must be a pair"),
        (lambda p: optim.AdamW(p, eps=float("nan")), "eps must be a finite number >= 0"),
    ],
)
def test_bad_hyperparameters_are_refused(build: Callable, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build([torch.zeros(2, requires_grad=True)])


def test_bad_hyperparameters_in_an_added_group_are_refused() -> None:
    opt = optim.Adam([torch.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="lr must be"):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], "lr": 0.0})


def test_sparse_gradients_are_refused() -> None:
    emb = nn.Embedding(10, 3, sparse=True)
    opt = optim.Adam(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        opt.step()
