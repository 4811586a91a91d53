"""Check command-line overrides before Hydra runs, so a mistake is one clear line.

Hydra's own reports of a bad option are several lines (with search paths and a hint about
HYDRA_FULL_ERROR); here the same overrides are composed once up front and any failure is
turned into one sentence that names the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from importlib import resources
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf.errors import ConfigAttributeError, OmegaConfBaseException

from compoptim.config import GROUPS, register_schemas

CONFIG_MODULE = "compoptim.conf"
# Composing every point of a huge sweep up front would be slow; this many are checked.
_MAX_SWEEP_CHECKS = 64


def group_options(group: str) -> list[str]:
    folder = resources.files(CONFIG_MODULE) / group
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def check_command_line(overrides: list[str], multirun: bool) -> str | None:
    """None if the command line can run; else one line saying what to change.

    Needs the ``run_stamp`` resolver registered (the run directory is resolved here).
    """
    if not multirun:
        swept = [o for o in overrides if "," in o.split("=", 1)[-1] and not o.split("=", 1)[-1].startswith("[")]
        if swept:
            return f"'{swept[0]}' lists several values; add -m (--multirun) to run one job per value"
    return check_overrides(overrides)


def check_output_dir(overrides: list[str], multirun: bool) -> str | None:
    """Create the run (or sweep) directory now; a one-line message if it cannot be written."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    first_values = []
    for o in OverridesParser.create().parse_overrides(overrides):
        if o.is_sweep_override():  # the sweep dir is shared by all jobs: any one job will do
            first_values.append(f"{o.input_line.split('=', 1)[0]}={next(iter(o.sweep_string_iterator()))}")
        else:
            first_values.append(o.input_line)
    register_schemas()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        cfg = compose("config", overrides=first_values, return_hydra_config=True)
    path = Path(str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the output directory {path} ({exc.strerror}); choose another with {key}=PATH"
    if not os.access(path, os.W_OK):
        return f"cannot write to the output directory {path}; choose another with {key}=PATH"
    return None


def check_overrides(overrides: list[str]) -> str | None:
    """None if the overrides compose; else a one-line message saying what to change."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        return f"cannot parse overrides: {_first_line(exc)}"
    task = [(o, o.input_line) for o in parsed if not o.key_or_group.startswith("hydra")]
    choices: list[list[str]] = []
    for override, line in task:
        if override.is_sweep_override():
            try:
                values = list(override.sweep_string_iterator())
            except Exception:
                return None
        else:
            values = [override.get_value_element_as_str()] if not override.is_delete() else [None]
        group = override.key_or_group
        if group in GROUPS and override.package is None:
            for value in values:
                if value is not None and value not in group_options(group):
                    return f"unknown {group} '{value}'; available: {', '.join(group_options(group))}"
        key = line.split("=", 1)[0]
        choices.append([line] if values == [None] else [f"{key}={v}" for v in values])

    register_schemas()
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        for combo in itertools.islice(itertools.product(*choices), _MAX_SWEEP_CHECKS):
            try:
                compose("config", overrides=list(combo))
            except (HydraException, OmegaConfBaseException) as exc:
                return describe_config_error(exc)
    return None


def describe_config_error(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    key = getattr(cause, "full_key", None)
    if isinstance(cause, ConfigAttributeError) and key:
        allowed = _schema_fields(getattr(cause, "object_type", None))
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"unknown config key '{key}'{hint}"
    if key:
        return f"bad value for {key}: {_first_line(cause)}"
    return _first_line(exc)


def _schema_fields(object_type: type | None) -> list[str]:
    if object_type is None or not dataclasses.is_dataclass(object_type):
        return []
    return [f.name for f in dataclasses.fields(object_type)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
