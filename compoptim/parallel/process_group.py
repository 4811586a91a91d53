"""torch.distributed started from the MPI world a run already has, so ``mpirun`` stays the
one launcher: the same ranks and size, and a rendezvous store that rank 0 opens and whose
address it tells the others over MPI (no environment variables, no second launcher)."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import torch.distributed as dist


def init_from_mpi(world: Any, backend: str = "gloo", timeout_s: float = 300.0) -> None:
    """Join every rank of the mpi4py communicator ``world`` to torch's default process group
    (``gloo`` on CPU, ``nccl`` on GPUs), rank for rank. Collective over ``world``."""
    if dist.is_initialized():
        if (dist.get_rank(), dist.get_world_size()) != (world.Get_rank(), world.Get_size()):
            raise RuntimeError("torch.distributed is already started with other ranks than this MPI world")
        return
    rank, size = world.Get_rank(), world.Get_size()
    timeout = timedelta(seconds=timeout_s)
    store, address = None, None
    if rank == 0:
        host = socket.gethostbyname(socket.gethostname())
        # port 0: the system picks a free one, so no two runs on a machine collide
        store = dist.TCPStore(host, 0, size, is_master=True, timeout=timeout, wait_for_workers=False)
        address = (host, store.port)
    host, port = world.bcast(address, root=0)
    if store is None:
        store = dist.TCPStore(host, port, size, is_master=False, timeout=timeout)
    dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=timeout)
