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


def test_fused_optimizers_choice_builds_an_adam_that_steps_like_the_default():
    from foundations.nets import fused_optimizers

    assert fused_optimizers("cuda") is True
    torch.manual_seed(0)
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2, fused=fused_optimizers("cpu"))
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2)
    for _ in range(5):
        x = torch.randn(8, 5)
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            net(x).square().sum().backward()
            opt.step()
    torch.testing.assert_close(a.weight, b.weight, rtol=1e-5, atol=1e-6)


def test_eval_mode_switches_and_restores_even_on_error():
    from foundations.nets import eval_mode

    net = torch.nn.Sequential(torch.nn.Dropout(0.5))
    with eval_mode(net):
        assert not net.training and not net[0].training
    assert net.training
    net.eval()
    with pytest.raises(RuntimeError), eval_mode(net):
        raise RuntimeError("inside")
    assert not net.training  # restored to what it was, eval
