"""n nodes inside one process: one thread per node, exchanging through shared memory.

Used by tests (no mpirun needed). Each exchange is two barrier phases: everyone posts,
everyone reads, everyone leaves, so no node overwrites a buffer another still reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.topology.base import Topology


class _Hub:
    def __init__(self, n: int) -> None:
        self.n = n
        self.slots: list[Any] = [None] * n
        self.barrier = threading.Barrier(n)

    def post_and_collect(self, rank: int, item: Any) -> list[Any]:
        self.slots[rank] = item
        self.barrier.wait()
        snapshot = list(self.slots)
        return snapshot

    def release(self) -> None:
        self.barrier.wait()


class LocalCommunicator(Communicator):
    def __init__(self, hub: _Hub, rank: int, topology: Topology) -> None:
        super().__init__(rank, hub.n, topology)
        self._hub = hub

    def _exchange(self, payload: torch.Tensor, neighbors: list[int]) -> list[torch.Tensor]:
        slots = self._hub.post_and_collect(self.rank, payload)
        # Copy out before the release phase: afterwards the owners may change their memory.
        received = [slots[j].clone() for j in neighbors]
        self._hub.release()
        return received

    def _allgather(self, tensor: torch.Tensor) -> torch.Tensor:
        slots = self._hub.post_and_collect(self.rank, tensor.reshape(-1))
        gathered = torch.stack([s.clone() for s in slots])
        self._hub.release()
        return gathered


def run_local(topology: Topology, fn: Callable[[Communicator], Any]) -> list[Any]:
    """Run ``fn(comm)`` on every node of ``topology`` in its own thread; results by rank.

    If any node raises, the barrier is broken so the others stop too, and the first
    error is re-raised here.
    """
    hub = _Hub(topology.n)
    results: list[Any] = [None] * topology.n
    errors: list[BaseException] = []

    def node(rank: int) -> None:
        try:
            results[rank] = fn(LocalCommunicator(hub, rank, topology))
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            hub.barrier.abort()

    threads = [threading.Thread(target=node, args=(r,), name=f"node{r}") for r in range(topology.n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
