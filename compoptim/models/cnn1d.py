"""A small 1-D convolutional network for sequences such as MNIST-1D's: three strided
convolutions (ReLU after each), then one linear layer on the flattened features.

With the defaults it is the CNN of the MNIST-1D paper (Greydanus 2020): kernels 5, 3, 3,
stride 2, padding 1, 25 channels; on length-40 signals the features are 25 x 5 = 125 and the
network has 5,210 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from compoptim.errors import UserError
from compoptim.models.base import Model, Part


class CNN1d(Model):
    """x of shape (channels, length) or (length,) -> class scores."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: int = 25) -> None:
        super().__init__()
        if channels < 1:
            raise UserError(f"model.channels must be >= 1; got {channels}")
        if len(input_shape) not in (1, 2):
            raise UserError(f"model=cnn1d takes sequences, inputs of shape (length,) or (channels, length); "
                            f"got inputs of shape {tuple(input_shape)}")
        c_in, length = (1, input_shape[0]) if len(input_shape) == 1 else input_shape
        layers: list[nn.Module] = []
        for kernel in (5, 3, 3):
            if length + 2 < kernel:
                raise UserError(f"model=cnn1d needs sequences of length >= 3; got {input_shape[-1]}")
            layers += [nn.Conv1d(c_in, channels, kernel, stride=2, padding=1), nn.ReLU()]
            c_in, length = channels, (length + 2 - kernel) // 2 + 1
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(channels * length, num_classes)
        self._in = (1 if len(input_shape) == 1 else input_shape[0], input_shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x.reshape(len(x), *self._in)).flatten(1))

    def make_blocks(self) -> list[nn.Module]:
        f, shape = self.features, self._in
        return [Part(lambda p, x: p.conv(x.reshape(len(x), *shape)), conv=f[0:2]), f[2:4], f[4:6],
                Part(lambda p, x: p.linear(x.flatten(1)), linear=self.linear)]
