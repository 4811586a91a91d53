"""Evaluation of the averaged model, the local models, and the consensus distance.

All figures are global: x_bar is the true average over all n nodes (an all-reduce, counted
as metric traffic), never a neighbourhood mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compoptim.comm.base import Communicator
from compoptim.optim.flat import FlatParameters
from compoptim.train.loss import task_loss

_EVAL_BATCH = 1024


@dataclass
class Evaluation:
    test_loss: float
    test_acc: float
    local_test_acc_mean: float
    local_test_acc_min: float
    local_test_acc_max: float
    consensus_distance: float
    node_test_acc: float  # this node's own model
    node_distance: float  # this node's ||x_i - x_bar||^2


class Evaluator:
    """Scores the averaged model and this node's model on the test set.

    Buffers (BatchNorm running statistics) are not parameters, so gossip never mixes them:
    the averaged model gets the nodes' average buffers, and with ``average_buffers_into_local``
    every node's own buffers are set to that average too (``model.bn_stats=averaged``).
    """

    def __init__(self, model: nn.Module, flat: FlatParameters, averaged_model: nn.Module,
                 x_test: torch.Tensor, y_test: torch.Tensor, comm: Communicator, task: str = "classification",
                 average_buffers_into_local: bool = True) -> None:
        self.model, self.flat, self.comm, self.task = model, flat, comm, task
        self.average_buffers_into_local = average_buffers_into_local
        self.buffers = [b for b in model.buffers() if b.is_floating_point()]
        self.averaged_buffers = [b for b in averaged_model.buffers() if b.is_floating_point()]
        self.averaged_model = averaged_model
        self.averaged = FlatParameters(averaged_model, grads=False)
        self.x_test, self.y_test = x_test, y_test
        # The averaged model is the same on every node, so each node scores one slice of
        # the test set and the sums are reduced.
        n, r = comm.size, comm.rank
        self.slice = slice(r * len(y_test) // n, (r + 1) * len(y_test) // n)

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        x_bar = self.averaged.params
        x_bar.copy_(self.flat.params)
        self.comm.allreduce_(x_bar, "mean")
        if self.buffers:
            mean = torch.cat([b.reshape(-1) for b in self.buffers]).to(torch.float64)
            self.comm.allreduce_(mean, "mean")
            groups = [self.averaged_buffers] + ([self.buffers] if self.average_buffers_into_local else [])
            for group in groups:
                offset = 0
                for b in group:
                    b.copy_(mean[offset : offset + b.numel()].view_as(b))
                    offset += b.numel()
        dev = self.flat.params.device
        consensus = torch.sum((self.flat.params - x_bar) ** 2).to(torch.float64).reshape(1)

        avg_loss, avg_correct = _score(self.averaged_model, self.x_test[self.slice], self.y_test[self.slice],
                                       self.task)
        _, local_correct = _score(self.model, self.x_test, self.y_test, self.task)
        per_sample = self.y_test[0].numel()  # characters per sequence for language
        local_acc = local_correct / (len(self.y_test) * per_sample)

        sums = torch.tensor([avg_loss, avg_correct, local_acc], dtype=torch.float64, device=dev)
        sums = torch.cat([sums, consensus])
        self.comm.allreduce_(sums, "sum")
        low = torch.tensor([local_acc], dtype=torch.float64, device=dev)
        high = low.clone()
        self.comm.allreduce_(low, "min")
        self.comm.allreduce_(high, "max")
        n_test, n = len(self.y_test) * per_sample, self.comm.size
        return Evaluation(
            test_loss=sums[0].item() / n_test,
            test_acc=sums[1].item() / n_test,
            local_test_acc_mean=sums[2].item() / n,
            local_test_acc_min=low.item(),
            local_test_acc_max=high.item(),
            consensus_distance=sums[3].item() / n,
            node_test_acc=local_acc,
            node_distance=consensus.item(),
        )


def _score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str) -> tuple[float, float]:
    """(sum of losses, number correct) over x, y in chunks; a regression has no accuracy (NaN)."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0.0
    for start in range(0, len(y), _EVAL_BATCH):
        output = model(x[start : start + _EVAL_BATCH])
        target = y[start : start + _EVAL_BATCH]
        loss += task_loss(task, output, target, reduction="sum").item()
        correct += float("nan") if task == "regression" else (output.argmax(dim=-1) == target).sum().item()
    model.train(was_training)
    return loss, correct
