import copy
import math

import pytest
import torch
from torch import nn

from foundations.nets import layer_init, mlp, num_parameters, polyak_update_


def test_mlp_shapes_and_param_count():
    net = mlp(4, [64, 64], 2)
    assert net.out_features == 2
    assert net(torch.zeros(7, 4)).shape == (7, 2)
    assert num_parameters(net) == (4 * 64 + 64) + (64 * 64 + 64) + (64 * 2 + 2)


def test_mlp_without_output_layer_ends_in_activation():
    net = mlp(3, [8], None, activation=nn.Tanh)
    assert net.out_features == 8
    assert isinstance(net[-1], nn.Tanh)


def test_mlp_layer_norm_and_gains():
    torch.manual_seed(0)
    net = mlp(16, [32], 4, layer_norm=True, hidden_gain=math.sqrt(2), output_gain=0.01)
    assert isinstance(net[1], nn.LayerNorm)
    w = net[-1].weight  # [4, 32]: orthogonal rows with gain 0.01
    torch.testing.assert_close(w @ w.T, 1e-4 * torch.eye(4), atol=1e-8, rtol=0)


def test_mlp_rejects_bad_sizes():
    with pytest.raises(ValueError, match="hidden_sizes"):
        mlp(4, [0], 2)
    with pytest.raises(ValueError, match="in_features"):
        mlp(0, [4], 2)


def test_layer_init_bias_and_gain():
    layer = layer_init(nn.Linear(8, 8), gain=1.0, bias=0.5)
    torch.testing.assert_close(layer.weight @ layer.weight.T, torch.eye(8), atol=1e-5, rtol=0)
    assert torch.all(layer.bias == 0.5)


def test_polyak_update():
    torch.manual_seed(0)
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    expected = 0.1 * online.weight.detach() + 0.9 * target.weight.detach()
    polyak_update_(target, online, 0.1)
    torch.testing.assert_close(target.weight, expected)
    polyak_update_(target, online, 1.0)
    torch.testing.assert_close(target.weight, online.weight)
    with pytest.raises(ValueError, match="tau"):
        polyak_update_(target, online, 0.0)


def test_fast_adam_follows_torch_adam():
    from foundations.nets import fast_adam

    torch.manual_seed(0)
    a = torch.nn.Linear(5, 3)
    b = torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = fast_adam(a.parameters(), 1e-2, eps=1e-6), torch.optim.Adam(b.parameters(), lr=1e-2, eps=1e-6)
    x = torch.randn(16, 5)
    for _ in range(50):
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


def _two_copies(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    a = mlp(5, [16], 3)
    b = mlp(5, [16], 3)
    b.load_state_dict(a.state_dict())
    return a, b


def _train(net: nn.Module, step, opt: torch.optim.Optimizer, x: torch.Tensor, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        net(x).square().mean().backward()
        step()


@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"weight_decay": 0.1}, {"maximize": True},
                                     {"betas": (0.5, 0.9), "eps": 1e-3}])
def test_adam_step_is_bit_for_bit_optimizer_step(options):
    from foundations.nets import AdamStep

    a, b = _two_copies()
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2, fused=True, **options)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, fused=True, **options)
    lean = AdamStep(opt_a)
    x = torch.randn(8, 5)
    _train(a, lean, opt_a, x, 30)
    _train(b, opt_b.step, opt_b, x, 30)
    assert lean._state is opt_a.state  # the shortcut was taken after the first step
    for group in (opt_a.param_groups[0], opt_b.param_groups[0]):
        group["lr"] = 3e-3  # a schedule changes the rate between steps
    _train(a, lean, opt_a, x, 10)
    _train(b, opt_b.step, opt_b, x, 10)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(opt_a.state[p][key], opt_b.state[q][key]), key


def test_adam_step_follows_load_state_dict_and_defers_where_it_cannot_apply():
    from foundations.nets import AdamStep

    a, b = _two_copies(1)
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2, fused=True)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, fused=True)
    lean = AdamStep(opt_a)
    x = torch.randn(8, 5)
    _train(b, opt_b.step, opt_b, x, 5)
    _train(a, lean, opt_a, x, 3)
    a.load_state_dict(b.state_dict())
    opt_a.load_state_dict(copy.deepcopy(opt_b.state_dict()))  # new state tensors: the lists must follow
    _train(a, lean, opt_a, x, 5)
    _train(b, opt_b.step, opt_b, x, 5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    calls = []
    opt_a.register_step_post_hook(lambda *args: calls.append(1))  # hooks: the real step runs them
    _train(a, lean, opt_a, x, 2)
    assert len(calls) == 2
    sgd_net, ref_net = _two_copies(2)
    sgd, ref = torch.optim.SGD(sgd_net.parameters(), lr=0.1), torch.optim.SGD(ref_net.parameters(), lr=0.1)
    _train(sgd_net, AdamStep(sgd), sgd, x, 3)  # not Adam: plain optimizer.step()
    _train(ref_net, ref.step, ref, x, 3)
    for p, q in zip(sgd_net.parameters(), ref_net.parameters(), strict=True):
        assert torch.equal(p, q)


def test_host_mlp_matches_the_module_and_follows_its_updates():
    import numpy as np

    from foundations.host_mlp import HostMLP

    torch.manual_seed(0)
    relu_net, tanh_net = mlp(4, [32, 32], 3), mlp(4, [16], 2, activation=nn.Tanh)
    x = torch.randn(9, 4)
    for net in (relu_net, tanh_net):
        host = HostMLP(net)
        x_np = x.numpy().copy()
        out = host(x_np)
        assert out.dtype == np.float32 and out.shape == (9, net.out_features)
        np.testing.assert_allclose(out, net(x).detach().numpy(), atol=1e-5, rtol=1e-5)
        assert np.array_equal(x_np, x.numpy())  # the input is not written over
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        net(x).square().sum().backward()
        opt.step()  # in place: the views see it
        np.testing.assert_allclose(host(x_np), net(x).detach().numpy(), atol=1e-5, rtol=1e-5)
        net[0].weight = nn.Parameter(torch.randn_like(net[0].weight))  # replaced: the mirror rebuilds
        np.testing.assert_allclose(host(x_np), net(x).detach().numpy(), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="LayerNorm"):
        HostMLP(mlp(4, [8], 2, layer_norm=True))
    assert HostMLP.build(mlp(4, [8], 2, layer_norm=True)) is None
    assert HostMLP.build(mlp(4, [8], 2).double()) is not None
    assert HostMLP.build(mlp(4, [8], 2).half()) is None


def test_host_chain_runs_one_stack_member_and_a_head():
    import numpy as np

    from foundations.host_mlp import HostChain
    from foundations.nets import StackedMLP

    torch.manual_seed(0)
    net, head = StackedMLP(3, 5, [16, 8], "relu"), nn.Linear(8, 2)
    chain = HostChain([(net.weights[0], net.biases[0], "relu", 1), (net.weights[1], net.biases[1], "relu", 1),
                       (head.weight, head.bias, None, None)])
    x = torch.randn(7, 5)

    def reference():
        return head(net.member(1)(x)).detach().numpy()

    x_np = x.numpy().copy()
    np.testing.assert_allclose(chain(x_np), reference(), atol=1e-5, rtol=1e-5)
    assert np.array_equal(x_np, x.numpy())  # the input is not written over
    head(net(x)[1]).square().sum().backward()
    torch.optim.SGD([*net.parameters(), *head.parameters()], lr=0.1).step()  # in place: the views see it
    np.testing.assert_allclose(chain(x_np), reference(), atol=1e-5, rtol=1e-5)
    net.double(), head.double()  # new storage: the chain rebuilds, in float64
    out = chain(x_np)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, head(net(x.double())[1]).detach().numpy(), atol=1e-12, rtol=1e-12)
    with pytest.raises(ValueError, match="activations"):
        HostChain([(head.weight, head.bias, "gelu", None)])
    assert HostChain.build([(head.weight.half(), None, None, None)]) is None


@pytest.mark.parametrize("max_norm", [0.05, 1e6])  # clipping and not
def test_clip_grad_norm_equals_torch(max_norm):
    from foundations.nets import clip_grad_norm_

    a, b = _two_copies(3)
    x = torch.randn(8, 5)
    for net in (a, b):
        net(x).square().sum().backward()
    a[0].bias.grad = None  # a parameter without a gradient is skipped
    b[0].bias.grad = None
    ours = clip_grad_norm_(list(a.parameters()), max_norm)
    ref = torch.nn.utils.clip_grad_norm_(b.parameters(), max_norm, foreach=True)
    assert torch.equal(ours, ref)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert (p.grad is None and q.grad is None) or torch.equal(p.grad, q.grad)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_stacked_mlp_members_are_plain_mlps_and_mirror_on_host(activation):
    import numpy as np

    from foundations.host_mlp import HostStackedMLP
    from foundations.nets import StackedMLP

    torch.manual_seed(0)
    net = StackedMLP(3, 5, [16, 8], activation, hidden_gain=math.sqrt(2))
    x = torch.randn(7, 5)
    out = net(x)
    assert out.shape == (3, 7, 8) and net.out_features == 8
    for m in range(3):
        torch.testing.assert_close(out[m], net.member(m)(x), atol=1e-6, rtol=1e-6)
        w = net.weights[0][m]
        torch.testing.assert_close(w.T @ w, 2 * torch.eye(5), atol=1e-5, rtol=0)  # orthogonal columns, gain^2
    per_member = torch.randn(3, 7, 5)  # or one input per member
    torch.testing.assert_close(net(per_member)[1], net.member(1)(per_member[1]), atol=1e-6, rtol=1e-6)
    host = HostStackedMLP(net)
    np.testing.assert_allclose(host(x.numpy()), out.detach().numpy(), atol=1e-5, rtol=1e-5)
    net(x).square().sum().backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()  # in place: the views see it
    np.testing.assert_allclose(host(x.numpy()), net(x).detach().numpy(), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="activation"):
        StackedMLP(2, 5, [4], "gelu")
    with pytest.raises(ValueError, match="hidden_sizes"):
        StackedMLP(2, 5, [])


def test_relu_mlp_backward_equals_autograd():
    from foundations.mlp_grad import relu_mlp_backward, relu_mlp_forward

    torch.manual_seed(0)
    net = mlp(5, [16, 8], 3).double()
    layers = [m for m in net if isinstance(m, nn.Linear)]
    x, upstream = torch.randn(12, 5, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64)
    out, inputs = relu_mlp_forward(layers, x)
    torch.testing.assert_close(out, net(x).detach(), atol=1e-12, rtol=0)
    assert not out.requires_grad
    relu_mlp_backward(layers, inputs, upstream)
    ours = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    (net(x) * upstream).sum().backward()
    for a, b in zip(ours, (p.grad for p in net.parameters()), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
