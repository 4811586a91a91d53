"""Structured-config schema classes generated from a registry's factory signatures.

The factory is the one place a setting is declared: its name, its annotation (the type
Hydra checks at composition) and its default. Each entry becomes a dataclass
``{name: str = <entry>, <setting>: <type> = <default>, ...}`` in signature order, plus the
settings a registry's wrappers add to every entry (``extra``).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Optional, Union

from compoptim.registry import Entry, Registry

# (name, annotation, default) of a setting that is not in the factory's signature.
ExtraSetting = tuple[str, Any, Any]


def schema_class(group: str, entry: Entry, extra: Sequence[ExtraSetting] = ()) -> type:
    """The dataclass Hydra validates ``<group>=<entry.name>`` against."""
    hints = _hints(entry.factory)
    fields: list[tuple[str, Any, Any]] = [("name", str, dataclasses.field(default=entry.name))]
    for p in entry.parameters():
        default = dataclasses.MISSING if p.default is p.empty else p.default
        fields.append((p.name, config_type(hints.get(p.name, Any)), _field(default)))
    for name, annotation, default in extra:
        fields.append((name, config_type(annotation), _field(default)))
    title = "".join(part.capitalize() for part in f"{group}_{entry.name}".split("_"))
    return dataclasses.make_dataclass(f"{title}Config", fields)


def schema_classes(registry: Registry, extra: Callable[[Entry], Sequence[ExtraSetting]] | None = None
                   ) -> dict[str, type]:
    return {name: schema_class(registry.group, entry, extra(entry) if extra else ())
            for name, entry in registry.items()}


def config_type(annotation: Any) -> Any:
    """The OmegaConf type for a Python annotation: tuples and sequences become lists,
    ``X | None`` becomes ``Optional[X]``, Literal and anything unsupported a plain value."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in (int, float, bool, str) or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        return annotation
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = config_type(rest[0]) if len(rest) == 1 else Any
        return Optional[inner] if type(None) in args else inner  # noqa: UP045 - a runtime type for OmegaConf
    if origin in (tuple, list, Sequence, typing.Sequence) or annotation in (tuple, list):
        elems = [a for a in args if a is not Ellipsis]
        kinds = {config_type(a) for a in elems}
        return list[kinds.pop()] if len(kinds) == 1 else list[Any]
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        return kinds.pop() if len(kinds) == 1 else Any
    return Any


def _field(default: Any) -> Any:
    if isinstance(default, (list, tuple)):
        frozen = list(default)
        return dataclasses.field(default_factory=lambda: list(frozen))
    if isinstance(default, dict):
        frozen_dict = dict(default)
        return dataclasses.field(default_factory=lambda: dict(frozen_dict))
    return dataclasses.field(default=default)


def _hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; a composed signature (``__signature__``) carries real types."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # an annotation that names a type only imported for checking
        hints = {}
    for p in inspect.signature(factory).parameters.values():
        if p.annotation is not p.empty and not isinstance(p.annotation, str):
            hints[p.name] = p.annotation
    return hints
