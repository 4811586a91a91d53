"""What the CLI needs from MPI beyond the Communicator: ranks per machine, run stamp, abort."""

from __future__ import annotations

import fcntl
import os
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mpi4py import MPI

from compoptim.cores import default_threads
from compoptim.errors import AgreedExit, UserError

if TYPE_CHECKING:  # torch is imported only when a run starts
    import torch

# mpiexec forwards output asynchronously, and MPI_Abort tears the forwarding down: a moment
# of grace keeps the last lines a failing rank wrote.
_FORWARD_GRACE_S = 0.5
# Environment variables through which launchers announce the job size.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")

# More intra-op threads than any machine has cores (torch refuses far larger counts with a traceback).
_MAX_THREADS = 4096
# Run-directory locks this process holds (file descriptors), until it ends.
_RUN_LOCKS: list[int] = []



def check_launcher(comm: MPI.Comm) -> None:
    """Refuse a launcher from another MPI library, which would start n separate 1-rank runs."""
    if comm.Get_size() > 1:
        return
    for var in _LAUNCHER_SIZE_VARS:
        announced = os.environ.get(var, "1")
        if announced.isdigit() and int(announced) > 1:
            library = " ".join(MPI.Get_library_version().splitlines()[0].split())
            if var == "SLURM_STEP_NUM_TASKS":  # srun without a PMI this MPI reads
                raise AgreedExit(
                    f"compoptim-run: error: started by srun as one of {announced} tasks but MPI sees only 1: srun "
                    f"gave no PMI that {library} reads; use srun --mpi=pmi2 (srun --mpi=list shows what this "
                    f"SLURM offers), or mpirun inside the allocation")
            raise AgreedExit(
                f"compoptim-run: error: started as one of {announced} processes ({var}) but MPI sees only 1: "
                f"the mpirun/mpiexec used is not from the MPI library mpi4py uses "
                f"({library}); use that library's launcher"
            )


def node_local(comm: MPI.Comm) -> MPI.Comm:
    """The ranks on this machine (a shared-memory split of ``comm``)."""
    return comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())


def set_threads(threads: int | None, ranks_on_machine: int) -> None:
    """torch's intra-op threads for this process: ``trainer.threads``, or this rank's share of
    the machine's cores (``ranks_on_machine`` MPI ranks, or simulated nodes of one process)."""
    import torch

    if threads is not None and not 1 <= threads <= _MAX_THREADS:
        raise UserError(f"trainer.threads must be between 1 and {_MAX_THREADS} or null (automatic); got {threads}")
    torch.set_num_threads(threads or default_threads(ranks_on_machine))


def resolve_device(name: str, local_rank: int) -> torch.device:
    """cpu | cuda | auto; cuda maps ranks to the machine's GPUs round-robin by local rank."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("trainer.device=cuda but no CUDA device is visible; use trainer.device=cpu or auto")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    raise UserError(f"trainer.device must be cpu, cuda or auto; got {name}")


def choose_run_stamp(comm: MPI.Comm, root: str) -> str:
    """Rank 0 reserves ``root/YYYY-MM-DD/HH-MM-SS`` (suffixed if taken) and every rank gets the stamp.

    The directory is created with ``exist_ok=False``, so two jobs started in the same
    second (a SLURM array, say) can never share a run directory.
    """
    stamp = None
    if comm.Get_rank() == 0:
        base = datetime.now().strftime("%Y-%m-%d/%H-%M-%S")
        stamp, k = base, 1
        while True:
            try:
                Path(root, stamp).mkdir(parents=True, exist_ok=False)
                break
            except FileExistsError:
                stamp, k = f"{base}-{k}", k + 1
            except OSError:
                break  # unwritable: the output-dir check reports it in one line
    return comm.bcast(stamp, root=0)


def release_stamp(root: str, stamp: str | None, used: Path | None = None) -> None:
    """Remove the reserved stamp directory (and parents it leaves empty, up to ``root``)
    unless the run writes into it; a refused command line or hydra.run.dir=... leaves no trace.
    ``stamp`` None: nothing was reserved (the current directory is not writable)."""
    if stamp is None:
        return
    reserved = Path(root, stamp)
    if used is not None and reserved.resolve() == used.resolve():
        return
    for folder in (reserved, *reserved.parents):
        if folder == Path("."):
            break
        try:
            folder.rmdir()  # only ever removes empty folders
        except OSError:
            break


def lock_run_dir(path: Path) -> bool:
    """Take ``path/.compoptim.lock`` for the rest of this process (the OS releases it when the
    process ends, also on a kill); False if another process holds it."""
    fd = os.open(Path(path) / ".compoptim.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _RUN_LOCKS.append(fd)  # kept open: closing it would release the lock
    return True


def wait_for_all(comm: MPI.Comm, timeout_s: float | None, what: str) -> None:
    """Return once every rank got here; with ``timeout_s``, a TimeoutError after that long
    (a rank stuck or dead before ``what``), instead of a blocking collective that never ends."""
    if timeout_s is None or comm.Get_size() == 1:
        return
    request, start = comm.Ibarrier(), time.monotonic()
    while not request.Test():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"not every rank reached {what} within backend.timeout_s={timeout_s:g} s: "
                               f"a rank is stuck or gone")
        time.sleep(0.001)


def abort(comm: MPI.Comm, code: int) -> None:
    """End every rank of the job now (after the grace period for output forwarding)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if comm.Get_size() > 1:
        time.sleep(_FORWARD_GRACE_S)
        comm.Abort(code)
    sys.exit(code)


def fail(comm: MPI.Comm, exc: BaseException, code: int = 1) -> None:
    """Report an error raised on this rank and end the whole job with exit ``code`` (never returns).

    A UserError or an expected stop (``status``: diverged, interrupted) is one line; anything
    else is a bug, so its traceback is printed first.
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    where = f"rank {rank} of {size}: " if size > 1 else ""
    status = getattr(exc, "status", None) or ("interrupted" if isinstance(exc, KeyboardInterrupt) else None)
    # a TimeoutError is a stuck or dead peer, said in its message: its traceback adds nothing
    expected = isinstance(exc, (UserError, TimeoutError)) or status is not None
    kind = "" if expected else f"{type(exc).__name__}: "
    text = f"compoptim-run: {status or 'error'}: {where}{kind}{exc}\n"
    if not expected:
        text = "".join(traceback.format_exception(exc)) + text
    sys.stdout.flush()
    os.write(sys.stderr.fileno(), text.encode())  # one write: never interleaved or half-sent
    abort(comm, getattr(exc, "exit_code", 130 if isinstance(exc, KeyboardInterrupt) else code))
