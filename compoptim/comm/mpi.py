"""MPICommunicator: raw-byte, nonblocking point-to-point exchange with this round's neighbours.

Every node posts all its receives and sends at once and waits for them together, so the
exchange cannot deadlock for any n (odd, prime, 2) and there is no global barrier per step;
time-varying graphs just change the neighbour list per round. Receive buffers are allocated
once per payload size (for the largest degree over the schedule) and reused every step;
payloads travel as the bytes of a uint8 tensor, never pickled.

A round whose payload is one buffer sent to every neighbour (every exact and compressed
gossip: the payload is the model itself or a compressor's kept buffer) runs on persistent
requests (``Send_init``/``Recv_init``), created the first time that neighbour list, payload
size, in-flight slot and send buffer meet and then only restarted (``Startall``) each round,
with the receive rows' views kept beside them: the per-round Python and MPI set-up a
round of fresh ``Isend``/``Irecv`` pays is paid once per run.

CUDA payloads are staged through pinned host buffers (one copy each way), unless the MPI
library is CUDA-aware (``cuda_aware=True``, or ``None`` to ask the library through
``MPIX_Query_cuda_support``), in which case device buffers go to MPI directly.
"""

from __future__ import annotations

import atexit
import ctypes
import time
import weakref

import numpy as np
import torch
from mpi4py import MPI

from compoptim.comm.backends import MPIBackend
from compoptim.comm.base import Communicator
from compoptim.comm.shared import SHARED_MIN_BYTES, SharedRound, check_shared_memory
from compoptim.topology.base import Topology

_GOSSIP_TAG = 7
_ALIGN = 16
_KEPT_CHANNELS = 64  # persistent channels kept before the idle ones are freed (send buffers that keep moving)
_SPIN_S = 0.002  # with a timeout, a wait polls without sleeping this long first (a round is ~10 us to ~1 ms)


def mpi_is_cuda_aware() -> bool:
    """What the loaded MPI library reports through MPIX_Query_cuda_support (Open MPI, MPICH);
    False when it has no such query or the library cannot be found."""
    for library in [None, *_loaded_mpi_libraries()]:
        try:
            query = ctypes.CDLL(library).MPIX_Query_cuda_support
        except (AttributeError, OSError):
            continue
        query.restype = ctypes.c_int
        return bool(query())
    return False


def _loaded_mpi_libraries() -> list[str]:
    """Paths of the libmpi* shared objects mapped into this process (Linux), as mpi4py loaded them privately."""
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if "/libmpi" in line})
    except OSError:
        return []


class MPICommunicator(Communicator):
    """``cuda_aware``, ``timeout_s`` and ``shared_memory`` are ``backend=mpi``'s settings
    (``MPIBackend``, where their defaults and meaning live)."""

    def __init__(self, comm: MPI.Comm, topology: Topology, cuda_aware: bool | None = MPIBackend.cuda_aware,
                 timeout_s: float | None = MPIBackend.timeout_s,
                 shared_memory: bool = MPIBackend.shared_memory) -> None:
        super().__init__(comm.Get_rank(), comm.Get_size(), topology)
        if shared_memory:
            check_shared_memory(comm, topology)
        self.shared_memory = shared_memory
        self._shared: dict[tuple[int, int], SharedRound] = {}  # by (payload size, in-flight slot)
        self.comm = comm
        # With a timeout, a neighbour that sends nothing for timeout_s seconds is an error
        # (a stuck or dead rank) instead of an endless wait.
        self.timeout_s = timeout_s
        self.cuda_aware = mpi_is_cuda_aware() if cuda_aware is None else bool(cuda_aware)
        self._max_degree = max(len(w[1]) for w in self._round_weights)
        # Buffers keyed by (what, numel, dtype, device), allocated on first use only.
        self._buffers: dict[tuple, torch.Tensor] = {}
        self._in_flight: dict[int, int] = {}  # payload size -> exchanges of that size in flight
        self._pending: list[list] = []  # request lists of the exchanges started and not finished
        self._channels: dict[tuple, _Channel] = {}  # persistent exchanges, by _start_channel's key
        _OPEN.add(self)
        # progress() may be called from autograd's device thread (a CUDA backward pass):
        # only when the library allows calls from any thread, one at a time.
        self._can_poll = MPI.Query_thread() >= MPI.THREAD_SERIALIZED

    def _buffer(self, key: tuple, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
                pinned: bool = False) -> torch.Tensor:
        buf = self._buffers.get(key)
        if buf is None:
            buf = torch.empty(shape, dtype=dtype, device=device, pin_memory=pinned)
            self._buffers[key] = buf
        return buf

    def _take_slot(self, nbytes: int) -> int:
        """The in-flight slot of a new exchange of ``nbytes``: exchanges in flight at the same
        time (overlap) get their own buffers and requests. ``_finish`` gives it back."""
        slot = self._in_flight.get(nbytes, 0)
        self._in_flight[nbytes] = slot + 1
        return slot

    def _receive_rows(self, nbytes: int, device: torch.device, slot: int,
                      pinned: bool = False) -> tuple[torch.Tensor, int]:
        """The (max degree, nbytes) receive buffer of this size and slot, and its row stride.
        Rows start at multiples of 16 bytes, so every received payload's typed fields stay
        aligned (a payload need not be a multiple of 4 bytes long)."""
        stride = -(-nbytes // _ALIGN) * _ALIGN
        buf = self._buffer(("recv", nbytes, device, slot), (self._max_degree, stride), torch.uint8, device,
                           pinned=pinned)
        return buf[:, :nbytes], stride

    def _start_broadcast(self, payload: torch.Tensor, sources, dests, nbytes: int) -> tuple | _Channel | SharedRound:
        if self.shared_memory and payload.device.type == "cpu" and nbytes >= SHARED_MIN_BYTES:
            return self._start_shared(payload, sources, nbytes)
        if (sources or dests) and (payload.device.type == "cpu" or self.cuda_aware):
            return self._start_channel(payload, sources, dests, nbytes)
        return self._start([payload] * len(dests), sources, dests, nbytes)

    def _start_shared(self, payload: torch.Tensor, neighbors, nbytes: int) -> SharedRound:
        slot = self._take_slot(nbytes)
        shared = self._shared.get((nbytes, slot))
        if shared is None:  # collective: every rank makes the same sequence of broadcast rounds
            shared = self._shared[(nbytes, slot)] = SharedRound(self.comm, tuple(neighbors), nbytes)
        shared.start(payload)
        self._pending.append(shared.requests)
        return shared

    def _start(self, sends: list[torch.Tensor | None], sources: list[int], dests: list[int], nbytes: int,
               skippable: bool = False) -> tuple:
        if not sources and not dests:
            return ([], [], [], None, 0, False)
        device = next((t.device for t in sends if t is not None), torch.device("cpu"))
        on_gpu = device.type != "cpu"
        staged = on_gpu and not self.cuda_aware
        # Page-locked host memory only when it stages a GPU payload: pinning creates a CUDA
        # context, which a CPU-only rank on a GPU machine must not hold.
        recv_device = device if on_gpu and not staged else torch.device("cpu")
        slot = self._take_slot(nbytes)
        recv, stride = self._receive_rows(nbytes, recv_device, slot, pinned=staged)
        # One buffer per distinct payload: a broadcast sends the same tensor to every neighbour.
        wire: dict[int, object] = {}
        for k, t in enumerate(sends):
            if t is None or id(t) in wire:
                continue
            if staged:
                host = self._buffer(("send", nbytes, slot, k), (t.numel(),), torch.uint8, torch.device("cpu"),
                                    pinned=True)
                wire[id(t)] = _buf(host.copy_(t))
            else:
                if on_gpu:  # MPI reads device memory outside torch's stream order
                    torch.cuda.current_stream(device).synchronize()
                wire[id(t)] = _buf(t)
        requests = [self.comm.Irecv(_buf(recv[k]), source=j, tag=_GOSSIP_TAG) for k, j in enumerate(sources)]
        requests += [self.comm.Isend(_EMPTY if t is None else wire[id(t)], dest=j, tag=_GOSSIP_TAG)
                     for t, j in zip(sends, dests)]
        self._pending.append(requests)
        # Where a source may send an empty message, each receive's length is read from its status.
        return (requests, sources, dests, (recv, staged, device, stride, slot), nbytes, skippable)

    def _start_channel(self, payload: torch.Tensor, sources, dests, nbytes: int) -> _Channel:
        """Restart the persistent requests of this broadcast (created on first use)."""
        slot = self._take_slot(nbytes)
        key = (tuple(sources), tuple(dests), nbytes, slot, payload.data_ptr(), payload.device)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._new_channel(key, payload)
        if payload.device.type != "cpu":  # MPI reads device memory outside torch's stream order
            torch.cuda.current_stream(payload.device).synchronize()
        MPI.Prequest.Startall(channel.requests)
        channel.active = True
        self._pending.append(channel.requests)
        return channel

    def _new_channel(self, key: tuple, payload: torch.Tensor) -> _Channel:
        sources, dests, nbytes, slot, _, device = key
        if len(self._channels) >= _KEPT_CHANNELS:  # free the idle ones: their send buffers have moved on
            for old_key, old in list(self._channels.items()):
                if not old.active:
                    for request in old.requests:
                        request.Free()
                    del self._channels[old_key]
        recv, _ = self._receive_rows(nbytes, device, slot)
        rows = list(recv[: len(sources)])
        # The payload viewed as exactly nbytes bytes: the buffer MPI is told to send.
        wire = _buf(payload.reshape(-1)[:nbytes])
        requests = [self.comm.Recv_init(_buf(row), source=j, tag=_GOSSIP_TAG) for row, j in zip(rows, sources)]
        requests += [self.comm.Send_init(wire, dest=j, tag=_GOSSIP_TAG) for j in dests]
        channel = self._channels[key] = _Channel(requests, rows, [*sources, *dests], nbytes)
        return channel

    def close(self) -> None:
        """Free the persistent requests (MPI reports any still allocated at MPI_Finalize).
        Called when the communicator is collected, and at exit for those still open."""
        if MPI.Is_finalized():
            return
        channels = getattr(self, "_channels", {})  # none: __init__ failed before making them
        for channel in channels.values():
            if not channel.active:  # an exchange cut short (a failed run) keeps its requests
                for request in channel.requests:
                    request.Free()
        channels.clear()
        shared = getattr(self, "_shared", {})
        for window in shared.values():
            if not window.active:
                window.free()
        shared.clear()

    __del__ = close

    def progress(self) -> None:
        # Completed requests become null (a later wait on them is free) and leave the list,
        # so the polls after an exchange has landed cost nothing.
        if self._pending and self._can_poll:
            self._pending = [requests for requests in self._pending if not MPI.Request.Testall(requests)]

    def _finish(self, handle: tuple | _Channel | SharedRound) -> list[torch.Tensor | None]:
        if type(handle) is _Channel or type(handle) is SharedRound:
            start = time.perf_counter()
            if self.timeout_s is None:
                MPI.Request.Waitall(handle.requests)
            else:
                self._wait_with_timeout(handle.requests, handle.peers, start, None)
            self.counters.wait_time_s += time.perf_counter() - start
            pending = self._pending
            for k, requests in enumerate(pending):  # by identity: lists of finished requests compare equal
                if requests is handle.requests:
                    del pending[k]
                    break
            self._in_flight[handle.nbytes] -= 1
            if type(handle) is SharedRound:
                return handle.finish()
            handle.active = False
            return handle.rows
        requests, sources, dests, buffers, nbytes, sized = handle
        if not requests:
            return []
        start = time.perf_counter()
        statuses = [MPI.Status() for _ in requests] if sized else None
        if self.timeout_s is None:
            MPI.Request.Waitall(requests, statuses)
        else:
            self._wait_with_timeout(requests, sources + dests, start, statuses)
        self.counters.wait_time_s += time.perf_counter() - start
        self._pending = [r for r in self._pending if r is not requests]
        recv, staged, device, stride, slot = buffers
        self._in_flight[nbytes] -= 1
        degree = len(sources)
        if staged:
            dev_recv = self._buffer(("recv_dev", nbytes, device, slot), (self._max_degree, stride), torch.uint8,
                                    device)[:, :nbytes]
            dev_recv[:degree].copy_(recv[:degree], non_blocking=True)
            recv = dev_recv
        rows = list(recv[:degree])
        if sized:  # an empty message: that source sent nothing this round
            rows = [row if status.Get_count(MPI.BYTE) else None for row, status in zip(rows, statuses)]
        return rows

    def _wait_with_timeout(self, requests: list, peers: list[int], start: float, statuses: list | None) -> None:
        while not MPI.Request.Testall(requests, statuses):
            elapsed = time.perf_counter() - start
            if elapsed < _SPIN_S:  # most rounds land within a few polls: no sleep for them
                continue
            if elapsed > self.timeout_s:
                # One request per peer (receives from the sources, then sends to the destinations):
                # a neighbour is stuck if either is unfinished (a large send completes only when
                # the receiver takes part).
                pending = sorted({peers[k] for k, r in enumerate(requests) if not r.Test()})
                raise TimeoutError(f"no exchange with neighbour rank(s) {', '.join(map(str, pending)) or '?'} within "
                                   f"backend.timeout_s={self.timeout_s:g} s: a rank is stuck or gone")
            time.sleep(0.0005)

    def model_window(self, like: torch.Tensor):
        """A one-sided window over this rank's model, for asynchronous gossip (``rma.py``)."""
        from compoptim.comm.rma import ModelWindow

        return ModelWindow(self.comm, like)

    def _allgather(self, tensor: torch.Tensor) -> torch.Tensor:
        flat = tensor.detach().reshape(-1)
        host = flat.cpu().contiguous() if flat.device.type != "cpu" else flat.contiguous()
        out = self._buffer(("gather", host.numel(), host.dtype), (self.size, host.numel()), host.dtype, host.device)
        if self.timeout_s is None:
            self.comm.Allgather(host.numpy(), out.numpy())
        else:  # the reductions (metrics, stop flags) are bounded by the same timeout as the exchanges
            request, start = self.comm.Iallgather(host.numpy(), out.numpy()), time.perf_counter()
            while not request.Test():
                if time.perf_counter() - start > self.timeout_s:
                    raise TimeoutError(f"a reduction over all ranks did not complete within backend.timeout_s="
                                       f"{self.timeout_s:g} s: a rank is stuck or gone")
                time.sleep(0.0005)
        return out.to(tensor.device)


class _Channel:
    """One broadcast exchange on persistent requests: receives from ``peers``' sources then
    sends to its destinations (the order ``_wait_with_timeout`` reads) and the kept receive
    rows in source order."""

    __slots__ = ("active", "nbytes", "peers", "requests", "rows")

    def __init__(self, requests: list, rows: list[torch.Tensor], peers: list[int], nbytes: int) -> None:
        self.requests, self.rows, self.peers, self.nbytes = requests, rows, peers, nbytes
        self.active = False  # started and not yet finished


# The communicators alive, whose persistent requests are freed at exit: registered after
# mpi4py's own exit handler (which finalizes MPI), so it runs before it.
_OPEN: weakref.WeakSet[MPICommunicator] = weakref.WeakSet()
atexit.register(lambda: [comm.close() for comm in list(_OPEN)])

_EMPTY = np.empty(0, dtype=np.uint8)  # the message of a node that sends nothing this round


def _buf(t: torch.Tensor):
    """A buffer MPI can read: numpy view of host memory, the tensor itself (CUDA array interface) on a GPU."""
    return t.numpy() if t.device.type == "cpu" else [t, MPI.BYTE]
