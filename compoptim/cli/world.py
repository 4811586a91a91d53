"""What the CLI needs from MPI beyond the Communicator: ranks per machine, run stamp, abort."""

from __future__ import annotations

import os
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

import torch
from mpi4py import MPI

from compoptim.errors import UserError

_FORWARD_GRACE_S = 0.5


def node_local_rank(comm: MPI.Comm) -> tuple[int, int]:
    """(rank among the processes on this machine, how many processes share it)."""
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        return local.Get_rank(), local.Get_size()
    finally:
        local.Free()


def default_threads(local_size: int) -> int:
    """Cores this process may use, shared fairly among the ranks on the machine (>= 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_size))


def resolve_device(name: str, local_rank: int) -> torch.device:
    """cpu | cuda | auto; cuda maps ranks to the machine's GPUs round-robin by local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("trainer.device=cuda but no CUDA device is visible; use trainer.device=cpu or auto")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    raise UserError(f"trainer.device must be cpu, cuda or auto; got {name}")


def choose_run_stamp(comm: MPI.Comm) -> str:
    """Rank 0 picks ``YYYY-MM-DD/HH-MM-SS`` (suffixed if already taken) and every rank gets it."""
    stamp = None
    if comm.Get_rank() == 0:
        base = datetime.now().strftime("%Y-%m-%d/%H-%M-%S")
        stamp, k = base, 1
        while Path("outputs", stamp).exists() or Path("multirun", stamp).exists():
            stamp, k = f"{base}-{k}", k + 1
    return comm.bcast(stamp, root=0)


def fail(comm: MPI.Comm, exc: BaseException) -> None:
    """Report an error raised on this rank and end the whole job (never returns).

    A UserError is one line; anything else is a bug, so its traceback is printed first.
    With other ranks running, MPI_Abort is the only way to stop those blocked in a
    collective; a lone process just exits.
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    where = f"rank {rank} of {size}: " if size > 1 else ""
    kind = "" if isinstance(exc, UserError) else f"{type(exc).__name__}: "
    text = f"compoptim-run: error: {where}{kind}{exc}\n"
    if not isinstance(exc, UserError):
        text = "".join(traceback.format_exception(exc)) + text
    sys.stdout.flush()
    # One write, then a moment for mpiexec to forward it: MPI_Abort tears down the
    # launcher's output forwarding, which can drop a line written just before it.
    os.write(sys.stderr.fileno(), text.encode())
    if size > 1:
        time.sleep(_FORWARD_GRACE_S)
        comm.Abort(1)
    sys.exit(1)
