"""``compoptim-run resume=true hydra.run.dir=DIR`` alone: the run continues with its own
saved settings. The run's overrides (``DIR/.hydra/overrides.yaml``, written by Hydra at its
start) come first and the command line's after them, so a key given again replaces the saved
one; whether a changed key may change (it must not alter the result so far) is checked
against the checkpoint when the run is built."""

from __future__ import annotations

from pathlib import Path

import yaml

_TRUE = ("true", "True", "yes", "1")


def with_saved_overrides(overrides: list[str]) -> list[str]:
    """``overrides`` preceded by the saved ones of the run it resumes (unchanged when it
    resumes nothing, or the run saved none)."""
    given = _given(overrides)
    if given.get("resume") not in _TRUE or "hydra.run.dir" not in given:
        return overrides
    saved_file = Path(given["hydra.run.dir"]) / ".hydra" / "overrides.yaml"
    try:
        saved = yaml.safe_load(saved_file.read_text()) or []
    except (OSError, yaml.YAMLError):
        return overrides
    keys = {_key(o) for o in overrides}
    return [o for o in saved if _key(o) not in keys] + overrides


def is_resume(overrides: list[str]) -> bool:
    return _given(overrides).get("resume") in _TRUE


def _given(overrides: list[str]) -> dict[str, str]:
    return {_key(o): o.split("=", 1)[1] for o in overrides if "=" in o}


def _key(override: str) -> str:
    """The key an override sets: ``+a.b=1`` and ``~a.b`` both set ``a.b``; ``group=option`` the group."""
    return override.split("=", 1)[0].lstrip("+~")


def check_resume(overrides: list[str], world_size: int) -> str | None:
    """For a resume: a one-line refusal, decided before Hydra writes anything into the run
    directory (a refused command leaves the run's files as they were), else None."""
    if _given(overrides).get("resume") not in _TRUE:
        return None  # most runs: nothing to check, no second composition
    from compoptim.config import composer
    from compoptim.errors import UserError
    from compoptim.train.checkpoint import check_manifest, newest_checkpoint

    with composer() as compose:
        cfg = compose(overrides, hydra=True)
    if not cfg.get("resume", False):
        return None
    run_dir = Path(str(cfg.hydra.run.dir))
    manifest = newest_checkpoint(run_dir)
    if manifest is None:
        return (f"resume=true but {run_dir}/checkpoints holds no complete checkpoint; give the run's directory "
                f"with hydra.run.dir=..., or start without resume")
    # the nodes the run will have: the MPI ranks, or backend=local's simulated nodes
    nodes = int(cfg.backend.nodes) if cfg.backend.name == "local" and world_size == 1 else world_size
    try:  # the run's own settings, without Hydra's (which resolve only inside a Hydra run)
        check_manifest(manifest, nodes, {key: cfg[key] for key in cfg if key != "hydra"})
    except UserError as exc:
        return str(exc)
    return None
