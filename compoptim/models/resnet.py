"""ResNets for CIFAR-sized images: ResNet-20 with Fixup (no BatchNorm) and ResNet-18 with BatchNorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from compoptim.errors import UserError
from compoptim.models.base import Model, Part


def _check_image(name: str, input_shape: tuple[int, ...]) -> None:
    if len(input_shape) != 3:
        raise UserError(f"{name} needs image inputs (C, H, W); got shape {input_shape}")


class FixupBlock(nn.Module):
    """Basic block without normalization, Fixup-initialized (Zhang, Dauphin & Ma 2019): scalar
    biases before each conv/activation, a scalar multiplier, the last conv zero-initialized
    and the first scaled by L^(-1/2) (L residual branches, m = 2 layers per branch)."""

    def __init__(self, c_in: int, c_out: int, stride: int, num_blocks: int) -> None:
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (nn.Parameter(torch.zeros(1)) for _ in range(4))
        self.scale = nn.Parameter(torch.ones(1))
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        nn.init.normal_(self.conv1.weight, std=(2.0 / (c_out * 9)) ** 0.5 * num_blocks ** -0.5)
        nn.init.zeros_(self.conv2.weight)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x + self.bias1a) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        identity = x if self.shortcut is None else self.shortcut(x + self.bias1a)
        return F.relu(out + identity)


class FixupResNet20(Model):
    """ResNet-20 for CIFAR (He et al. 2016: 3 stages x 3 blocks, widths 16/32/64, ~0.27M
    parameters) with Fixup instead of BatchNorm, as the origin project trained it: no running
    statistics, so the nodes' models are fully described by their parameters (which gossip
    averages). The depth is the name (6 * 3 + 2 = 20), so it is not a setting."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        _check_image("resnet20", input_shape)
        channels = input_shape[0]
        blocks_per_stage = 3
        total = 3 * blocks_per_stage
        self.conv = nn.Conv2d(channels, 16, 3, padding=1, bias=False)
        self.bias1 = nn.Parameter(torch.zeros(1))
        layers, c_in = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for b in range(blocks_per_stage):
                layers.append(FixupBlock(c_in, width, stride if b == 0 else 1, total))
                c_in = width
        self.layers = nn.Sequential(*layers)
        self.bias2 = nn.Parameter(torch.zeros(1))
        self.fc = nn.Linear(64, num_classes)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv(x) + self.bias1)
        out = F.adaptive_avg_pool2d(self.layers(out), 1).flatten(1)
        return self.fc(out + self.bias2)

    def make_blocks(self) -> list[nn.Module]:
        # the stem, each residual block, the head
        return [Part(lambda p, x: F.relu(p.conv(x) + p.bias1), conv=self.conv, bias1=self.bias1), *self.layers,
                Part(lambda p, x: p.fc(F.adaptive_avg_pool2d(x, 1).flatten(1) + p.bias2), fc=self.fc,
                     bias2=self.bias2)]


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(Model):
    """ResNet-18, CIFAR variant (3x3 stem, no max-pool; 4 stages x 2 blocks, widths 64-512).

    BatchNorm's running statistics are buffers, not parameters: gossip never mixes them.
    ``model.bn_stats`` says what happens at each evaluation: ``averaged`` sets every node's
    running statistics to their average over the nodes (the averaged model uses that too);
    ``local`` keeps each node's own (the averaged model still uses the average). The trainer
    reads it from the model (``Model.bn_stats``).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, bn_stats: str = "averaged") -> None:
        super().__init__()
        _check_image("resnet18", input_shape)
        if bn_stats not in ("averaged", "local"):
            raise UserError(f"model.bn_stats must be averaged or local; got {bn_stats}")
        self.bn_stats = bn_stats
        self.conv1 = nn.Conv2d(input_shape[0], 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, c_in = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c_in, width, stride), BasicBlock(width, width, 1)]
            c_in = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.adaptive_avg_pool2d(self.layers(out), 1).flatten(1)
        return self.fc(out)

    def make_blocks(self) -> list[nn.Module]:
        return [Part(lambda p, x: F.relu(p.bn1(p.conv1(x))), conv1=self.conv1, bn1=self.bn1), *self.layers,
                Part(lambda p, x: p.fc(F.adaptive_avg_pool2d(x, 1).flatten(1)), fc=self.fc)]
