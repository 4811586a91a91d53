"""The Communicator contract shared by the MPI and in-process backends.

Both backends sum neighbour contributions in the same fixed order (self first, then
neighbours ascending) and reduce metrics by gathering and summing in rank order, so for
the same inputs they give bit-identical results.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from compoptim.comm.counters import TrafficCounters
from compoptim.comm.network import ALLREDUCE, NodeClock
from compoptim.compress.base import Compressor
from compoptim.errors import UserError
from compoptim.topology.base import Topology

REDUCE_OPS = ("sum", "mean", "max", "min")
# Upper bound on the (size x chunk) buffer a metric reduction gathers into.
_GATHER_BYTES = 16 * 2**20


@dataclass
class PendingMix:
    """An exchange in flight (between ``start_mix`` and ``finish_mix``)."""

    payload: torch.Tensor
    step: int
    handle: Any


class Communicator(ABC):
    """One node's view of the network.

    ``counters`` (a ``TrafficCounters``) holds this node's bytes and times: the exchanges
    and reductions here count into it, and so do the node's ``Metered`` compressors (hand
    them ``comm.counters``), which time the encodes and sample the compression error.
    """

    def __init__(self, rank: int, size: int, topology: Topology) -> None:
        if topology.n != size:
            raise ValueError(f"topology has {topology.n} nodes but the communicator has {size}")
        self.rank = rank
        self.size = size
        self.topology = topology
        self.counters = TrafficCounters()
        # The network time model's side on this node (``network.py``); None: rounds are not logged.
        self.clock: NodeClock | None = None
        # Weights (in-neighbours) and out-neighbours per round of the topology's period,
        # computed once (not per step).
        self._round_weights = [topology.weights(rank, r) for r in range(topology.period)]
        self._round_in = [tuple(w[1]) for w in self._round_weights]
        self._round_out = [tuple(topology.out_neighbors(rank, r)) for r in range(topology.period)]

    def neighbor_mix(
        self, payload: torch.Tensor, compressor: Compressor, out: torch.Tensor, step: int = 0,
        accumulate: bool = False,
    ) -> torch.Tensor:
        """out <- w_ii * decode(payload) + sum_j w_ij * decode(payload_j) over this round's neighbours
        (``accumulate``: out += the same sum, as CHOCO's s += sum_j w_ij q_j needs).

        The caller must leave the memory behind ``payload`` untouched until this returns.
        """
        return self.finish_mix(self.start_mix(payload, step), compressor, out, accumulate)

    def start_mix(self, payload: torch.Tensor | None, step: int = 0, nbytes: int | None = None,
                  skippable: bool = False) -> PendingMix:
        """Post the exchange of ``payload`` with this round's neighbours and return at once, so
        computation can run while it travels; ``finish_mix`` completes it. The payload's
        memory must stay untouched until then.

        The payload goes to the out-neighbours, and the neighbours' payloads come from the
        in-neighbours (the same nodes, unless the graph is directed). ``None`` sends nothing
        this round (an event-triggered method that skips): the out-neighbours receive an
        empty message, so every node still knows when the round is complete, and no byte is
        counted for it. ``nbytes`` is then the size of the payloads the neighbours may send
        (by default the payload's own size). Every node of such a round says ``skippable``,
        sender or not: its receives then expect that a neighbour may send nothing.
        """
        if nbytes is None:
            if payload is None:
                raise ValueError("start_mix without a payload needs nbytes, the size of the neighbours' payloads")
            nbytes = payload.numel()
        if self.clock is not None:
            self.clock.posted()
        start = time.perf_counter()
        r = step % self.topology.period
        sources, dests = self._round_in[r], self._round_out[r]
        if payload is None or skippable:
            handle = self._start([payload] * len(dests), sources, dests, nbytes, True)
        else:
            handle = self._start_broadcast(payload, sources, dests, nbytes)
        self.counters.comm_time_s += time.perf_counter() - start
        return PendingMix(payload, step, handle)

    def finish_mix(self, pending: PendingMix, compressor: Compressor, out: torch.Tensor,
                   accumulate: bool = False) -> torch.Tensor:
        """Wait for the neighbours' payloads of ``pending`` and write the weighted sum (see neighbor_mix)."""
        payload = pending.payload
        r = pending.step % self.topology.period
        self_w, nbr_w = self._round_weights[r]
        received = self._complete(pending.handle, payload, len(self._round_out[r]), pending.step)
        mixing = time.perf_counter()
        # Fixed summation order: self, then neighbours ascending (dict keeps that order).
        # mul with out= also covers out aliasing the payload (identity on x) without a copy.
        if payload is None:
            if not accumulate:
                raise ValueError("a round that sends nothing (payload None) can only accumulate into out")
        elif not nbr_w and self_w == 1.0 and not accumulate and \
                compressor.decode(payload, out.numel()).data_ptr() == out.data_ptr():
            return out  # no neighbours this round and the payload is out itself: nothing to mix
        elif accumulate:
            compressor.decode_add(payload, out, self_w)
        else:
            compressor.decode_scaled(payload, out, self_w)
        for weight, buf in zip(nbr_w.values(), received):
            if buf is not None:  # None: that neighbour sent nothing this round, which adds nothing
                compressor.decode_add(buf, out, weight)
        self.counters.compress_time_s += time.perf_counter() - mixing
        return out

    def exchange_edges(self, payloads: list[torch.Tensor], step: int = 0) -> list[torch.Tensor]:
        """Send ``payloads[k]`` to this round's k-th neighbour and return what each neighbour
        sent this node, in the same order: a message of its own per edge (PowerGossip's
        per-edge power iterations). Every payload of one call has the same size, as has every
        message a neighbour sends back. Undirected graphs only."""
        if self.topology.directed:
            raise ValueError("per-edge exchanges need an undirected topology")
        r = step % self.topology.period
        neighbors = list(self._round_weights[r][1])
        if len(payloads) != len(neighbors):
            raise ValueError(f"exchange_edges: {len(payloads)} payloads for {len(neighbors)} neighbours")
        if self.clock is not None:
            self.clock.posted()
        start = time.perf_counter()
        nbytes = payloads[0].numel() if payloads else 0
        handle = self._start(list(payloads), neighbors, neighbors, nbytes)
        self.counters.comm_time_s += time.perf_counter() - start
        return self._complete(handle, payloads[0] if payloads else None, len(neighbors), step)

    def _complete(self, handle: Any, payload: torch.Tensor | None, dests: int, step: int) -> list:
        """Wait for an exchange and count it: what was sent, what arrived, the time blocked."""
        counters = self.counters
        start, waited = time.perf_counter(), counters.wait_time_s
        received = self._finish(handle)
        counters.comm_time_s += time.perf_counter() - start - (counters.wait_time_s - waited)
        sent = 0 if payload is None else payload.numel()
        counters.bytes_sent += sent * dests
        counters.messages_sent += dests if payload is not None else 0
        if self.clock is not None:
            self.clock.waited(sent, step)
        counters.bytes_received += sum(r.numel() for r in received if r is not None)
        return received

    def progress(self) -> None:  # noqa: B027 - a no-op where transfers progress by themselves
        """Let exchanges in flight advance without waiting for them. Called from the backward
        pass (once per parameter tensor) while an overlapped exchange travels: MPI libraries
        without a progress thread move a large message only inside MPI calls."""

    def allreduce_(self, tensor: torch.Tensor, op: str = "sum", training: bool = False) -> torch.Tensor:
        """In-place reduction of a contiguous tensor over all nodes: metrics, or with
        ``training`` the all-reduce of a centralized baseline (then counted and timed as
        training traffic: the tensor's bytes sent, the other nodes' bytes received).

        Deterministic and backend-independent: each chunk is gathered and combined in rank
        order, so both backends give the same bits. Chunking bounds the gather buffer to
        about ``_GATHER_BYTES`` however large the model and n are.
        """
        start = time.perf_counter()
        if op not in REDUCE_OPS:
            raise ValueError(f"unknown reduction '{op}'; allowed: {', '.join(REDUCE_OPS)}")
        flat = tensor.view(-1)
        combine = {"sum": torch.add, "mean": torch.add, "max": torch.maximum, "min": torch.minimum}[op]
        chunk = self._chunk_numel(flat.numel(), flat.element_size())
        for offset in range(0, flat.numel(), chunk):
            self._combine_(flat[offset : offset + chunk], combine)
        if op == "mean":
            tensor.div_(self.size)
        nbytes = flat.numel() * flat.element_size() if self.size > 1 else 0  # one node sends nothing
        if training:
            self.counters.bytes_sent += nbytes
            self.counters.bytes_received += (self.size - 1) * nbytes
            self.counters.wait_time_s += time.perf_counter() - start  # a collective: mostly waiting for everyone
            if self.clock is not None:
                self.clock.waited(flat.numel() * flat.element_size(), 0, ALLREDUCE)
        else:
            self.counters.metric_bytes_sent += nbytes
            self.counters.metric_bytes_received += (self.size - 1) * nbytes
        return tensor

    def model_window(self, like: torch.Tensor) -> Any:
        """A one-sided window over this node's model (``comm/rma.py``): asynchronous gossip,
        which only MPI ranks can do; the in-process backend runs its nodes in lockstep."""
        raise UserError("asynchronous gossip (optimizer=adpsgd) reads and writes the neighbours' models through "
                        "MPI one-sided windows: start it with mpirun -np N compoptim-run (backend=mpi)")

    def allgather(self, tensor: torch.Tensor) -> torch.Tensor:
        """(size, numel) tensor whose row r is rank r's flattened ``tensor``: one row per node,
        for metric tables (the result may be shared between nodes: read it, do not write it)."""
        gathered = self._allgather(tensor)
        nbytes = tensor.numel() * tensor.element_size() if self.size > 1 else 0
        self.counters.metric_bytes_sent += nbytes
        self.counters.metric_bytes_received += (self.size - 1) * nbytes
        return gathered

    def _chunk_numel(self, numel: int, element_size: int) -> int:
        """Entries reduced at once: what keeps the (size x chunk) gather buffer near _GATHER_BYTES."""
        return max(1, _GATHER_BYTES // (self.size * element_size))

    def _combine_(self, part: torch.Tensor, combine: Any) -> None:
        """part <- combine over the nodes' ``part`` in rank order (rank 0's, then each next one's)."""
        gathered = self._allgather(part)
        part.copy_(gathered[0])
        for row in gathered[1:]:
            combine(part, row, out=part)

    def _start_broadcast(self, payload: torch.Tensor, sources: tuple[int, ...], dests: tuple[int, ...],
                         nbytes: int) -> Any:
        """``_start`` of one payload to every destination, in a round no node skips (every
        node's exchanges of a synchronous gossip): where a backend may keep per-round state."""
        return self._start([payload] * len(dests), sources, dests, nbytes)

    @abstractmethod
    def _start(self, sends: list[torch.Tensor | None], sources: list[int], dests: list[int], nbytes: int,
               skippable: bool = False) -> Any:
        """Post sending ``sends[k]`` (None: an empty message) to ``dests[k]`` and receiving a
        message of ``nbytes`` bytes from each of ``sources`` (or, where ``skippable``, an
        empty one); a handle for _finish.

        Called by every node every round, even one without neighbours in that round (the
        in-process backend synchronises all nodes).
        """

    @abstractmethod
    def _finish(self, handle: Any) -> list[torch.Tensor | None]:
        """The sources' payloads (None for an empty message), in the order of ``_start``'s
        ``sources``; adds the time spent blocked on them to ``counters.wait_time_s``."""

    @abstractmethod
    def _allgather(self, tensor: torch.Tensor) -> torch.Tensor:
        """(size, numel) tensor whose row r is rank r's flattened ``tensor``."""
