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
from compoptim.train.writer import atomic_write_text, save_tensors

# Keys that change speed or bookkeeping, never the arithmetic (overlap gives identical
# results): a resumed run may set them differently.
_RESUMABLE_DIFFERENCES = ("resume", "trainer.threads", "trainer.device", "trainer.checkpoint_every",
                          "trainer.save_model", "optimizer.overlap")
# Schedules whose learning rate at a step does not depend on the total number of epochs:
# with them a resumed run may train for more epochs than first planned.
_EXTENSIBLE_SCHEDULES = ("constant", "step")


def comparable_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config as flat ``key: value`` pairs, without Hydra's settings and the keys
    a resumed run may change: what must match between a run and its resumption."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif f"{prefix}{key}" not in _RESUMABLE_DIFFERENCES:
                flat[f"{prefix}{key}"] = value

    tree = to_plain(cfg)
    tree.pop("hydra", None)
    walk(tree, "")
    return flat


def config_hash(cfg: Mapping[str, Any]) -> str:
    """A hash of ``comparable_config``: ranks (and a run and its resumption) must agree on it."""
    return hashlib.sha256(json.dumps(comparable_config(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_differences(manifest: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    """``key: saved -> now`` for each setting that differs from the checkpoint's run and would
    change the result so far. More epochs are allowed when the schedule does not depend on them."""
    saved, now = manifest["config"], comparable_config(cfg)
    differences = []
    for key in sorted(set(saved) | set(now)):
        old, new = saved.get(key, "<unset>"), now.get(key, "<unset>")
        if old == new:
            continue
        if key == "trainer.epochs" and isinstance(new, int) and new > manifest["epoch"] and \
                now.get("trainer.lr_schedule") in _EXTENSIBLE_SCHEDULES:
            continue
        differences.append(f"{key}: {old} -> {new}")
    return differences


def checkpoint_dir(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"epoch_{epoch:05d}"


def save_rank_state(run_dir: Path, epoch: int, rank: int, state: dict[str, Any]) -> None:
    folder = checkpoint_dir(run_dir, epoch)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"rank_{rank}.pt"
    tmp = folder / f".rank_{rank}.pt.tmp{os.getpid()}"
    save_tensors(state, target, tmp)


def write_manifest(run_dir: Path, epoch: int, step: int, world_size: int, cfg: Mapping[str, Any]) -> None:
    """Written last, by rank 0, once every rank saved: it makes the checkpoint complete. It
    holds the run's comparable config, so a resumption can name what differs."""
    atomic_write_text(checkpoint_dir(run_dir, epoch) / "manifest.json", json.dumps(
        {"epoch": epoch, "step": step, "world_size": world_size, "config_hash": config_hash(cfg),
         "config": comparable_config(cfg), "files": [f"rank_{r}.pt" for r in range(world_size)]},
        indent=2, default=str))


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


def check_manifest(manifest: dict[str, Any], world_size: int, cfg: Mapping[str, Any]) -> None:
    """Refuse a checkpoint from another world size, or a configuration that would change
    the result so far (naming each differing key with its two values)."""
    where = manifest["folder"]
    if manifest["world_size"] != world_size:
        raise UserError(f"the checkpoint in {where} is from {manifest['world_size']} nodes; this run has "
                        f"{world_size}: resume with the same number of ranks")
    if "config" not in manifest:  # written before manifests held the config
        if manifest["config_hash"] != config_hash(cfg):
            raise UserError(f"the checkpoint in {where} is from a different configuration; resume with the run's "
                            f"own settings (its config.resolved.yaml), or start a new run without resume=true")
        return
    differences = config_differences(manifest, cfg)
    if differences:
        raise UserError(f"the checkpoint in {where} is from a different configuration ({'; '.join(differences)}): "
                        f"leave those settings out to continue the run as it was (resume=true "
                        f"hydra.run.dir=DIR alone), or start a new run without resume=true")


def load_rank_state(manifest: dict[str, Any], rank: int, world_size: int, cfg: Mapping[str, Any],
                    device: torch.device) -> dict[str, Any]:
    """This rank's state from a complete checkpoint, after checking it belongs to this run."""
    check_manifest(manifest, world_size, cfg)
    where = manifest["folder"]
    try:
        return torch.load(Path(where) / f"rank_{rank}.pt", map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise UserError(f"cannot load {where}/rank_{rank}.pt ({type(exc).__name__}): the checkpoint is "
                        f"corrupt; delete {where} to resume from an older one") from None
