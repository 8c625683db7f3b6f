"""The fused link kernel equals update_link + directional_weightings (values and gradients)."""

import pytest
import torch

from memory_nets import DNC, fused_link
from memory_nets import addressing as A

needs_kernel = pytest.mark.skipif(
    fused_link.library(torch.float32) is None or fused_link.library(torch.float64) is None,
    reason="no C compiler (the torch path is used and tested elsewhere)",
)


def _inputs(b, hw, n, r, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    link = torch.rand(b, hw, n, n, generator=g, dtype=dtype) * 0.1
    precedence = torch.softmax(torch.randn(b, hw, n, generator=g, dtype=dtype), -1) * 0.7
    write = torch.softmax(3 * torch.randn(b, hw, n, generator=g, dtype=dtype), -1) * 0.9
    reads = torch.softmax(3 * torch.randn(b, r, n, generator=g, dtype=dtype), -1)
    return link, precedence, write, reads


def _reference(link, precedence, write, reads):
    new = A.update_link(link, precedence, write)
    return (new, *A.directional_weightings(new, reads))


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "shape",
    [(3, 1, 7, 2), (2, 2, 9, 3), (4, 1, 128, 4), (1, 3, 5, 1), (2, 1, 1, 2), (1, 2, 6, 2)],
    ids=lambda s: "b{}-hw{}-n{}-r{}".format(*s),
)
def test_kernel_equals_torch_values_and_gradients(dtype, shape):
    """Rows not a multiple of the kernel's block (n = 7, 9, 5), several write heads, and batch 1
    with one read head (the read weightings reach the kernel as an expanded, strided view)."""
    inputs = _inputs(*shape, dtype)
    ours = [t.clone().requires_grad_() for t in inputs]
    ref = [t.clone().requires_grad_() for t in inputs]
    assert fused_link.uses_kernel(ours[0])
    out = fused_link.link_step(*ours)
    expected = _reference(*ref)
    tol = {"atol": 1e-6, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-10}
    for a, b in zip(out, expected, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **tol)
    weights = [torch.randn_like(o) for o in out]
    sum((o * w).sum() for o, w in zip(out, weights, strict=True)).backward()
    sum((o * w).sum() for o, w in zip(expected, weights, strict=True)).backward()
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a.grad, b.grad, **tol)


@needs_kernel
@pytest.mark.parametrize("used", [0, 1, 2])
def test_gradient_when_only_one_output_is_used(used):
    """Unused outputs reach the backward kernel as missing gradients (None or zeros)."""
    inputs = _inputs(2, 2, 6, 3, torch.float64)
    ours = [t.clone().requires_grad_() for t in inputs]
    ref = [t.clone().requires_grad_() for t in inputs]
    fused_link.link_step(*ours)[used].square().sum().backward()
    _reference(*ref)[used].square().sum().backward()
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a.grad, torch.zeros_like(a) if b.grad is None else b.grad)


@needs_kernel
def test_kernel_gradcheck_in_double():
    inputs = [t.requires_grad_() for t in _inputs(2, 2, 6, 3, torch.float64)]
    assert torch.autograd.gradcheck(fused_link.link_step, inputs)


@needs_kernel
def test_link_invariants_hold_on_the_kernel_path():
    """Zero diagonal, rows and columns summing to at most 1, over many random soft writes."""
    b, n = 4, 16
    link, precedence = torch.zeros(b, 1, n, n), torch.zeros(b, 1, n)
    reads = torch.softmax(torch.randn(b, 2, n), -1)
    for _ in range(30):
        write = torch.softmax(3 * torch.randn(b, 1, n), -1) * torch.rand(b, 1, 1)
        link, forward, backward = fused_link.link_step(link, precedence, write, reads)
        precedence = A.update_precedence(precedence, write)
        assert torch.diagonal(link, dim1=2, dim2=3).abs().max() == 0
        assert link.sum(2).max() <= 1 + 1e-5 and link.sum(3).max() <= 1 + 1e-5
        assert forward.sum(-1).max() <= 1 + 1e-5 and backward.sum(-1).max() <= 1 + 1e-5


@needs_kernel
def test_double_backward_is_refused_not_silently_zero():
    inputs = [t.requires_grad_() for t in _inputs(1, 1, 4, 1, torch.float64)]
    (g,) = torch.autograd.grad(fused_link.link_step(*inputs)[1].sum(), inputs[3], create_graph=True)
    with pytest.raises(RuntimeError, match=r"differentiable|does not require grad"):
        g.sum().backward()


def test_torch_path_when_the_kernel_is_off(monkeypatch):
    inputs = _inputs(2, 1, 5, 2, torch.float32)
    assert not fused_link.uses_kernel(inputs[0].to(torch.float16))  # no kernel for this dtype
    for a, b in zip(fused_link.link_step(*inputs, kernel=False), _reference(*inputs), strict=True):
        torch.testing.assert_close(a, b)
    monkeypatch.setitem(fused_link._LIBRARIES, torch.float32, None)  # as with no compiler
    assert not fused_link.uses_kernel(inputs[0])
    for a, b in zip(fused_link.link_step(*inputs), _reference(*inputs), strict=True):
        torch.testing.assert_close(a, b)


@needs_kernel
@pytest.mark.parametrize("write_heads", [1, 2])
def test_dnc_with_and_without_the_kernel_agree(write_heads):
    """A whole DNC sequence: outputs, final state and parameter gradients are the same."""
    torch.manual_seed(0)
    models = []
    for use in (True, False):
        torch.manual_seed(0)
        m = DNC(5, 3, controller_size=16, memory_slots=10, word_size=4, read_heads=3, write_heads=write_heads)
        m.double().fused_link = use
        models.append(m)
    x = torch.randn(8, 3, 5, dtype=torch.float64)
    results = []
    for m in models:
        y, state = m(x)
        y.square().sum().backward()
        results.append((y, state, [p.grad for p in m.parameters()]))
    (y1, s1, g1), (y2, s2, g2) = results
    torch.testing.assert_close(y1, y2)
    for a, b in zip(s1, s2, strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
@needs_kernel
def test_compiled_dnc_step_matches_eager_with_the_kernel_op():
    """The compiled step calls the kernel as torch ops (drls::dnc_link_v1): same values and grads."""
    torch.manual_seed(0)
    eager = DNC(5, 3, controller_size=16, memory_slots=8, word_size=4, read_heads=2)
    compiled = DNC(5, 3, controller_size=16, memory_slots=8, word_size=4, read_heads=2)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_step()
    x = torch.randn(5, 2, 5)
    grads = []
    for m in (eager, compiled):
        y, _ = m(x)
        y.sum().backward()
        grads.append([p.grad for p in m.parameters()])
    torch.testing.assert_close(compiled(x)[0], eager(x)[0], atol=1e-5, rtol=1e-5)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.gpu
def test_cuda_takes_the_torch_path_and_agrees_with_the_cpu_kernel():
    inputs = _inputs(2, 2, 9, 3, torch.float32)
    cuda = [t.cuda().requires_grad_() for t in inputs]
    cpu = [t.clone().requires_grad_() for t in inputs]
    assert not fused_link.uses_kernel(cuda[0])
    out_cuda, out_cpu = fused_link.link_step(*cuda), fused_link.link_step(*cpu)
    for a, b in zip(out_cuda, out_cpu, strict=True):
        torch.testing.assert_close(a.cpu(), b, atol=1e-5, rtol=1e-5)
    sum(o.sum() for o in out_cuda).backward()
    sum(o.sum() for o in out_cpu).backward()
    for a, b in zip(cuda, cpu, strict=True):
        torch.testing.assert_close(a.grad.cpu(), b.grad, atol=1e-5, rtol=1e-5)
