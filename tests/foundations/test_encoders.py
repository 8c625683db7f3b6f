import pytest
import torch
from torch import nn

from foundations.encoders import CifarCNN, ImpalaCNN, MnistCNN, NatureCNN
from foundations.nets import num_parameters


@pytest.mark.parametrize(
    ("cls", "shape", "features"),
    [
        (NatureCNN, (4, 84, 84), 512),
        (ImpalaCNN, (4, 84, 84), 256),
        (MnistCNN, (1, 28, 28), 128),
        (CifarCNN, (3, 32, 32), 256),
    ],
)
def test_output_shape_and_attribute(cls, shape, features):
    enc = cls(shape)
    assert enc.out_features == features
    x = torch.randint(0, 256, (5, *shape), dtype=torch.uint8)
    assert enc(x).shape == (5, features)


def test_nature_dqn_parameter_count():
    torso = NatureCNN((4, 84, 84))
    q_net = nn.Sequential(torso, nn.Linear(torso.out_features, 6))
    assert num_parameters(torso) == 1_684_128
    assert num_parameters(q_net) == 1_687_206


def test_impala_parameter_count():
    # conv stacks: 3 x (conv 3x3 + 2 residual blocks of two 3x3 convs), then 32*11*11 -> 256.
    enc = ImpalaCNN((4, 84, 84))
    def conv(ci, co):
        return ci * co * 9 + co
    expected = (
        conv(4, 16) + 4 * conv(16, 16)
        + conv(16, 32) + 4 * conv(32, 32)
        + conv(32, 32) + 4 * conv(32, 32)
        + 32 * 11 * 11 * 256 + 256
    )
    assert num_parameters(enc) == expected


@pytest.mark.parametrize(
    ("cls", "shape"),
    [(NatureCNN, (4, 84, 84)), (ImpalaCNN, (3, 64, 64)), (MnistCNN, (1, 28, 28)), (CifarCNN, (3, 32, 32))],
)
def test_uint8_and_float_input_agree(cls, shape):
    torch.manual_seed(0)
    enc = cls(shape).eval()
    x = torch.randint(0, 256, (3, *shape), dtype=torch.uint8)
    out_u8 = enc(x)
    out_f = enc(x.float() / 255.0)
    torch.testing.assert_close(out_u8, out_f, rtol=0, atol=1e-6)
    assert out_u8.abs().sum() > 0  # not trivially zero


def test_wrong_shape_names_expected_shape():
    enc = NatureCNN((4, 84, 84))
    with pytest.raises(ValueError, match=r"\[batch, 4, 84, 84\]"):
        enc(torch.zeros(2, 84, 84, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[batch, 4, 84, 84\]"):
        enc(torch.zeros(4, 84, 84, dtype=torch.uint8))


def test_wrong_dtype_rejected():
    enc = MnistCNN()
    with pytest.raises(ValueError, match="uint8"):
        enc(torch.zeros(2, 1, 28, 28, dtype=torch.int64))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="input_shape"):
        NatureCNN((84, 84))
    with pytest.raises(ValueError, match="dropout"):
        MnistCNN(dropout=1.5)


def test_orthogonal_init_option_changes_weights():
    torch.manual_seed(0)
    enc = NatureCNN(orthogonal_init=True)
    w = enc.body[0].weight.flatten(1)  # [32, 256]: rows orthogonal with gain sqrt(2)
    torch.testing.assert_close(w @ w.T, 2.0 * torch.eye(32), atol=1e-4, rtol=0)


def test_gradients_flow_from_uint8_input():
    enc = NatureCNN()
    out = enc(torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)).sum()
    out.backward()
    assert all(p.grad is not None for p in enc.parameters())


@pytest.mark.gpu
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    enc = NatureCNN()
    x = torch.randint(0, 256, (4, 4, 84, 84), dtype=torch.uint8)
    ref = enc(x)
    out = enc.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
