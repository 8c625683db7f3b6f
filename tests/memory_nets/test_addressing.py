"""Addressing functions: hand-computed values, the papers' invariants, and gradcheck."""

import pytest
import torch

from memory_nets import addressing as A


def _dist(*shape, gen=None, dtype=torch.float64):
    return torch.softmax(torch.randn(*shape, generator=gen, dtype=dtype), dim=-1)


def test_content_weighting_matches_hand_computation():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    key = torch.tensor([[[1.0, 0.0]]])
    w = A.content_weighting(memory, key, torch.tensor([[2.0]]))
    cos = torch.tensor([1.0, 0.0, 1 / 2**0.5])
    expected = torch.softmax(2.0 * cos, dim=0)
    torch.testing.assert_close(w[0, 0], expected, atol=1e-5, rtol=0)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_content_weighting_is_finite_on_zero_memory_and_zero_key():
    w = A.content_weighting(torch.zeros(2, 4, 3), torch.zeros(2, 1, 3), torch.ones(2, 1))
    torch.testing.assert_close(w, torch.full((2, 1, 4), 0.25))


def test_interpolation_gate_ends():
    c, p = _dist(2, 3, 5), _dist(2, 3, 5)
    torch.testing.assert_close(A.interpolate(c, p, torch.ones(2, 3, dtype=torch.float64)), c)
    torch.testing.assert_close(A.interpolate(c, p, torch.zeros(2, 3, dtype=torch.float64)), p)
    mixed = A.interpolate(c, p, torch.full((2, 3), 0.25, dtype=torch.float64))
    torch.testing.assert_close(mixed, 0.25 * c + 0.75 * p)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_shift_moves_one_hot_in_the_papers_direction(offset):
    n = 6
    w = torch.zeros(1, 1, n)
    w[0, 0, n - 1] = 1.0  # the last slot, so +1 wraps around to slot 0
    shift = torch.zeros(1, 1, 3)
    shift[0, 0, offset + 1] = 1.0
    out = A.circular_shift(w, shift)
    assert out[0, 0].argmax().item() == (n - 1 + offset) % n
    assert out.sum().item() == pytest.approx(1.0)


def test_shift_is_the_papers_circular_convolution():
    gen = torch.Generator().manual_seed(0)
    w, s = _dist(2, 3, 7, gen=gen), _dist(2, 3, 5, gen=gen)  # shift range 2
    expected = torch.zeros_like(w)
    for i in range(7):
        for j, off in enumerate(range(-2, 3)):
            expected[..., i] += w[..., (i - off) % 7] * s[..., j]
    torch.testing.assert_close(A.circular_shift(w, s), expected)
    with pytest.raises(ValueError, match="odd"):
        A.circular_shift(w, s[..., :4])


def test_sharpening():
    w = _dist(2, 3, 8, gen=torch.Generator().manual_seed(0))
    torch.testing.assert_close(A.sharpen(w, torch.ones(2, 3, dtype=torch.float64)), w, atol=1e-5, rtol=0)
    sharp = A.sharpen(w, torch.full((2, 3), 50.0, dtype=torch.float64))
    assert torch.equal(sharp.argmax(-1), w.argmax(-1))
    top2 = w.topk(2, dim=-1).values
    expected_max = 1 / (1 + (top2[..., 1] / top2[..., 0]) ** 50)  # bound from the two largest
    assert (sharp.amax(-1) <= expected_max + 1e-9).all() and (sharp.amax(-1) > 0.5).all()
    torch.testing.assert_close(sharp.sum(-1), torch.ones(2, 3, dtype=torch.float64))
    # zeros in the weighting: no NaN in values or in the gradient of gamma
    zero = torch.tensor([[[1.0, 0.0, 0.0]]], dtype=torch.float64)
    gamma = torch.tensor([[2.0]], dtype=torch.float64, requires_grad=True)
    A.sharpen(zero, gamma).sum().backward()
    assert torch.isfinite(gamma.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sharpen_is_finite_for_extreme_gammas_on_flat_and_one_hot_weightings(dtype):
    """Large gamma on a flat weighting underflowed every w^gamma to 0 (0/0 = NaN) from gamma ~ 22
    at N = 128 in float32; in log space it stays a distribution, with finite gradients."""
    n = 128
    flat = torch.full((1, 1, n), 1.0 / n, dtype=dtype)
    one_hot = torch.zeros(1, 1, n, dtype=dtype)
    one_hot[..., 5] = 1.0
    mixed = torch.softmax(torch.randn(1, 1, n, generator=torch.Generator().manual_seed(0), dtype=dtype) * 5, -1)
    for w in (flat, one_hot, mixed, torch.zeros(1, 1, n, dtype=dtype)):
        for g in (1.0, 22.0, 100.0, 1e3, 1e4):
            gamma = torch.full((1, 1), g, dtype=dtype, requires_grad=True)
            weights = w.clone().requires_grad_(True)
            out = A.sharpen(weights, gamma)
            assert torch.isfinite(out).all(), (g, w)
            torch.testing.assert_close(out.sum(-1), torch.ones(1, 1, dtype=dtype))
            (out * torch.arange(n, dtype=dtype)).sum().backward()
            assert torch.isfinite(gamma.grad).all() and torch.isfinite(weights.grad).all()
    torch.testing.assert_close(A.sharpen(flat, torch.full((1, 1), 1e4, dtype=dtype)), flat)
    assert A.sharpen(one_hot, torch.full((1, 1), 1e4, dtype=dtype))[0, 0, 5] == 1.0


def test_erase_and_add_matches_hand_computation():
    memory = torch.ones(1, 2, 2)
    w = torch.tensor([[[1.0, 0.0]]])
    out = A.erase_and_add(memory, w, torch.tensor([[[1.0, 0.5]]]), torch.tensor([[[3.0, 4.0]]]))
    torch.testing.assert_close(out, torch.tensor([[[3.0, 4.5], [1.0, 1.0]]]))
    # two heads: erase multiplies, add sums (NTM paper 3.2)
    w2 = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    out2 = A.erase_and_add(memory, w2, torch.full((1, 2, 2), 0.5), torch.ones(1, 2, 2))
    torch.testing.assert_close(out2, torch.tensor([[[2.25, 2.25], [1.0, 1.0]]]))


def test_read_is_weighted_sum_of_rows():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    torch.testing.assert_close(A.read(memory, torch.tensor([[[0.25, 0.75]]])), torch.tensor([[[2.5, 3.5]]]))


def test_retention_and_usage_match_hand_computation():
    free = torch.tensor([[1.0, 0.5]])
    reads = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]])
    psi = A.retention(free, reads)
    torch.testing.assert_close(psi, torch.tensor([[0.5, 0.25, 1.0]]))
    usage = torch.tensor([[0.5, 0.0, 0.2]])
    writes = torch.tensor([[[0.5, 1.0, 0.0]]])
    torch.testing.assert_close(A.update_usage(usage, writes, psi), torch.tensor([[0.375, 0.25, 0.2]]))


def test_allocation_matches_paper_formula_and_invariants():
    usage = torch.tensor([[0.4, 0.1, 0.9, 0.5]])
    a = A.allocation_weighting(usage, eps=0.0)
    # sorted ascending: 0.1 (slot 1), 0.4 (slot 0), 0.5 (slot 3), 0.9 (slot 2)
    expected = torch.tensor([[0.6 * 0.1, 0.9, 0.1 * 0.1 * 0.4 * 0.5, 0.5 * 0.1 * 0.4]])
    torch.testing.assert_close(a, expected)
    gen = torch.Generator().manual_seed(1)
    u = torch.rand(64, 16, generator=gen)
    a = A.allocation_weighting(u)
    assert torch.equal(a.argmax(1), u.argmin(1))
    assert (a >= 0).all() and (a.sum(1) <= 1 + 1e-6).all()


def test_two_write_heads_allocate_different_slots():
    usage = torch.tensor([[0.9, 0.0, 0.9, 0.0, 0.9]])
    a = A.write_allocations(usage, torch.ones(1, 2))
    assert {a[0, 0].argmax().item(), a[0, 1].argmax().item()} == {1, 3}


def test_link_and_precedence_record_write_order():
    n = 4
    link = torch.zeros(1, 1, n, n)
    prec = torch.zeros(1, 1, n)
    for slot in (0, 2, 1):
        w = torch.zeros(1, 1, n)
        w[0, 0, slot] = 1.0
        link = A.update_link(link, prec, w)
        prec = A.update_precedence(prec, w)
    assert link[0, 0, 2, 0] == 1.0 and link[0, 0, 1, 2] == 1.0
    assert link.sum() == 2.0
    torch.testing.assert_close(prec, torch.tensor([[[0.0, 1.0, 0.0, 0.0]]]))
    forward, backward = A.directional_weightings(link, torch.tensor([[[0.0, 0.0, 1.0, 0.0]]]))  # read at slot 2
    assert forward[0, 0, 0].argmax().item() == 1 and backward[0, 0, 0].argmax().item() == 0


def test_link_invariants_under_random_soft_writes():
    gen = torch.Generator().manual_seed(2)
    b, h, n = 8, 2, 10
    link, prec = torch.zeros(b, h, n, n), torch.zeros(b, h, n)
    for _ in range(30):
        w = torch.softmax(3 * torch.randn(b, h, n, generator=gen), -1) * torch.rand(b, h, 1, generator=gen)
        link = A.update_link(link, prec, w)
        prec = A.update_precedence(prec, w)
        assert (link.diagonal(dim1=-2, dim2=-1) == 0).all()
        assert (link >= 0).all()
        assert (link.sum(-1) <= 1 + 1e-5).all() and (link.sum(-2) <= 1 + 1e-5).all()
        assert (prec.sum(-1) <= 1 + 1e-5).all()
    # the multi-head (einsum) and single-head (bmm) paths of the directional weightings agree
    r = _dist(b, 3, n, dtype=torch.float32)
    f, bw = A.directional_weightings(link, r)
    f0, b0 = A.directional_weightings(link[:, :1], r)
    torch.testing.assert_close(f[:, :, :1], f0)
    torch.testing.assert_close(bw[:, :, :1], b0)


def test_read_weighting_modes():
    gen = torch.Generator().manual_seed(3)
    c, f, b = _dist(2, 3, 6, gen=gen), _dist(2, 3, 1, 6, gen=gen), _dist(2, 3, 1, 6, gen=gen)
    def modes(i):
        m = torch.zeros(2, 3, 3, dtype=torch.float64)
        m[..., i] = 1.0
        return m
    torch.testing.assert_close(A.read_weighting(c, f, b, modes(0)), b[:, :, 0])
    torch.testing.assert_close(A.read_weighting(c, f, b, modes(1)), f[:, :, 0])
    torch.testing.assert_close(A.read_weighting(c, f, b, modes(2)), c)


def _req(*tensors):
    return tuple(t.detach().clone().requires_grad_(True) for t in tensors)


def test_gradcheck_every_addressing_function():
    gen = torch.Generator().manual_seed(4)
    d = torch.float64
    b, h, n, w = 2, 2, 5, 3
    mem = torch.randn(b, n, w, generator=gen, dtype=d)
    keys = torch.randn(b, h, w, generator=gen, dtype=d)
    beta = torch.rand(b, h, generator=gen, dtype=d) + 0.5
    wts, prev = _dist(b, h, n, gen=gen), _dist(b, h, n, gen=gen)
    gate = torch.rand(b, h, generator=gen, dtype=d)
    shift = _dist(b, h, 3, gen=gen)
    gamma = torch.rand(b, h, generator=gen, dtype=d) + 1.0
    erase, add = torch.rand(b, h, w, generator=gen, dtype=d), torch.randn(b, h, w, generator=gen, dtype=d)
    usage = torch.rand(b, n, generator=gen, dtype=d) * 0.9 + 0.05  # distinct values: sort is smooth here
    link = torch.rand(b, h, n, n, generator=gen, dtype=d) / n
    cases = {
        "content": (A.content_weighting, (mem, keys, beta)),
        "interpolate": (A.interpolate, (wts, prev, gate)),
        "shift": (A.circular_shift, (wts, shift)),
        "sharpen": (A.sharpen, (wts, gamma)),
        "read": (A.read, (mem, wts)),
        "erase_add": (A.erase_and_add, (mem, wts, erase, add)),
        "retention": (A.retention, (gate, wts)),
        "usage": (A.update_usage, (usage, wts, usage)),
        "allocation": (A.allocation_weighting, (usage,)),
        "write_allocations": (A.write_allocations, (usage, gate)),
        "write_weighting": (A.write_weighting, (wts, prev, gate, gate)),
        "precedence": (A.update_precedence, (prev, wts)),
        "link": (A.update_link, (link, prev, wts)),
        "directional": (A.directional_weightings, (link, wts)),
        "directional_1": (A.directional_weightings, (link[:, :1], wts)),
        "read_weighting": (A.read_weighting, (wts, wts.unsqueeze(2), prev.unsqueeze(2), _dist(b, h, 3, gen=gen))),
    }
    for name, (fn, args) in cases.items():
        assert torch.autograd.gradcheck(fn, _req(*args), eps=1e-6, atol=1e-5), name
