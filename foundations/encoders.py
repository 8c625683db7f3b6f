"""Convolutional image encoders: ``[batch, channels, height, width] -> [batch, out_features]``.

Every encoder accepts ``uint8`` pixels (scaled by 1/255 in its first step, so Atari frames
stay uint8 all the way from the env) or floating-point pixels already in [0, 1]; the two give
the same output for ``x_float == x_uint8 / 255``. The output width is ``encoder.out_features``.

- :class:`NatureCNN`: the Nature-DQN torso (Mnih et al. 2015), 84x84 frame stacks.
- :class:`ImpalaCNN`: the IMPALA residual torso (Espeholt et al. 2018).
- :class:`MnistCNN`: a small convnet for 1x28x28 images (MNIST, Fashion-MNIST).
- :class:`CifarCNN`: a VGG-style convnet for 3x32x32 images (CIFAR-10).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from foundations.nets import layer_init

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def unit_pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1] (divided by 255); any other dtype is returned as is."""
    return x.float().div(255.0) if x.dtype == torch.uint8 else x


class ImageEncoder(nn.Module):
    """Base class: input validation and uint8 scaling shared by all encoders.

    Subclasses build ``self.body`` (a module mapping float images in [0, 1] to features)
    and call :meth:`_finish` with the output width.
    """

    def __init__(self, input_shape: Sequence[int]) -> None:
        super().__init__()
        if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
            raise ValueError(
                f"input_shape must be (channels, height, width) with positive sizes, "
                f"got {tuple(input_shape)}"
            )
        self.input_shape: tuple[int, int, int] = tuple(int(d) for d in input_shape)  # type: ignore[assignment]
        self.out_features = 0

    def _conv_output_size(self, convs: nn.Module) -> int:
        with torch.no_grad():
            return int(convs(torch.zeros(1, *self.input_shape)).flatten(1).shape[1])

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Validate ``x`` ``[batch, C, H, W]`` and return float pixels in [0, 1]."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{type(self).__name__} expects input of shape [batch, {', '.join(map(str, self.input_shape))}]"
                f", got {list(x.shape)}"
            )
        if x.dtype == torch.uint8:
            return x.float().mul_(1.0 / 255.0)
        if x.dtype not in _FLOAT_DTYPES:
            raise ValueError(
                f"{type(self).__name__} expects uint8 pixels or float pixels in [0, 1], got dtype {x.dtype}"
            )
        first = next(self.parameters())
        return x.to(first.dtype) if x.dtype != first.dtype else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[batch, C, H, W]`` uint8 or float in [0, 1] -> ``[batch, out_features]``."""
        return self.body(self.preprocess(x))


class NatureCNN(ImageEncoder):
    """Nature-DQN torso (Mnih et al. 2015): three convs and a 512-unit fully connected layer.

    conv 32x8x8/4 -> conv 64x4x4/2 -> conv 64x3x3/1 -> linear 3136->512, ReLU after each.
    On ``[batch, 4, 84, 84]`` input the torso has 1,684,128 parameters; with a 6-action linear
    head, the published Q-network has 1,687,206.

    Args:
      input_shape: (channels, height, width); (4, 84, 84) for stacked Atari frames.
      features_dim: width of the final layer (512 in the paper).
      orthogonal_init: orthogonal init with gain sqrt(2) (the PPO convention) instead of
        PyTorch's default.
      linear: factory ``linear(in, out)`` of the fully connected layer (``NoisyLinear`` in Rainbow).
      layer_norm: LayerNorm after each conv (over channels, height and width) and after the
        fully connected layer, before each ReLU (PQN's Atari network, Gallici et al. 2024).
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (4, 84, 84),
        features_dim: int = 512,
        orthogonal_init: bool = False,
        linear: Callable[[int, int], nn.Module] = nn.Linear,
        layer_norm: bool = False,
    ) -> None:
        super().__init__(input_shape)
        layers: list[nn.Module] = []
        shape = torch.Size(self.input_shape)
        for out_channels, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            conv = nn.Conv2d(shape[0], out_channels, kernel_size=kernel, stride=stride)
            with torch.no_grad():
                shape = conv(torch.zeros(1, *shape)).shape[1:]
            layers += [conv, nn.LayerNorm(shape), nn.ReLU()] if layer_norm else [conv, nn.ReLU()]
        convs = nn.Sequential(*layers, nn.Flatten())
        n_flat = self._conv_output_size(convs)
        fc = linear(n_flat, features_dim)
        head = [fc, nn.LayerNorm(features_dim), nn.ReLU()] if layer_norm else [fc, nn.ReLU()]
        self.body = nn.Sequential(*convs, *head)
        if orthogonal_init:
            for m in self.body:
                if isinstance(m, nn.Conv2d | nn.Linear):
                    layer_init(m)
        self.out_features = features_dim


class _ResidualBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with 3x3 convs keeping the channel count."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class ImpalaCNN(ImageEncoder):
    """IMPALA torso (Espeholt et al. 2018): conv stacks with max-pooling and residual blocks.

    Each stack: conv 3x3 -> max-pool 3x3/2 -> two residual blocks. After the stacks:
    ReLU -> flatten -> linear ``features_dim`` -> ReLU.

    Args:
      input_shape: (channels, height, width).
      channels: output channels of each stack ((16, 32, 32) in the paper).
      features_dim: width of the final linear layer (256 in the paper).
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (4, 84, 84),
        channels: Sequence[int] = (16, 32, 32),
        features_dim: int = 256,
    ) -> None:
        super().__init__(input_shape)
        if not channels or any(ch < 1 for ch in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        layers: list[nn.Module] = []
        c_in = self.input_shape[0]
        for c_out in channels:
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.MaxPool2d(3, stride=2, padding=1),
                _ResidualBlock(c_out),
                _ResidualBlock(c_out),
            ]
            c_in = c_out
        convs = nn.Sequential(*layers, nn.ReLU(), nn.Flatten())
        n_flat = self._conv_output_size(convs)
        self.body = nn.Sequential(*convs, nn.Linear(n_flat, features_dim), nn.ReLU())
        self.out_features = features_dim


def _conv_block(c_in: int, c_out: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    return layers


class MnistCNN(ImageEncoder):
    """Small convnet for ``[batch, 1, 28, 28]`` images.

    conv 32 -> pool -> conv 64 -> pool -> linear 128 (ReLU), with optional batch norm after
    each conv and dropout before the linear layer (regularisation options).
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 28, 28),
        features_dim: int = 128,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        convs = nn.Sequential(
            *_conv_block(self.input_shape[0], 32, batch_norm),
            nn.MaxPool2d(2),
            *_conv_block(32, 64, batch_norm),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        n_flat = self._conv_output_size(convs)
        self.body = nn.Sequential(
            *convs, nn.Dropout(dropout), nn.Linear(n_flat, features_dim), nn.ReLU()
        )
        self.out_features = features_dim


class CifarCNN(ImageEncoder):
    """VGG-style convnet for ``[batch, 3, 32, 32]`` images.

    Three blocks of (conv, conv, max-pool) with 32, 64, 128 channels, then linear 256 (ReLU);
    optional batch norm after each conv and dropout after each block and before the linear layer.
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 32, 32),
        features_dim: int = 256,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        c_in = self.input_shape[0]
        for c_out in (32, 64, 128):
            layers += [
                *_conv_block(c_in, c_out, batch_norm),
                *_conv_block(c_out, c_out, batch_norm),
                nn.MaxPool2d(2),
                nn.Dropout(dropout),
            ]
            c_in = c_out
        convs = nn.Sequential(*layers, nn.Flatten())
        n_flat = self._conv_output_size(convs)
        self.body = nn.Sequential(*convs, nn.Linear(n_flat, features_dim), nn.ReLU())
        self.out_features = features_dim
