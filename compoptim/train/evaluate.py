"""Evaluation of the averaged model, the local models, and the consensus distance.

All figures are global: x_bar is the true average over all n nodes (an all-reduce, counted
as metric traffic), never a neighbourhood mean. x_bar and the distances to it are
accumulated in float64 (in float32, equal models would show a consensus distance of
~1e-13, never 0).

The decentralized objective is f(x) = (1/n) sum_i f_i(x), f_i the mean loss over node i's
training shard (nodes without data left out of the mean). ``train_objective`` is f(x_bar)
and ``grad_norm_sq`` is ||grad f(x_bar)||^2, the stationarity measure of nonconvex
decentralized papers: each node scores its own shard with x_bar in evaluation mode, and the
losses and gradients are averaged over the nodes. On the same shards, ``local_train_loss`` is
(1/n) sum_i f_i(x_i), the nodes' own models on their own data, and for tracking methods
``tracker_error`` is (1/n) sum_i ||y_i - grad f(x_bar)||^2, with y_i the node's tracker after
the last step (it tracks the minibatch gradients at the iterate before that step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from compoptim.comm.base import Communicator
from compoptim.optim.flat import FlatParameters
from compoptim.train.loss import full_gradient_, loss_terms, task_loss

_EVAL_BATCH = 1024


@dataclass
class Evaluation:
    test_loss: float
    test_acc: float
    local_test_acc_mean: float
    local_test_acc_min: float
    local_test_acc_max: float
    consensus_distance: float
    train_objective: float  # f(x_bar) on the training shards
    grad_norm_sq: float  # ||grad f(x_bar)||^2
    local_train_loss: float  # (1/n) sum_i f_i(x_i): each node's own model on its own shard
    tracker_error: float  # (1/n) sum_i ||y_i - grad f(x_bar)||^2 (NaN without a tracker)
    node_test_acc: float  # this node's own model
    node_distance: float  # this node's ||x_i - x_bar||^2
    stage_consensus: list[float]  # a pipeline's consensus distance per stage (empty without stages)


class Evaluator:
    """Scores the averaged model and this node's model on the test set.

    Buffers (BatchNorm running statistics) are not parameters, so gossip never mixes them:
    the averaged model gets the nodes' average buffers, and with ``average_buffers_into_local``
    every node's own buffers are set to that average too (``model.bn_stats=averaged``).
    """

    def __init__(self, model: nn.Module, flat: FlatParameters, averaged_model: nn.Module,
                 x_test: torch.Tensor, y_test: torch.Tensor, comm: Communicator, task: str = "classification",
                 average_buffers_into_local: bool = True, x_train: torch.Tensor | None = None,
                 y_train: torch.Tensor | None = None, tracker: Callable[[], torch.Tensor | None] | None = None,
                 assemble: Callable[[], None] | None = None, entry_stages: torch.Tensor | None = None) -> None:
        """``x_train``, ``y_train``: this node's training shard (or a fixed part of it), for
        f(x_bar), its gradient and the local models' loss (None: not measured, NaN);
        ``tracker``: the optimizer's gradient tracker (``DecentralizedOptimizer.tracker``).
        A pipeline rank's ``model`` is its replica's whole model: ``assemble`` fills it (and
        ``flat.params``) from the replica's stages before each evaluation, and
        ``entry_stages`` (the stage of each entry of ``flat.params``) splits the consensus
        distance by stage."""
        self.model, self.flat, self.comm, self.task = model, flat, comm, task
        self.average_buffers_into_local = average_buffers_into_local
        self.buffers = [b for b in model.buffers() if b.is_floating_point()]
        self.averaged_buffers = [b for b in averaged_model.buffers() if b.is_floating_point()]
        self.averaged_model = averaged_model
        self.averaged = FlatParameters(averaged_model, grads=x_train is not None)
        self.x_train, self.y_train = x_train, y_train
        self.tracker = tracker or (lambda: None)
        self.assemble = assemble or (lambda: None)
        self.entry_stages = None if entry_stages is None else entry_stages.to(flat.params.device)
        self.stage_count = 0 if entry_stages is None else int(entry_stages.max()) + 1
        # float64 x_bar and x_i - x_bar, kept from one evaluation to the next
        self._x_bar64 = torch.zeros(flat.numel, dtype=torch.float64, device=flat.params.device)
        self._diff64 = torch.zeros_like(self._x_bar64)
        self.x_test, self.y_test = x_test, y_test
        # The averaged model is the same on every node, so each node scores one slice of
        # the test set and the sums are reduced.
        n, r = comm.size, comm.rank
        self.slice = slice(r * len(y_test) // n, (r + 1) * len(y_test) // n)

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        self.assemble()
        x_bar64, diff = self._x_bar64, self._diff64
        x_bar64.copy_(self.flat.params)
        self.comm.allreduce_(x_bar64, "mean")
        self.averaged.params.copy_(x_bar64)  # the averaged model in the model's own dtype
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
        diff.copy_(self.flat.params)
        diff.sub_(x_bar64)
        consensus = torch.dot(diff, diff).reshape(1)
        stages = torch.zeros(self.stage_count, dtype=torch.float64, device=dev)
        if self.entry_stages is not None:
            stages.index_add_(0, self.entry_stages, diff * diff)
        objective, grad_f = self._objective()
        grad_norm_sq = float("nan") if grad_f is None else torch.dot(grad_f, grad_f).item()
        # this node's own model on its own shard, and its tracker's distance to grad f(x_bar)
        holds_data = self.x_train is not None and len(self.y_train) > 0
        own_loss = _score(self.model, self.x_train, self.y_train, self.task)[0] / loss_terms(self.y_train) \
            if holds_data else 0.0
        y = self.tracker()
        tracked = y is not None and grad_f is not None
        tracker_error = torch.sum((y.to(torch.float64) - grad_f) ** 2).item() if tracked else 0.0

        avg_loss, avg_correct = _score(self.averaged_model, self.x_test[self.slice], self.y_test[self.slice],
                                       self.task)
        _, local_correct = _score(self.model, self.x_test, self.y_test, self.task)
        per_sample = self.y_test[0].numel()  # characters per sequence for language
        local_acc = local_correct / (len(self.y_test) * per_sample)

        sums = torch.tensor([avg_loss, avg_correct, local_acc, own_loss, float(holds_data), tracker_error],
                            dtype=torch.float64, device=dev)
        sums = torch.cat([sums, consensus, stages])
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
            consensus_distance=sums[6].item() / n,
            train_objective=objective,
            grad_norm_sq=grad_norm_sq,
            local_train_loss=sums[3].item() / sums[4].item() if sums[4].item() > 0 else float("nan"),
            tracker_error=sums[5].item() / n if tracked else float("nan"),
            node_test_acc=local_acc,
            node_distance=consensus.item(),
            stage_consensus=(sums[7:] / n).tolist(),
        )


    def _objective(self) -> tuple[float, torch.Tensor | None]:
        """(f(x_bar), grad f(x_bar) in float64): every node's shard loss and gradient at
        x_bar, averaged over the nodes that hold data (one model-sized reduction); (NaN,
        None) when not measured."""
        if self.x_train is None:
            return float("nan"), None
        model, params = self.averaged_model, self.averaged
        was_training = model.training
        model.eval()
        params.zero_grad()
        shard_loss = full_gradient_(model, self.task, self.x_train, self.y_train, _EVAL_BATCH)  # f_i, grad f_i
        model.train(was_training)
        holds_data = 1.0 if len(self.y_train) else 0.0
        grad = params.grads.to(torch.float64)
        totals = torch.cat([grad, torch.tensor([shard_loss, holds_data], dtype=torch.float64, device=grad.device)])
        self.comm.allreduce_(totals, "sum")
        nodes = totals[-1].item()
        if nodes == 0:
            return float("nan"), None
        return totals[-2].item() / nodes, totals[:-2] / nodes


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
