"""n nodes inside one process: one thread per node, exchanging through shared memory.

Used by tests and by ``backend=local`` (no mpirun needed). An exchange costs one copy of
the payload into the node's own send slot and one barrier; the neighbours then read that
slot in place while they mix (no copy per neighbour, no allocation per step). Slots are
double-buffered by exchange parity: a node rewrites the slot of exchange e only at
exchange e + 2, which it cannot reach before every node has passed the barrier of e + 1,
that is, has finished reading exchange e. Sums run in the same order as in
MPICommunicator, so the results are bit-identical to an MPI run with the same inputs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from compoptim.comm.base import Communicator
from compoptim.cores import usable_cores
from compoptim.topology.base import Topology


class _Hub:
    """What the node threads share: the slots, one barrier, and the run tokens.

    Only ``active`` node threads compute at a time (one token each, about one per core):
    a node hands its token back while it waits at the barrier. Without this, 32 node
    threads on 2 cores fight over the interpreter lock at every tensor operation and spend
    most of the time switching instead of computing.
    """

    def __init__(self, n: int, active: int) -> None:
        self.n = n
        self.active = max(1, active)
        self.tokens = threading.BoundedSemaphore(self.active)
        # Whether this thread holds a token: only node threads started by run_nodes do, so a
        # communicator driven from elsewhere (tests, a single node) just uses the barrier.
        self._holding = threading.local()
        self.slots: list[Any] = [None] * n  # allgather: each node's tensor
        # send[rank][parity]: that node's payload of its latest exchanges of this parity
        self.send: list[list[torch.Tensor | None]] = [[None, None] for _ in range(n)]
        self.barrier = threading.Barrier(n)

    def take_token(self) -> None:
        self.tokens.acquire()
        self._holding.token = True

    def give_token(self) -> None:
        if getattr(self._holding, "token", False):
            self._holding.token = False
            self.tokens.release()

    def wait(self) -> None:
        """The barrier, without holding a run token while blocked."""
        held = getattr(self._holding, "token", False)
        self.give_token()
        try:
            self.barrier.wait()
        finally:
            if held:
                self.take_token()


class LocalCommunicator(Communicator):
    def __init__(self, hub: _Hub, rank: int, topology: Topology) -> None:
        super().__init__(rank, hub.n, topology)
        self._hub = hub
        self._exchanges = 0
        self._in_flight = 0
        # Send buffers per parity, reused while the payload's size, dtype and device stay the same.
        self._send: list[torch.Tensor | None] = [None, None]

    def _start(self, payload: torch.Tensor, neighbors: list[int]) -> tuple[int, list[int]]:
        # Two in flight could go start(e), start(e+1), finish(e), start(e+2): the last would
        # rewrite exchange e's slot before this node passed the barrier of e+1, while a
        # neighbour may still read it. (The algorithms here never need two.)
        if self._in_flight:
            raise RuntimeError("the in-process backend holds one exchange in flight per node; finish it first")
        self._in_flight = 1
        parity = self._exchanges % 2
        self._exchanges += 1
        slot = self._send[parity]
        if slot is None or slot.shape != payload.shape or slot.dtype != payload.dtype or \
                slot.device != payload.device:
            slot = self._send[parity] = torch.empty_like(payload)
        # A copy, not the payload itself: the payload may be the variable being mixed (the
        # identity on x), which this node overwrites while its neighbours still read.
        slot.copy_(payload)
        self._hub.send[self.rank][parity] = slot
        return parity, neighbors

    def _finish(self, handle: tuple[int, list[int]]) -> list[torch.Tensor]:
        parity, neighbors = handle
        self._in_flight = 0
        start = time.perf_counter()
        self._hub.wait()  # everyone has posted exchange e
        self.counters.wait_time_s += time.perf_counter() - start
        # Read in place: valid until this node's next barrier (see the module docstring).
        return [self._hub.send[j][parity] for j in neighbors]

    def _allgather(self, tensor: torch.Tensor) -> torch.Tensor:
        self._hub.slots[self.rank] = tensor.reshape(-1)
        self._hub.wait()
        gathered = torch.stack(list(self._hub.slots))
        self._hub.wait()
        return gathered


def local_network(topology: Topology, active: int | None = None) -> list[LocalCommunicator]:
    """One communicator per node of ``topology``, all joined by one in-process hub.

    ``active``: node threads computing at once; by default the cores available divided by
    torch's intra-op threads (at least 1)."""
    if active is None:
        active = max(1, usable_cores()[0] // torch.get_num_threads())
    hub = _Hub(topology.n, active)
    return [LocalCommunicator(hub, rank, topology) for rank in range(topology.n)]


def run_nodes(comms: Sequence[LocalCommunicator], fns: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``fns[r]()`` for every node r, node 0 in this thread and the others in their own; results by rank.

    If any node raises, the hub's barrier is broken so the others stop too, and the first
    error is re-raised here with the failing node in its ``node_rank`` attribute.
    """
    hub = comms[0]._hub
    results: list[Any] = [None] * len(fns)
    errors: list[BaseException] = []

    def node(rank: int) -> None:
        try:
            hub.take_token()
            results[rank] = fns[rank]()
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            exc.node_rank = rank
            errors.append(exc)
            hub.barrier.abort()
        finally:
            hub.give_token()

    # Node 0 runs in the calling thread: torch's intra-op pool is fastest from the thread
    # that made it (measured: LeNet-5 with 2 threads takes 1.4-2.2 ms per step from the
    # main thread, 3.3-4.1 ms from a new one), which is what a single node gets.
    threads = [threading.Thread(target=node, args=(r,), name=f"node{r}") for r in range(1, len(fns))]
    for t in threads:
        t.start()
    node(0)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def run_local(topology: Topology, fn: Callable[[Communicator], Any], active: int | None = None) -> list[Any]:
    """Run ``fn(comm)`` on every node of ``topology``, each in its own thread; results by rank
    (``active``: see ``local_network``)."""
    comms = local_network(topology, active)
    return run_nodes(comms, [lambda c=c: fn(c) for c in comms])
