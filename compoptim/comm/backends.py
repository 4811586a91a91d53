"""The backends ``backend=<name>`` chooses, as their settings: what the entry point reads to
start the nodes. Settings only, so this imports no MPI."""

from __future__ import annotations

from dataclasses import dataclass

from compoptim.errors import UserError, check_range
from compoptim.registry import Registry


@dataclass(frozen=True)
class MPIBackend:
    """One node per MPI rank: ``mpirun -np N compoptim-run``.

    ``cuda_aware``: whether the MPI library reads GPU memory; None asks the library
    (``MPIX_Query_cuda_support``), false stages GPU messages through pinned host buffers.
    ``timeout_s``: seconds a neighbour may be silent in one exchange before the run fails
    (a stuck or dead rank), > 0; None waits as long as it takes.
    ``shared_memory``: on one machine, gossip rounds go through MPI-3 shared-memory windows
    (each rank copies its payload once into its own slot, the neighbours mix from it in
    place) instead of point-to-point messages, for CPU payloads of 128 KiB and more (the
    others keep point-to-point); bit-identical results, and the byte counters still count
    one message per neighbour (what the algorithm communicates); needs every rank on one
    machine and a static undirected topology (``comm/shared.py``).
    ``stragglers`` / ``straggler_factor``: real slow ranks, for studying stragglers: each
    listed rank sleeps (factor - 1) x its own step time after every step, so its steps take
    ``straggler_factor`` times as long (``network.stragglers`` slows simulated time instead).
    """

    cuda_aware: bool | None = None
    timeout_s: float | None = None
    shared_memory: bool = False
    stragglers: tuple[int, ...] = ()
    straggler_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.timeout_s is not None:
            check_range("backend.timeout_s", self.timeout_s, 0.0, low_open=True)
        check_range("backend.straggler_factor", self.straggler_factor, 1.0)
        if any(r < 0 for r in self.stragglers):
            raise UserError(f"backend.stragglers lists ranks 0..N-1; got {list(self.stragglers)}")

    def slowdown(self, rank: int, size: int) -> float:
        """Extra sleep per second of step for ``rank`` (0: not a straggler)."""
        bad = [r for r in self.stragglers if r >= size]
        if bad:
            raise UserError(f"backend.stragglers names rank {bad[0]}, but the run has {size} ranks (0..{size - 1})")
        return self.straggler_factor - 1.0 if rank in self.stragglers else 0.0


@dataclass(frozen=True)
class LocalBackend:
    """All ``nodes`` in this one process, one thread each, no mpirun:
    ``compoptim-run backend=local backend.nodes=8``. Same results, bit for bit, as
    ``mpirun -np 8 compoptim-run`` with the same ``trainer.threads``.
    """

    nodes: int = 4


BACKENDS = Registry("backend")
BACKENDS.register("mpi", MPIBackend)
BACKENDS.register("local", LocalBackend)
