"""compoptim-run with one fault injected on one rank, for the fault matrix (test_fault_matrix.py).

    FAULT=exception|sigkill|sigint|nan|stuck PHASE=setup|training|checkpoint|evaluation FAULT_RANK=r \\
        mpirun -np N python fault_inject.py <overrides>

The fault strikes rank FAULT_RANK once, when it gets to PHASE: setup (building its node),
training (its third step), checkpoint (writing its first checkpoint file), evaluation (its
first evaluation after training started). ``sigint`` is a user's Ctrl-C: SIGINT to mpiexec,
which forwards it to every rank. ``nan`` makes this rank's parameters NaN there.
"""

from __future__ import annotations

import os
import signal
import time

from mpi4py import MPI

import compoptim.train.trainer as trainer_module
from compoptim.train.trainer import Trainer

FAULT, PHASE, RANK = os.environ["FAULT"], os.environ["PHASE"], int(os.environ["FAULT_RANK"])
STRUCK = False


def mpiexec_pid() -> int:
    """The rank's launcher: the parent of its hydra_pmi_proxy (MPICH puts each rank in a
    session of its own, so a Ctrl-C at the terminal reaches only mpiexec)."""
    proxy = os.getppid()
    with open(f"/proc/{proxy}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def strike(trainer: Trainer | None = None) -> None:
    global STRUCK
    if STRUCK or MPI.COMM_WORLD.Get_rank() != RANK:
        return
    STRUCK = True
    if FAULT == "exception":
        raise RuntimeError(f"injected fault during {PHASE}")
    if FAULT == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if FAULT == "sigint":
        os.kill(mpiexec_pid(), signal.SIGINT)
        time.sleep(1.0)  # let it arrive here too before going on
    if FAULT == "stuck":
        time.sleep(600)  # alive but stuck
    if FAULT == "nan" and trainer is not None:
        trainer.flat.params.data.fill_(float("nan"))


if PHASE == "setup":
    _build_node = trainer_module.build_node

    def build_node(*args, **kwargs):
        node = _build_node(*args, **kwargs)
        if FAULT == "nan":
            if MPI.COMM_WORLD.Get_rank() == RANK:
                node.flat.params.data.fill_(float("nan"))
        else:
            strike()
        return node

    trainer_module.build_node = build_node
elif PHASE == "training":
    _train_step = Trainer.train_step

    def train_step(self, xb, yb):
        if self.optimizer.t == 2:
            strike(self)
        return _train_step(self, xb, yb)

    Trainer.train_step = train_step
elif PHASE == "checkpoint":
    _save = trainer_module.save_rank_state
    _checkpoint = Trainer._checkpoint

    def save_rank_state(*args, **kwargs):
        if FAULT != "nan":
            strike()
        _save(*args, **kwargs)

    def checkpoint(self, *args, **kwargs):
        _checkpoint(self, *args, **kwargs)
        if FAULT == "nan":
            strike(self)  # the next step computes on NaN parameters

    trainer_module.save_rank_state = save_rank_state
    Trainer._checkpoint = checkpoint
elif PHASE == "evaluation":
    _evaluate = Trainer._evaluate

    def evaluate(self, epoch, *args, **kwargs):
        if epoch >= 1:
            strike(self)
        return _evaluate(self, epoch, *args, **kwargs)

    Trainer._evaluate = evaluate
else:
    raise SystemExit(f"unknown PHASE {PHASE}")

from compoptim.cli.run import main  # noqa: E402 - after the patches

main()
