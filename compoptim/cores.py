"""The machine: the cores this process may run on and each rank's share of them, and its memory."""

from __future__ import annotations

import os


def usable_cores() -> tuple[int, int]:
    """(cores this process may run on, cores of the machine); the first is the whole
    machine where the OS cannot say (not Linux)."""
    total = os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        allowed = total
    return allowed, total


def default_threads(local_size: int) -> int:
    """Torch threads for this rank: its share of the cores, at least 1.

    If the launcher bound the process to a subset of the cores (Open MPI's default binding,
    ``srun -c``), that subset already is the rank's share; otherwise the machine's cores are
    split evenly among the ranks on it.
    """
    allowed, total = usable_cores()
    if allowed < total:
        return max(1, allowed)
    return max(1, allowed // max(1, local_size))


def machine_memory() -> int:
    """Bytes of physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def available_memory() -> int:
    """Bytes a new allocation can still get without swapping (MemAvailable), or the machine's
    memory where the kernel does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return machine_memory()


def resident_memory() -> int:
    """Bytes of memory this process holds now (its resident set)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_shortfall(nbytes: float) -> str | None:
    """``"(X GiB), more than this machine's memory (Y GiB)"`` if ``nbytes`` cannot fit, else None:
    the end of a one-line refusal, instead of the allocator's traceback or the OOM killer."""
    memory = machine_memory()
    if nbytes <= memory:
        return None
    return f"({nbytes / 2**30:,.1f} GiB), more than this machine's memory ({memory / 2**30:,.1f} GiB)"
