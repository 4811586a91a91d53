"""Checkpoints: every node's full state, written atomically, a manifest last.

Layout: ``<run dir>/checkpoints/epoch_<E>/rank_<r>.pt`` plus ``manifest.json``, which rank 0
writes only after every rank reported its file saved. A directory without a manifest is
incomplete (a kill during saving) and is ignored. Loading uses ``torch.load(weights_only=True)``:
checkpoints hold only tensors and plain values, never pickled code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from compoptim.errors import UserError
from compoptim.registry import to_plain
from compoptim.train.writer import atomic_write_text

# Keys that may differ between the original run and its resumption.
# Keys that change speed or bookkeeping, never the arithmetic (overlap gives identical results).
_RESUMABLE_DIFFERENCES = ("resume", "trainer.threads", "trainer.device", "trainer.checkpoint_every",
                          "optimizer.overlap")


def config_hash(cfg: Mapping[str, Any]) -> str:
    """A hash of the resolved config without Hydra's settings and the keys a resumed run may change."""
    tree = to_plain(cfg)
    tree.pop("hydra", None)
    for key in _RESUMABLE_DIFFERENCES:
        node, *path = key.split(".")
        parent = tree
        for part in [node, *path][:-1]:
            parent = parent.get(part, {}) if isinstance(parent, dict) else {}
        if isinstance(parent, dict):
            parent.pop(key.split(".")[-1], None)
    return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_dir(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"epoch_{epoch:05d}"


def save_rank_state(run_dir: Path, epoch: int, rank: int, state: dict[str, Any]) -> None:
    folder = checkpoint_dir(run_dir, epoch)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"rank_{rank}.pt"
    tmp = folder / f".rank_{rank}.pt.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, target)


def write_manifest(run_dir: Path, epoch: int, step: int, world_size: int, cfg_hash: str) -> None:
    atomic_write_text(checkpoint_dir(run_dir, epoch) / "manifest.json", json.dumps(
        {"epoch": epoch, "step": step, "world_size": world_size, "config_hash": cfg_hash,
         "files": [f"rank_{r}.pt" for r in range(world_size)]}, indent=2))


def newest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The manifest (plus its folder) of the newest complete checkpoint, or None."""
    for folder in sorted((Path(run_dir) / "checkpoints").glob("epoch_*"), reverse=True):
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            continue  # incomplete: killed while saving
        if all((folder / f).exists() for f in manifest["files"]):
            return {**manifest, "folder": str(folder)}
    return None


def check_manifest(manifest: dict[str, Any], world_size: int, cfg_hash: str) -> None:
    """Refuse a checkpoint from another world size or another configuration."""
    where = manifest["folder"]
    if manifest["world_size"] != world_size:
        raise UserError(f"the checkpoint in {where} is from {manifest['world_size']} nodes; this run has "
                        f"{world_size}: resume with the same number of ranks")
    if manifest["config_hash"] != cfg_hash:
        raise UserError(f"the checkpoint in {where} is from a different configuration; resume with the run's "
                        f"own settings (its config.resolved.yaml), or start a new run without resume=true")


def load_rank_state(manifest: dict[str, Any], rank: int, world_size: int, cfg_hash: str,
                    device: torch.device) -> dict[str, Any]:
    """This rank's state from a complete checkpoint, after checking it belongs to this run."""
    check_manifest(manifest, world_size, cfg_hash)
    where = manifest["folder"]
    try:
        return torch.load(Path(where) / f"rank_{rank}.pt", map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise UserError(f"cannot load {where}/rank_{rank}.pt ({type(exc).__name__}): the checkpoint is "
                        f"corrupt; delete {where} to resume from an older one") from None
