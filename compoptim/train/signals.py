"""How a run ends early on purpose: divergence, preemption and a user's interrupt, each with
its summary status and exit code (the one table of them), and the signal handlers.

    status       exit  when
    finished        0  all epochs trained
    failed          1  a bug or a crash (traceback); 2 when refused before training
    preempted       3  SIGTERM/SIGUSR1 (SLURM before preemption or the time limit): checkpoint, resume later
    diverged        4  a non-finite loss or model with trainer.on_nonfinite=stop
    interrupted   130  Ctrl-C (SIGINT), 128 + the signal number as shells report it
    killed          -  the processes ended without recording a result (SIGKILL, out of memory);
                       written by the run's watchdog (``watchdog.py``)

An expected stop is one line, never a traceback per rank.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator


class RunStopped(RuntimeError):
    """A run that ended early on purpose: its ``status`` in summary.json and the exit code.

    ``agreed``: every node raised it at the same point (after a reduction), so the job can
    end without aborting the other ranks."""

    status = "stopped"
    exit_code = 1

    def __init__(self, message: str, agreed: bool = False) -> None:
        super().__init__(message)
        self.agreed = agreed


class Diverged(RunStopped):
    """A non-finite loss or model: the run ends with status ``diverged``."""

    status, exit_code = "diverged", 4


class Preempted(RunStopped):
    """A stop signal arrived; every node checkpointed at the end of the epoch and stops."""

    status, exit_code = "preempted", 3


class Interrupted(RunStopped):
    """The user pressed Ctrl-C (SIGINT): stopped at the epoch's end with a checkpoint, or at
    once on a second Ctrl-C (or before training started)."""

    status, exit_code = "interrupted", 130


class StopSignals:
    """What the signal handlers saw, read by the trainer.

    SIGTERM and SIGUSR1 (what SLURM sends before preemption or the time limit) and a first
    SIGINT (Ctrl-C) while training set a flag; the trainer checks it once per epoch, in the
    reduction it does anyway, so all nodes checkpoint and stop at the same epoch. A second
    SIGINT, or one before training started, raises ``Interrupted`` at once.
    """

    PREEMPT = ("SIGTERM", "SIGUSR1")

    def __init__(self) -> None:
        self.preempt = False
        self.interrupt = False
        self.training = False  # set by the trainer while its epochs run: a first Ctrl-C then waits for the epoch end
        self.announce = False  # set by the node that prints (rank 0): the interrupt's one line

    @property
    def received(self) -> bool:
        return self.preempt or self.interrupt

    def install(self) -> None:
        """Handle the signals for the rest of the process (the CLI)."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for name in self.PREEMPT:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), self._preempt)
        signal.signal(signal.SIGINT, self._interrupt)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle the signals inside the block and restore the previous handlers after
        (``compoptim.run`` from a notebook or script)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        names = [n for n in (*self.PREEMPT, "SIGINT") if hasattr(signal, n)]
        before = {n: signal.getsignal(getattr(signal, n)) for n in names}
        self.install()
        try:
            yield
        finally:
            for name, handler in before.items():
                signal.signal(getattr(signal, name), handler)
            self.reset()

    def reset(self) -> None:
        self.preempt = self.interrupt = self.training = self.announce = False

    def _preempt(self, signum, frame) -> None:
        del signum, frame
        self.preempt = True

    def _interrupt(self, signum, frame) -> None:
        del signum, frame
        if self.interrupt or not self.training:
            raise Interrupted("interrupted (Ctrl-C)" + (" again: stopped at once" if self.interrupt else ""))
        self.interrupt = True
        if not self.announce:
            return
        # One line, written directly: the handler runs between two bytecodes of any code.
        with contextlib.suppress(OSError):
            os.write(sys.stderr.fileno(), b"compoptim-run: interrupt: stopping at the end of this epoch with a "
                                          b"checkpoint; press Ctrl-C again to stop at once\n")


STOP_SIGNALS = StopSignals()
