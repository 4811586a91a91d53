"""How a run ends early: divergence, and a stop request by signal (preemption)."""

from __future__ import annotations

import signal
import threading


class Diverged(RuntimeError):
    """A non-finite loss or model: the run ends with status ``diverged``."""


class Preempted(RuntimeError):
    """A stop signal arrived; every node checkpointed at the end of the epoch and stops."""


class StopSignals:
    """SIGTERM and SIGUSR1 (what SLURM sends before preemption or the time limit) set a flag;
    the trainer checks it once per epoch, in the reduction it does anyway, so all nodes
    checkpoint and stop at the same epoch."""

    SIGNALS = ("SIGTERM", "SIGUSR1")

    def __init__(self) -> None:
        self.received = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for name in self.SIGNALS:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self._handle)

    def _handle(self, signum, frame) -> None:
        del signum, frame
        self.received = True


STOP_SIGNALS = StopSignals()
