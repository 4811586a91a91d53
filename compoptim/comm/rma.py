"""One-sided (RMA) model windows for asynchronous gossip (AD-PSGD): each rank exposes its
model in an MPI window, and a neighbour averages with it without waiting for it.

The window holds the node's model x_i (the authoritative copy) and, after it, a counter of
the averagings other nodes applied to it. Every rank opens one passive access epoch to all
windows for the whole run (``Lock_all``), and guards each node's window with a mutex of its
own: an int64 taken by an atomic compare-and-swap and released by another. So no access
waits for the target to enter MPI (MPI_Win_lock does, in MPICH, when the target computes:
measured, a lock on a busy rank waited for its whole computation), and every change is
additive and made while holding the target's mutex, so none is lost:

- the owner reads x_i under its own mutex (a consistent snapshot for its gradient);
- a pairwise averaging of i with j: under j's mutex, i gets x_j and adds (x_i - x_j)/2 to it
  (and 1 to j's counter); then, under its own mutex, adds (x_j - x_i)/2 and its own step
  to x_i. The two halves add and subtract the same vector, so sum_i x_i is preserved by the
  averaging, and since no rank ever holds two mutexes no cycle of ranks can wait on each
  other;
- ``tickets``: a step counter on rank 0, taken with an atomic fetch-and-add, that ends an
  epoch after n x (steps per shard) steps in total however they are spread over the ranks.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from mpi4py import MPI

_MPI_TYPES = {torch.float32: MPI.FLOAT, torch.float64: MPI.DOUBLE}
_FREE, _HELD = np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64)


class ModelWindow:
    """This rank's model window (and its view of everyone's): see the module docstring."""

    def __init__(self, comm: MPI.Comm, like: torch.Tensor) -> None:
        if like.dtype not in _MPI_TYPES or like.device.type != "cpu":
            raise ValueError(f"model windows hold float32 or float64 CPU models; got {like.dtype} on {like.device}")
        self.comm, self.rank = comm, comm.Get_rank()
        self.numel, self.mpi_type = like.numel(), _MPI_TYPES[like.dtype]
        itemsize = like.element_size()
        self.win = MPI.Win.Allocate((self.numel + 1) * itemsize, itemsize, comm=comm)
        self.mutex = MPI.Win.Allocate(8, 8, comm=comm)
        self.tickets = MPI.Win.Allocate(8 if self.rank == 0 else 0, 8, comm=comm)
        np.frombuffer(self.win.tomemory(), dtype=np.uint8)[:] = 0  # no averagings yet (the model is written below)
        np.frombuffer(self.mutex.tomemory(), dtype=np.int64)[:] = 0
        comm.Barrier()
        for w in (self.win, self.mutex, self.tickets):
            w.Lock_all()
        self._one = np.ones(1, dtype=np.int64)
        self._result = np.zeros(1, dtype=np.int64)
        self._theirs = torch.empty(self.numel + 1, dtype=like.dtype)
        self._delta = torch.empty(self.numel + 1, dtype=like.dtype)
        self._own = torch.empty(self.numel + 1, dtype=like.dtype)
        self.write(like)

    @property
    def message_nbytes(self) -> int:
        """Bytes of one get or accumulate: the model and its counter."""
        return (self.numel + 1) * self._own.element_size()

    def _acquire(self, j: int) -> None:
        while True:
            self.mutex.Compare_and_swap(_HELD, _FREE, self._result, j)
            self.mutex.Flush(j)
            if self._result[0] == 0:
                return
            time.sleep(2e-5)  # held by another rank for the few copies of one averaging

    def _release(self, j: int) -> None:
        self.mutex.Compare_and_swap(_FREE, _HELD, self._result, j)
        self.mutex.Flush(j)

    def _get(self, j: int, out: torch.Tensor) -> None:
        self.win.Get([out.numpy(), self.mpi_type], j)
        self.win.Flush(j)

    def _add(self, j: int, delta: torch.Tensor) -> None:
        self.win.Accumulate([delta.numpy(), self.mpi_type], j, op=MPI.SUM)
        self.win.Flush(j)

    def write(self, x: torch.Tensor) -> None:
        """x_i <- x, counter kept (a start or a resume); collective: every rank writes, then all meet."""
        self._acquire(self.rank)
        self._get(self.rank, self._own)
        self._own[: self.numel].copy_(x.reshape(-1))
        self.win.Put([self._own.numpy(), self.mpi_type], self.rank)
        self.win.Flush(self.rank)
        self._release(self.rank)
        self.comm.Barrier()

    def read_into(self, out: torch.Tensor) -> float:
        """out <- x_i (a consistent snapshot); the counter at that moment."""
        self._acquire(self.rank)
        self._get(self.rank, self._own)
        self._release(self.rank)
        out.reshape(-1).copy_(self._own[: self.numel])
        return float(self._own[self.numel])

    def average_and_add(self, j: int | None, update: torch.Tensor) -> float:
        """Average x_i with x_j (j None: no neighbour), then x_i += update; the counter after."""
        delta = self._delta
        if j is not None:
            self._acquire(self.rank)
            self._get(self.rank, delta)
            self._release(self.rank)
            self._acquire(j)
            self._get(j, self._theirs)
            delta.sub_(self._theirs).mul_(0.5)  # (x_i - x_j)/2: what j gains and i loses
            delta[self.numel] = 1.0  # one more averaging applied to j by someone else
            self._add(j, delta)
            self._release(j)
            delta.neg_()
        else:
            delta.zero_()
        delta[: self.numel].add_(update.reshape(-1))
        delta[self.numel] = 0.0  # this node's own changes are not counted
        self._acquire(self.rank)
        self._add(self.rank, delta)
        self._get(self.rank, self._own)
        self._release(self.rank)
        return float(self._own[self.numel])

    def reset_tickets(self) -> None:
        """Collective: the step counter back to 0, before any rank takes a ticket."""
        self.comm.Barrier()  # every rank has taken its last ticket of the previous epoch
        if self.rank == 0:
            self.tickets.Accumulate(np.zeros(1, dtype=np.int64), 0, op=MPI.REPLACE)
            self.tickets.Flush(0)
        self.comm.Barrier()

    def take_ticket(self) -> int:
        """The number of steps taken over all ranks before this one (an atomic fetch-and-add)."""
        self.tickets.Fetch_and_op(self._one, self._result, 0, op=MPI.SUM)
        self.tickets.Flush(0)
        return int(self._result[0])

    def free(self) -> None:
        """Collective: release the windows."""
        for w in (self.win, self.mutex, self.tickets):
            w.Unlock_all()
            w.Free()
