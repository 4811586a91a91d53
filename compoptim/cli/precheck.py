"""Check the command line before Hydra runs, so a mistake is one clear line.

Hydra's own reports of a bad option are several lines (search paths, a hint about
HYDRA_FULL_ERROR) or a traceback; here the same overrides are composed up front, Hydra's
settings included, and any failure becomes one sentence naming the key and what is allowed.
Hydra's silent choices are refused too: a key given twice (Hydra keeps the last), a sweep
with no jobs (Hydra runs none), a number no layer can hold (``to_plain``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, OmegaConfBaseException

from compoptim.cli.world import lock_run_dir
from compoptim.config import GROUPS, composer, group_options, normalize_overrides
from compoptim.config.plugins import missing_package
from compoptim.errors import UserError, unknown_choice
from compoptim.registry import to_plain

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
    repeated = _repeated_key(parsed)
    if repeated:
        return repeated, None
    choices: list[list[str]] = []
    for override in parsed:
        values = _values(override, multirun)
        if values is None:
            return None, None  # sweeps Hydra expands only with the config loader: left to Hydra
        if not values:
            empty_string = "" if override.is_sweep_override() or _is_group(override) else \
                f" (for an empty string, write {override.get_key_element()}='')"
            return (f"'{override.input_line}' gives {override.key_or_group} no values, so the sweep has no jobs; "
                    f"list one or more{empty_string}"), None
        if len(values) > 1 and not multirun:
            return f"'{override.input_line}' lists several values; add -m (--multirun) to run one job per value", None
        if override.is_sweep_override() and not multirun:
            return f"'{override.input_line}' is a sweep; add -m (--multirun), or give its one value alone", None
        group = override.key_or_group
        for value in values:
            missing = missing_package(group, value)
            if missing:
                return missing, None
        if _is_group(override) and not override.is_delete():
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
                # the run's settings as the layers get them: a number none can hold is refused here
                to_plain({key: cfg[key] for key in cfg if key != "hydra"})
                if multirun:
                    _check_launcher(cfg.hydra.launcher)
                output_dir = Path(str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir))
            except UserError as exc:
                return str(exc), None
            except (HydraException, OmegaConfBaseException) as exc:
                return describe_config_error(exc), None
            except OverflowError as exc:  # an int too large for a float setting; OmegaConf names the key in the text
                key = re.search(r"full_key: (\S+)", str(exc))
                return f"bad value{f' for {key[1]}' if key else ''}: {_first_line(exc)}", None
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


def _values(override: Override, multirun: bool) -> list[str] | None:
    """The values an override gives its key, one per job; None where only Hydra can tell.
    With -m, ``key=`` (nothing after the =) gives none."""
    if override.is_delete():
        return [""]
    if not override.is_sweep_override():
        empty = override.input_line.endswith("=") and override.value() == ""
        return [] if multirun and empty else [override.get_value_element_as_str()]
    value = override.value()
    if isinstance(value, Glob) and _is_group(override):
        return value.filter(group_options(override.key_or_group))
    try:
        return list(override.sweep_string_iterator())
    except Exception:  # noqa: BLE001 - sweeps Hydra expands only with the config loader
        return None


def _is_group(override: Override) -> bool:
    """Whether the override chooses an option of one of compoptim's groups (``optimizer=sgd``)."""
    return override.key_or_group in (*GROUPS, "experiment") and override.package is None


def _repeated_key(parsed: list[Override]) -> str | None:
    """A key set twice (``seed=1 seed=2``; ``+a=1 a=2``; ``~a a=1``): Hydra would silently keep the last."""
    given: dict[str, str] = {}
    for override in parsed:
        key = override.key_or_group.replace("/", ".") + (f"@{override.package}" if override.package else "")
        if key in given:
            return (f"{override.key_or_group} is given twice on the command line: '{given[key]}' and "
                    f"'{override.input_line}'; Hydra would silently keep the last: give it once")
        given[key] = override.input_line
    return None


def _check_launcher(launcher: DictConfig) -> None:
    """compoptim's MPI launcher checks its settings before the sweep starts its jobs (other
    launchers check their own). Imported here, after ``composer`` registered the plugins."""
    from hydra_plugins.compoptim_plugins import mpi_launcher

    if launcher.get("_target_") == mpi_launcher.MPILauncherConf._target_:
        mpi_launcher.check_settings(launcher.nprocs, launcher.mpirun, launcher.program, launcher.max_parallel,
                                    launcher.timeout_s)


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
    """The message's first line, with the lines it introduces when it ends in a colon (Hydra's
    "ConfigKeyError raised while composing config:" says what is wrong only on the next)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = lines.pop(0)
    while text.endswith(":") and lines:
        text = f"{text} {lines.pop(0)}"
    return text
