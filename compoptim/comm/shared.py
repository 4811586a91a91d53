"""Gossip rounds through MPI-3 shared memory (``backend.shared_memory=true``): on one machine,
each rank publishes its payload in a window the neighbours read in place.

A round of the point-to-point path moves every payload through the MPI library (into the
transport's buffers or straight into the receiver's, one or two copies per neighbour) and
then writes the mixed result over x, which the neighbours have just read. Here a rank copies
its payload once into its own slot of a shared window (``MPI.Win.Allocate_shared``), tells
its neighbours with a zero-byte message, and mixes straight from the neighbours' slots: one
copy per round whatever the degree, and x is written where no other rank reads.

Each payload size (and in-flight slot, for overlap) has its window with two slots per rank,
used by round parity. A rank rewrites slot p at round c + 2 only after its neighbours' tokens
of round c + 1, which each sends after it has finished mixing round c (read slot p). That
holds when the neighbours who read a rank's slot are the ones whose tokens it waits for, in
every round: a static undirected topology, which the communicator checks. Windows are
allocated collectively on first use of a size, so every rank must make the same sequence of
broadcast rounds (every synchronous gossip does). The sums read the same bytes in the same
order as the point-to-point path: results are bit-identical. Payloads under
``SHARED_MIN_BYTES`` stay on the point-to-point path.
"""

from __future__ import annotations

import numpy as np
import torch
from mpi4py import MPI

from compoptim.errors import UserError
from compoptim.topology.base import Topology

# Smaller payloads keep the point-to-point rounds: there the copy saved is worth less than
# the round's fixed cost, which measured higher through the window (``bench_comm.py``, 2
# ranks: 1.2-1.5x slower from 64 to 16,384 floats, level at 61,706, 0.68x at 269,722).
SHARED_MIN_BYTES = 128 * 1024
_TOKEN_TAG = 8
_ALIGN = 64  # slots start on cache lines
_TOKEN = np.empty(0, dtype=np.uint8)


def check_shared_memory(comm: MPI.Comm, topology: Topology) -> None:
    """One line, raised on every rank alike, where shared-memory rounds cannot be used."""
    if topology.directed or topology.period != 1:
        kind = "directed" if topology.directed else f"time-varying (period {topology.period})"
        raise UserError(f"backend.shared_memory=true needs a static undirected topology (a neighbour's read of a "
                        f"slot is acknowledged by its next round); topology={topology.name} is {kind}: "
                        f"set backend.shared_memory=false")
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    together = comm.allreduce(int(node.Get_size() == comm.Get_size()), op=MPI.MIN)
    node.Free()
    if not together:
        raise UserError(f"backend.shared_memory=true needs all {comm.Get_size()} ranks on one machine; they are on "
                        f"several: set backend.shared_memory=false")


class SharedRound:
    """The window of one payload size and slot: this rank's two parity slots, its
    neighbours' (read in place), and the persistent zero-byte token requests."""

    def __init__(self, comm: MPI.Comm, neighbors: tuple[int, ...], nbytes: int) -> None:
        stride = -(-nbytes // _ALIGN) * _ALIGN
        self.nbytes = nbytes
        self.window = MPI.Win.Allocate_shared(2 * stride, 1, comm=comm)  # collective
        # A passive epoch over the whole window for the run: Win.Sync then orders this
        # rank's stores to its slot before its token, and the neighbours' before their reads.
        self.window.Lock_all(MPI.MODE_NOCHECK)

        def slots(rank: int) -> torch.Tensor:
            memory, _ = self.window.Shared_query(rank)
            return torch.frombuffer(memory, dtype=torch.uint8, count=2 * stride).view(2, stride)[:, :nbytes]

        self.mine = slots(comm.Get_rank())
        theirs = [slots(j) for j in neighbors]
        self.rows = [[slot[parity] for slot in theirs] for parity in (0, 1)]  # kept views, per parity
        tokens = [np.empty(0, dtype=np.uint8) for _ in neighbors]
        self.requests = [comm.Recv_init(t, source=j, tag=_TOKEN_TAG) for t, j in zip(tokens, neighbors)]
        self.requests += [comm.Send_init(_TOKEN, dest=j, tag=_TOKEN_TAG) for j in neighbors]
        self.peers = [*neighbors, *neighbors]  # per request, for the timeout's message
        self.round = 0
        self.active = False

    def start(self, payload: torch.Tensor) -> None:
        """Publish the payload in this round's slot and tell the neighbours."""
        self.mine[self.round & 1].copy_(payload.reshape(-1)[: self.nbytes])
        self.window.Sync()
        MPI.Prequest.Startall(self.requests)
        self.active = True

    def finish(self) -> list[torch.Tensor]:
        """After the neighbours' tokens have arrived: their slots of this round, to read in place."""
        self.window.Sync()
        rows = self.rows[self.round & 1]
        self.round += 1
        self.active = False
        return rows

    def free(self) -> None:
        """Release the token requests and end the epoch. The window itself stays to
        MPI_Finalize: freeing it is collective, and at exit the ranks (some perhaps failed)
        need not close their communicators in the same order."""
        for request in self.requests:
            request.Free()
        self.window.Unlock_all()
