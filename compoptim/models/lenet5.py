"""LeNet-5 (LeCun et al., 1998) for single- or multi-channel square images."""

from __future__ import annotations

import torch
from torch import nn

from compoptim.errors import UserError
from compoptim.models.base import Model


class LeNet5(Model):
    """conv5(6) -> pool -> conv5(16) -> pool -> 120 -> 84 -> classes, ReLU activations.

    The first convolution pads by 2 so 28x28 inputs see the classic 32x32 geometry
    (61,706 parameters for one channel and 10 classes).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise UserError(f"lenet5 needs image inputs (C, H, W); got shape {input_shape}")
        channels, height, width = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, height, width)).numel()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def make_blocks(self) -> list[nn.Module]:
        # conv-relu-pool twice, then each fully connected layer with its activation
        f, c = self.features, self.classifier
        return [f[0:3], f[3:6], c[0:3], c[3:5], c[5:6]]
