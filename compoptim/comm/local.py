"""n nodes inside one process: a few worker threads, each advancing many nodes.

Used by tests and by ``backend=local`` (no mpirun needed). Each node runs as a greenlet (a
coroutine with its own stack) on one of ``workers`` OS threads, about one per core. A node
computes until it reaches an exchange; there it switches back to its worker, which runs its
next node. When every node of every worker has reached the exchange, the workers meet at
one thread barrier and resume their nodes in order. So an exchange costs one copy of the
payload into the node's own send slot and, per worker, one pass and one barrier: there is
no thread per node and no OS switching between n working sets, and the cost per
node-step stays flat from a few nodes to a thousand.

The neighbours read a node's send slot in place while they mix (no copy per neighbour, no
allocation per step). Slots are double-buffered by exchange parity: a node rewrites the
slot of exchange e only at exchange e + 2, which it cannot reach before every node has
passed the barrier of e + 1, that is, has finished reading exchange e. Sums run in the
same order as in MPICommunicator, and a reduction is combined once, in rank order, for all
nodes, so the results are bit-identical to an MPI run with the same inputs, whatever the
number of workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from greenlet import greenlet

from compoptim.comm.base import Communicator
from compoptim.cores import usable_cores
from compoptim.topology.base import Topology


class _Unwind(BaseException):
    """Thrown into the nodes still waiting when the run ends early (another node failed)."""


class _Hub:
    """What the nodes share: the send slots, the workers' barrier, and reductions combined once."""

    def __init__(self, n: int, workers: int) -> None:
        self.n = n
        self.workers = max(1, min(workers, n))
        self.slots: list[Any] = [None] * n  # reductions: each node's tensor
        # send[rank][parity]: that node's payload of its latest exchange of this parity (None:
        # it sent nothing; a dict destination -> payload: a message per edge)
        self.send: list[list[Any]] = [[None, None] for _ in range(n)]
        self._lock = threading.Lock()
        self._combined: tuple[int, Any] = (-1, None)
        self._scheduling = False  # True while run_nodes drives the nodes

    def wait(self) -> None:
        """Until every node has reached this point: hand control back to this node's worker.

        Outside ``run_nodes`` (a test driving one communicator) only a network of one node
        can wait: there is no one else to wait for."""
        if not self._scheduling:
            if self.n == 1:
                return
            raise RuntimeError(f"the {self.n} nodes of an in-process network exchange only inside run_nodes")
        grad = torch.is_grad_enabled()  # thread state: the other nodes of this worker may change it
        greenlet.getcurrent().parent.switch()
        torch.set_grad_enabled(grad)

    def combined(self, generation: int, combine: Callable[[], Any]) -> Any:
        """``combine()`` of this reduction, computed by the first node to get here and shared
        by all (every node is between the same two barriers, in the same ``generation``)."""
        with self._lock:
            if self._combined[0] != generation:
                self._combined = (generation, combine())
            return self._combined[1]


class LocalCommunicator(Communicator):
    def __init__(self, hub: _Hub, rank: int, topology: Topology) -> None:
        super().__init__(rank, hub.n, topology)
        self._hub = hub
        self._exchanges = 0
        self._in_flight = 0
        self._reductions = 0
        # Send buffers per parity (one per distinct payload of an exchange), reused while the
        # payload's size, dtype and device stay the same.
        self._send: list[list[torch.Tensor | None]] = [[], []]

    def _start(self, sends: list[torch.Tensor | None], sources: list[int], dests: list[int], nbytes: int,
               skippable: bool = False) -> tuple[int, list[int]]:
        # Two in flight could go start(e), start(e+1), finish(e), start(e+2): the last would
        # rewrite exchange e's slot before this node passed the barrier of e+1, while a
        # neighbour may still read it. (The algorithms here never need two.)
        if self._in_flight:
            raise RuntimeError("the in-process backend holds one exchange in flight per node; finish it first")
        self._in_flight = 1
        parity = self._exchanges % 2
        self._exchanges += 1
        distinct = list({id(t): t for t in sends}.values())
        if len(distinct) <= 1:  # a broadcast (or nothing): one slot every destination reads
            posted: object = self._copy(parity, 0, distinct[0]) if distinct and distinct[0] is not None else None
        else:  # a message per edge: the destination finds its own by its rank
            posted = {j: None if t is None else self._copy(parity, k, t)
                      for k, (t, j) in enumerate(zip(sends, dests))}
        self._hub.send[self.rank][parity] = posted
        return parity, sources

    def _copy(self, parity: int, k: int, payload: torch.Tensor) -> torch.Tensor:
        """``payload`` copied into this node's k-th send slot of ``parity``.

        A copy, not the payload itself: the payload may be the variable being mixed (the
        identity on x), which this node overwrites while its neighbours still read."""
        slots = self._send[parity]
        while len(slots) <= k:
            slots.append(None)
        slot = slots[k]
        if slot is None or slot.shape != payload.shape or slot.dtype != payload.dtype or \
                slot.device != payload.device:
            slot = slots[k] = torch.empty_like(payload)
        return slot.copy_(payload)

    def _finish(self, handle: tuple[int, list[int]]) -> list[torch.Tensor | None]:
        parity, sources = handle
        self._in_flight = 0
        start = time.perf_counter()
        self._hub.wait()  # everyone has posted exchange e
        self.counters.wait_time_s += time.perf_counter() - start
        # Read in place: valid until this node's next barrier (see the module docstring).
        received = []
        for j in sources:
            posted = self._hub.send[j][parity]
            received.append(posted.get(self.rank) if isinstance(posted, dict) else posted)
        return received

    def _shared(self, tensor: torch.Tensor, combine: Callable[[list[torch.Tensor]], torch.Tensor]) -> torch.Tensor:
        """``combine`` of every node's ``tensor`` (rank order), computed once for the network."""
        hub = self._hub
        self._reductions += 1
        hub.slots[self.rank] = tensor
        hub.wait()
        result = hub.combined(self._reductions, lambda: combine(list(hub.slots)))
        hub.wait()  # every node has its result before the slots are reused
        return result

    def _chunk_numel(self, numel: int, element_size: int) -> int:
        # One chunk: the nodes' tensors are combined in place into one result, there is no
        # (size x chunk) buffer to bound, and every chunk would cost two passes over all nodes.
        return max(1, numel)

    def _combine_(self, part: torch.Tensor, combine: Callable[..., torch.Tensor]) -> None:
        def in_rank_order(parts: list[torch.Tensor]) -> torch.Tensor:
            total = parts[0].clone()  # the same sequence of operations as Communicator._combine_
            for row in parts[1:]:
                combine(total, row, out=total)
            return total

        part.copy_(self._shared(part, in_rank_order))

    def _allgather(self, tensor: torch.Tensor) -> torch.Tensor:
        # One stacked copy for all nodes (they only read it), not n copies of n rows.
        return self._shared(tensor.reshape(-1), torch.stack)


def default_workers() -> int:
    """Worker threads of an in-process network: the cores available divided by torch's
    intra-op threads, at least 1 (a worker is one node computing at a time)."""
    return max(1, usable_cores()[0] // torch.get_num_threads())


def local_network(topology: Topology, workers: int | None = None) -> list[LocalCommunicator]:
    """One communicator per node of ``topology``, all joined by one in-process hub that
    ``run_nodes`` drives with ``workers`` threads (default: ``default_workers()``)."""
    hub = _Hub(topology.n, default_workers() if workers is None else workers)
    return [LocalCommunicator(hub, rank, topology) for rank in range(topology.n)]


class _Pass:
    """What the workers agree on at each barrier: nodes still running, and why to stop."""

    def __init__(self, n: int) -> None:
        self.running = n
        self.waiting = 0  # nodes that reached an exchange in this pass
        self.finished = 0  # nodes that ended, over the whole run
        self.failed = False
        # Whether the workers stop after this barrier: decided once, in the barrier's action,
        # so every worker reads the same answer. (Reading ``failed`` and ``running`` after
        # the barrier raced: a worker that woke first could run a node that failed or ended
        # before a slower worker looked, and the two then parted, one waiting for ever.)
        self.stop = False
        self.lock = threading.Lock()

    def node_ended(self, failed: bool) -> None:
        with self.lock:
            self.finished += 1
            self.running -= 1
            self.failed = self.failed or failed

    def node_waits(self) -> None:
        with self.lock:
            self.waiting += 1


def run_nodes(comms: Sequence[LocalCommunicator], fns: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``fns[r]()`` for every node r on the hub's worker threads (the first in this
    thread); the results by rank.

    If any node raises, the nodes still running are unwound at the next barrier, and the
    first error is re-raised here with the failing node in its ``node_rank`` attribute. A
    node that reaches an exchange after another node has returned can never complete it:
    that is an error too, not a hang.
    """
    hub = comms[0]._hub
    n = len(fns)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    state = _Pass(n)
    mismatch: list[str] = []

    def agree() -> None:  # run by one worker when all have arrived, before any leaves
        if state.waiting and state.finished and not state.failed:
            mismatch.append(f"{state.waiting} node(s) wait for an exchange that {state.finished} node(s) that "
                            f"already returned will never join")
            state.failed = True
        state.waiting = 0
        state.stop = state.failed or state.running == 0

    barrier = threading.Barrier(hub.workers, action=agree)

    grad = torch.is_grad_enabled()

    def node(rank: int) -> None:
        torch.set_grad_enabled(grad)  # a node starts in the caller's mode, not the one its worker last ran in
        try:
            results[rank] = fns[rank]()
        except _Unwind:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            exc.node_rank = rank
            errors.append(exc)
            state.node_ended(failed=True)
            return
        state.node_ended(failed=False)

    def work(ranks: list[int]) -> None:
        nodes = [greenlet(lambda r=r: node(r)) for r in ranks]
        try:
            while True:
                for g in nodes:
                    g.switch()  # back here when the node waits at an exchange, or ends
                    if not g.dead:
                        state.node_waits()
                nodes = [g for g in nodes if not g.dead]
                barrier.wait()
                if state.stop:
                    break
        except threading.BrokenBarrierError:
            pass
        except BaseException:
            barrier.abort()  # a Ctrl-C in this thread: the other workers stop at once
            raise
        finally:
            for g in nodes:  # nodes left waiting: run their cleanup, they never resume
                while not g.dead:
                    g.throw(_Unwind())

    share = [list(range(w * n // hub.workers, (w + 1) * n // hub.workers)) for w in range(hub.workers)]
    threads = [threading.Thread(target=work, args=(ranks,), name=f"nodes{ranks[0]}-{ranks[-1]}")
               for ranks in share[1:]]
    hub._scheduling = True
    try:
        for t in threads:
            t.start()
        # Worker 0 (with node 0) runs in the calling thread: torch's intra-op pool is fastest
        # from the thread that made it, which matters when one node has the machine.
        work(share[0])
    finally:
        for t in threads:
            t.join()
        hub._scheduling = False
        torch.set_grad_enabled(grad)  # this thread ran nodes: give it back in the caller's mode
    if errors:
        raise errors[0]
    if mismatch:
        raise RuntimeError(mismatch[0])
    return results


def run_local(topology: Topology, fn: Callable[[Communicator], Any], workers: int | None = None) -> list[Any]:
    """Run ``fn(comm)`` on every node of ``topology``; results by rank (``workers``: see ``local_network``)."""
    comms = local_network(topology, workers)
    return run_nodes(comms, [lambda c=c: fn(c) for c in comms])
