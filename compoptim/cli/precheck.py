"""Check the command line before Hydra runs, so a mistake is one clear line.

Hydra's own reports of a bad option are several lines (search paths, a hint about
HYDRA_FULL_ERROR) or a traceback; here the same overrides are composed up front, Hydra's
settings included, and any failure becomes one sentence naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, OmegaConfBaseException

from compoptim.cli.world import lock_run_dir
from compoptim.config import GROUPS, composer, group_options, normalize_overrides
from compoptim.errors import unknown_choice

# What a run writes that another run must not overwrite.
RUN_FILES = ("summary.json", "metrics.csv", "checkpoints")
# Composing every point of a huge sweep up front would be slow; this many are checked.
_MAX_SWEEP_CHECKS = 64


def check_command_line(overrides: list[str], multirun: bool) -> tuple[str | None, Path | None]:
    """(message, output dir): a one-line message if the command line cannot run, else the
    run directory (or, with -m, the sweep directory) it will write to.

    Needs the ``run_stamp`` resolver registered.
    """
    overrides = normalize_overrides(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        return f"cannot parse overrides: {_first_line(exc)}", None
    choices: list[list[str]] = []
    for override in parsed:
        values = _values(override)
        if values is None:
            return None, None  # glob sweeps and the like: leave them to Hydra
        if len(values) > 1 and not multirun:
            return f"'{override.input_line}' lists several values; add -m (--multirun) to run one job per value", None
        group = override.key_or_group
        if group in (*GROUPS, "experiment") and override.package is None and not override.is_delete():
            for value in values:
                if value not in group_options(group):
                    return unknown_choice(group, value, group_options(group)), None
        key = override.input_line.split("=", 1)[0]
        choices.append([override.input_line] if override.is_delete() else [f"{key}={v}" for v in values])

    output_dir = None
    with composer() as compose:
        for combo in itertools.islice(itertools.product(*choices), _MAX_SWEEP_CHECKS):
            try:
                cfg = compose(combo, hydra=True)
                unknown = _unknown_keys(cfg)
                if unknown:
                    return unknown, None
                output_dir = Path(str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir))
            except (HydraException, OmegaConfBaseException) as exc:
                return describe_config_error(exc), None
    return None, output_dir


def prepare_output_dir(path: Path, multirun: bool, resume: bool = False) -> str | None:
    """Create the output directory now; a one-line message if it cannot be written. A single
    run also takes the directory's lock (held until this process ends: a second run into it
    at the same time is refused), and refuses a directory that already holds a run unless
    it resumes it, so nothing a finished run wrote is ever overwritten."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the output directory {path} ({exc.strerror}); choose another with {key}=PATH"
    if not os.access(path, os.W_OK):
        return f"cannot write to the output directory {path}; choose another with {key}=PATH"
    if multirun:
        return None
    if not lock_run_dir(path):
        return f"another run is writing into {path}; wait for it to end, or choose another directory with {key}=PATH"
    found = [name for name in RUN_FILES if (path / name).exists()]
    if found and not resume:
        return (f"{path} already holds a run ({found[0]}); continue it with resume=true {key}={path}, or choose "
                f"another directory with {key}=PATH")
    return None


def describe_config_error(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    key = getattr(cause, "full_key", None)
    if isinstance(cause, ConfigAttributeError) and key:
        return f"unknown config key '{key}'{_allowed_hint(getattr(cause, 'object_type', None))}"
    if key:
        return f"bad value for {key}: {_first_line(cause)}"
    return _first_line(exc)


def _values(override: Override) -> list[str] | None:
    if override.is_delete():
        return [""]
    if not override.is_sweep_override():
        return [override.get_value_element_as_str()]
    try:
        return list(override.sweep_string_iterator())
    except Exception:  # noqa: BLE001 - sweeps Hydra expands only with the config loader
        return None


def _unknown_keys(node: DictConfig, prefix: str = "") -> str | None:
    """A key added with ``+key=value`` that its schema does not declare (Hydra lets it through)."""
    schema = OmegaConf.get_type(node)
    fields = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key, child in node.items_ex(resolve=False):
        if not prefix and key == "hydra":  # Hydra's own settings, validated by Hydra
            continue
        if fields is not None and key not in fields:
            return f"unknown config key '{prefix}{key}'{_allowed_hint(schema)}"
        if isinstance(child, DictConfig):
            found = _unknown_keys(child, f"{prefix}{key}.")
            if found:
                return found
    missing = sorted((fields or set()) - set(node.keys()))
    if missing:
        return f"config key '{prefix}{missing[0]}' is required and cannot be removed"
    return None


def _allowed_hint(object_type: type | None) -> str:
    if object_type is None or not dataclasses.is_dataclass(object_type):
        return ""
    return f"; allowed keys here: {', '.join(f.name for f in dataclasses.fields(object_type))}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
