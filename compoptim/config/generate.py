"""Structured-config schema classes generated from a registry's factory signatures.

The factory is the one place a setting is declared: its name, its annotation (the type
Hydra checks at composition) and its default. Each entry becomes a list of fields
``(name, type, default)`` in signature order, plus the settings a registry's builder adds
to every entry (``extra``), and then a dataclass ``{name: str = <entry>, ...}``.

Types are written as text (``int``, ``Optional[float]``, ``list[str]``, ``Any``), so the
fields of every entry can be kept in ``schemas.json`` (``snapshot.py``) and the schemas
built without importing the layers that define the factories (torch): ``--help`` and a
config error answer fast, and a run checks that the snapshot matches the code.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, Optional, Union

from omegaconf import MISSING

from compoptim.registry import Entry, resolved_hints

# (name, annotation, default) of a setting that is not in the factory's signature.
ExtraSetting = tuple[str, Any, Any]
# (name, type as text, default) of one field of a schema.
Field = tuple[str, str, Any]

_SCALARS = {"int": int, "float": float, "bool": bool, "str": str, "Any": Any}


def entry_fields(group: str, entry: Entry, extra: Sequence[ExtraSetting] = ()) -> list[Field]:
    """The settings of ``<group>=<entry.name>``: the factory's, then the builder's extras."""
    hints = resolved_hints(entry.factory)
    fields: list[Field] = []
    for p in entry.parameters():
        if p.name == "name":
            raise TypeError(f"{group} '{entry.name}': a setting cannot be called 'name' (the option's own key)")
        default = MISSING if p.default is p.empty else p.default
        fields.append((p.name, type_text(hints.get(p.name, Any)), _plain(default)))
    fields += [(name, type_text(annotation), _plain(default)) for name, annotation, default in extra]
    return fields


def schema_class(group: str, name: str, fields: Sequence[Field]) -> type:
    """The dataclass Hydra validates ``<group>=<name>`` against."""
    specs = [("name", str, dataclasses.field(default=name))]
    specs += [(key, parse_type(text), _field(default)) for key, text, default in fields]
    title = "".join(part.capitalize() for part in f"{group}_{name}".replace("/", "_").split("_"))
    return dataclasses.make_dataclass(f"{title}Config", specs)


def type_text(annotation: Any) -> str:
    """The config type of a Python annotation, as text: tuples and sequences become lists,
    ``X | None`` becomes ``Optional[X]``, Literal its value type, anything else ``Any``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in (int, float, bool, str):
        return annotation.__name__
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = type_text(rest[0]) if len(rest) == 1 else "Any"
        return f"Optional[{inner}]" if type(None) in args and inner != "Any" else inner
    if origin in (tuple, list, Sequence, typing.Sequence) or annotation in (tuple, list):
        kinds = {type_text(a) for a in args if a is not Ellipsis}
        return f"list[{kinds.pop()}]" if len(kinds) == 1 else "list[Any]"
    if origin is typing.Literal:
        kinds = {type(a).__name__ for a in args}
        return kinds.pop() if len(kinds) == 1 and next(iter(kinds)) in _SCALARS else "Any"
    return "Any"


def parse_type(text: str) -> Any:
    """The runtime type OmegaConf checks for ``type_text``'s output."""
    if text.startswith("Optional[") and text.endswith("]"):
        return Optional[parse_type(text[len("Optional["):-1])]  # noqa: UP045 - a runtime type for OmegaConf
    if text.startswith("list[") and text.endswith("]"):
        return list[parse_type(text[len("list["):-1])]
    return _SCALARS[text]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _field(default: Any) -> Any:
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda frozen=default: copy.deepcopy(frozen))
    return dataclasses.field(default=default)
