"""summary.json contents: final figures from the metric rows, plus the environment."""

from __future__ import annotations

import math
import platform
import sys
from typing import Any

import torch

from compoptim import __version__
from compoptim.comm.base import Communicator


def time_to_target(rows: list[dict[str, Any]], target_acc: float | None) -> dict[str, Any] | None:
    """The first evaluation whose averaged model reaches ``target_acc``: when (epoch, step, wall
    and simulated seconds) and at what traffic; None if no target is set or none reaches it."""
    if target_acc is None:
        return None
    hit = next((r for r in rows if r["test_acc"] >= target_acc), None)
    return None if hit is None else {
        "target_acc": target_acc, "test_acc": hit["test_acc"], "epoch": hit["epoch"], "step": hit["step"],
        "wall_time_s": hit["wall_time_s"], "sim_time_s": hit["sim_time_s"],
        "bytes_sent_per_node": hit["bytes_sent_per_node"]}


def final_summary(rows: list[dict[str, Any]], topology: dict[str, Any], num_params: int,
                  target_acc: float | None = None) -> dict[str, Any]:
    last = rows[-1]
    scored = [r for r in rows if math.isfinite(r["test_acc"])] or rows
    best = max(scored, key=lambda r: r["test_acc"])
    return {
        "status": "finished",
        "test_acc": last["test_acc"],
        "test_loss": last["test_loss"],
        "train_loss": last["train_loss"],
        "best_test_acc": best["test_acc"],
        "best_epoch": best["epoch"],
        "local_test_acc_mean": last["local_test_acc_mean"],
        "consensus_distance": last["consensus_distance"],
        "train_objective": last["train_objective"],
        "grad_norm_sq": last["grad_norm_sq"],
        "local_train_loss": last["local_train_loss"],
        "tracker_error": last["tracker_error"],
        "compression_error": last["compression_error"],
        "bytes_sent_per_node": last["bytes_sent_per_node"],
        "bytes_received_per_node": last["bytes_received_per_node"],
        "bytes_sent_max_node": last["bytes_sent_max_node"],
        "wall_time_s": last["wall_time_s"],
        "sim_time_s": last["sim_time_s"],
        "time_to_target": time_to_target(rows, target_acc),
        **{k: last[k] for k in ("train_time_s", "compute_time_s", "compress_time_s", "comm_time_s", "wait_time_s")},
        "epochs": last["epoch"],
        "steps": last["step"],
        "num_params": num_params,
        "topology": topology,
        "spectral_gap": topology["spectral_gap"],
    }


def environment(comm: Communicator, device: torch.device) -> dict[str, Any]:
    return {
        "n_nodes": comm.size,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "compoptim": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "mpi": _mpi_library(),
        },
        "platform": sys.platform,
    }


def _mpi_library() -> str | None:
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    # Some MPI libraries (Open MPI) NUL-terminate the string inside the returned text.
    return MPI.Get_library_version().replace("\x00", "").splitlines()[0].strip()
