"""MPICommunicator: raw-byte, nonblocking point-to-point exchange with this round's neighbours.

Every node posts all its receives and sends at once and waits for them together, so the
exchange cannot deadlock for any n (odd, prime, 2) and there is no global barrier per step.
Receive buffers are allocated once per payload size and reused every step; payloads travel
as the bytes of a uint8 tensor, never pickled. CUDA payloads are staged through pinned host
buffers (one copy each way), so no CUDA-aware MPI is needed.
"""

from __future__ import annotations

import torch
from mpi4py import MPI

from compoptim.comm.base import Communicator
from compoptim.topology.base import Topology

_GOSSIP_TAG = 7


class MPICommunicator(Communicator):
    def __init__(self, comm: MPI.Comm, topology: Topology) -> None:
        super().__init__(comm.Get_rank(), comm.Get_size(), topology)
        self.comm = comm
        self._max_degree = max(len(w[1]) for w in self._round_weights)
        # Buffers keyed by (what, numel, dtype, device), allocated on first use only.
        self._buffers: dict[tuple, torch.Tensor] = {}

    def _buffer(self, key: tuple, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
                pinned: bool = False) -> torch.Tensor:
        buf = self._buffers.get(key)
        if buf is None:
            buf = torch.empty(shape, dtype=dtype, device=device, pin_memory=pinned)
            self._buffers[key] = buf
        return buf

    def _exchange(self, payload: torch.Tensor, neighbors: list[int]) -> list[torch.Tensor]:
        nbytes, device = payload.numel(), payload.device
        # Page-locked host memory only when it stages a GPU payload: pinning creates a CUDA
        # context, which a CPU-only rank on a GPU machine must not hold.
        staged = device.type != "cpu"
        host_recv = self._buffer(("recv", nbytes, staged), (self._max_degree, nbytes), torch.uint8,
                                 torch.device("cpu"), pinned=staged)
        if not staged:
            send = payload
        else:
            send = self._buffer(("send", nbytes), (nbytes,), torch.uint8, torch.device("cpu"), pinned=True)
            send.copy_(payload)
        send_np = send.numpy()
        requests = [
            self.comm.Irecv(host_recv[k].numpy(), source=j, tag=_GOSSIP_TAG) for k, j in enumerate(neighbors)
        ]
        requests += [self.comm.Isend(send_np, dest=j, tag=_GOSSIP_TAG) for j in neighbors]
        MPI.Request.Waitall(requests)
        if not staged:
            return list(host_recv[: len(neighbors)])
        dev_recv = self._buffer(("recv_dev", nbytes, device), (self._max_degree, nbytes), torch.uint8, device)
        dev_recv[: len(neighbors)].copy_(host_recv[: len(neighbors)], non_blocking=True)
        return list(dev_recv[: len(neighbors)])

    def _allgather(self, tensor: torch.Tensor) -> torch.Tensor:
        flat = tensor.detach().reshape(-1)
        host = flat.cpu().contiguous() if flat.device.type != "cpu" else flat.contiguous()
        out = self._buffer(("gather", host.numel(), host.dtype), (self.size, host.numel()), host.dtype, host.device)
        self.comm.Allgather(host.numpy(), out.numpy())
        return out.to(tensor.device)
