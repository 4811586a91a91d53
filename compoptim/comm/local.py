"""n nodes inside one process: one thread per node, exchanging through shared memory.

Used by tests and by ``backend=local`` (no mpirun needed). Each exchange is two barrier
phases: everyone posts, everyone reads, everyone leaves, so no node overwrites a buffer
another still reads. Sums run in the same order as in MPICommunicator, so the results are
bit-identical to an MPI run with the same inputs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.topology.base import Topology


class _Hub:
    def __init__(self, n: int) -> None:
        self.n = n
        self.slots: list[Any] = [None] * n
        self.barrier = threading.Barrier(n)


class LocalCommunicator(Communicator):
    def __init__(self, hub: _Hub, rank: int, topology: Topology) -> None:
        super().__init__(rank, hub.n, topology)
        self._hub = hub

    def _wait(self) -> None:
        start = time.perf_counter()
        self._hub.barrier.wait()
        self.wait_time_s += time.perf_counter() - start

    def _start(self, payload: torch.Tensor, neighbors: list[int]) -> list[int]:
        self._hub.slots[self.rank] = payload
        return neighbors

    def _finish(self, neighbors: list[int]) -> list[torch.Tensor]:
        self._wait()  # everyone has posted
        # Copy out before the release phase: afterwards the owners may change their memory.
        received = [self._hub.slots[j].clone() for j in neighbors]
        self._wait()
        return received

    def _allgather(self, tensor: torch.Tensor) -> torch.Tensor:
        self._hub.slots[self.rank] = tensor.reshape(-1)
        self._hub.barrier.wait()
        gathered = torch.stack(list(self._hub.slots))
        self._hub.barrier.wait()
        return gathered


def local_network(topology: Topology) -> list[LocalCommunicator]:
    """One communicator per node of ``topology``, all joined by one in-process hub."""
    hub = _Hub(topology.n)
    return [LocalCommunicator(hub, rank, topology) for rank in range(topology.n)]


def run_nodes(comms: Sequence[LocalCommunicator], fns: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``fns[r]()`` for every node r in its own thread; results by rank.

    If any node raises, the hub's barrier is broken so the others stop too, and the first
    error is re-raised here with the failing node in its ``node_rank`` attribute.
    """
    hub = comms[0]._hub
    results: list[Any] = [None] * len(fns)
    errors: list[BaseException] = []

    def node(rank: int) -> None:
        try:
            results[rank] = fns[rank]()
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            exc.node_rank = rank
            errors.append(exc)
            hub.barrier.abort()

    threads = [threading.Thread(target=node, args=(r,), name=f"node{r}") for r in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def run_local(topology: Topology, fn: Callable[[Communicator], Any]) -> list[Any]:
    """Run ``fn(comm)`` on every node of ``topology``, each in its own thread; results by rank."""
    comms = local_network(topology)
    return run_nodes(comms, [lambda c=c: fn(c) for c in comms])
