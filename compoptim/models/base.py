"""What every model of the zoo declares beyond ``nn.Module``, read by the trainer from the model."""

from __future__ import annotations

from torch import nn


class Model(nn.Module):
    """``bn_stats``: what each evaluation does with BatchNorm running statistics, which are
    buffers that gossip never mixes. ``averaged`` sets every node's to the average over the
    nodes; ``local`` keeps each node's own. Models without BatchNorm have none to average,
    so the class default is harmless; a model that has them makes it a setting (ResNet18)."""

    bn_stats: str = "averaged"
