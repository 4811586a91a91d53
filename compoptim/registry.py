"""One registry shape for every pluggable piece: a name, a factory, declared facts.

A factory's signature is the truth about its settings: the first parameters are the
*context* the caller supplies (a compressor's ``ctx``, a topology's ``n``, ...), and every
parameter after them is a setting, with its default and annotation. The config schema is
generated from that signature (``compoptim/config/schema.py``), so a setting, its type and
its default are written once, in the factory. Facts (``lossless``, ``needs_closure``,
``messages_per_step``, ...) are declared at registration and read by code and tests,
never inferred from a name.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from compoptim.errors import UserError, check_number, unknown_choice


@dataclass(frozen=True)
class Entry:
    """One registered piece: ``factory(*context, **settings)`` builds it."""

    name: str
    factory: Callable[..., Any]
    facts: Mapping[str, Any] = field(default_factory=dict)
    context: tuple[str, ...] = ()

    def parameters(self) -> list[inspect.Parameter]:
        """The settings: the factory's parameters after the context ones, in signature order."""
        params = list(inspect.signature(self.factory).parameters.values())
        if [p.name for p in params[: len(self.context)]] != list(self.context):
            raise TypeError(f"{self.name}: the factory's first parameters must be {self.context}; "
                            f"got {[p.name for p in params]}")
        return [p for p in params[len(self.context):] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def settings(self) -> list[str]:
        return [p.name for p in self.parameters()]

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.parameters() if p.default is not p.empty}


class Registry(Mapping[str, Entry]):
    """The pieces of one config group (``group``), built from ``{name: ..., **settings}``.

    ``context``: names of the leading factory parameters the caller passes positionally.
    ``facts``: the facts every entry must declare (a registration missing one is a bug).
    ``extra``: settings that the group's builder (not the factory) takes for an entry, as
    ``(name, annotation, default)`` triples: the compressor wrappers' ``error_feedback``.
    """

    def __init__(self, group: str, context: tuple[str, ...] = (), facts: tuple[str, ...] = (),
                 extra: Callable[[Entry], list[tuple[str, Any, Any]]] | None = None) -> None:
        self.group, self.context, self.required_facts = group, context, facts
        self.extra = extra or (lambda entry: [])
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, factory: Callable[..., Any] | None = None, **facts: Any) -> Any:
        """Register ``factory`` under ``name``; without a factory, a decorator that does."""
        if factory is None:
            return lambda f: self.register(name, f, **facts) and f
        missing = [f for f in self.required_facts if f not in facts]
        if missing:
            raise TypeError(f"{self.group} '{name}' must declare {', '.join(missing)}")
        if name in self._entries:
            raise TypeError(f"{self.group} '{name}' is registered twice")
        entry = Entry(name, factory, dict(facts), self.context)
        entry.parameters()  # the signature must start with the context
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise UserError(unknown_choice(self.group, name, self._entries))
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def build(self, cfg: Mapping[str, Any], *context: Any) -> Any:
        """``factory(*context, **settings)`` for the entry ``cfg['name']``; an unknown name or
        setting is one line listing what is allowed."""
        settings = to_plain(cfg, self.group)
        entry = self[settings.pop("name", None)]
        allowed = entry.settings()
        unknown = sorted(set(settings) - set(allowed))
        if unknown:
            raise UserError(f"{self.group}={entry.name} has no setting '{unknown[0]}'; "
                            f"allowed: {', '.join(allowed) or 'none'}")
        return entry.factory(*context, **settings)

    def with_fact(self, fact: str, value: Any = True) -> list[str]:
        """Names of the entries declaring ``fact`` = ``value``, in registration order."""
        return [name for name, entry in self._entries.items() if entry.facts.get(fact) == value]


def specialize(factory: Callable[..., Any], name: str, doc: str | None = None, fixed: Mapping[str, Any] | None = None,
               **defaults: Any) -> Callable[..., Any]:
    """``factory`` with some parameters ``fixed`` (no longer settings) and new ``defaults``
    for others (an algorithm's published values), keeping every other setting, its type
    and its default as the factory declares them; the result's signature says so."""
    fixed = dict(fixed or {})
    signature = inspect.signature(factory)
    unknown = sorted((set(fixed) | set(defaults)) - set(signature.parameters))
    if unknown:
        raise TypeError(f"{name}: {getattr(factory, '__name__', factory)} has no parameter {unknown[0]}")
    hints = resolved_hints(factory)
    params = [p.replace(default=defaults.get(p.name, p.default), annotation=hints.get(p.name, p.annotation))
              for p in signature.parameters.values() if p.name not in fixed]
    specialized_signature = signature.replace(parameters=params)

    def build(*args: Any, **kwargs: Any) -> Any:
        bound = specialized_signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return factory(**bound.arguments, **fixed)

    build.__signature__ = specialized_signature  # type: ignore[attr-defined]
    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc or factory.__doc__
    return build


def to_plain(value: Any, key: str = "") -> Any:
    """Plain Python values of a config (mappings -> dict, sequences -> list, enums -> their
    value), so no layer below the CLI sees a DictConfig or an Enum; and every number in it
    one that the layers can hold (``check_number``: finite floats within float32, ints
    within int64), else a UserError naming its full key (``key``: where ``value`` sits).

    The one place this is checked: every entry point converts its config here (the CLI's
    command-line check, ``compoptim.run``, ``run_job``, ``Trainer``, ``build_node``), and so
    does ``Registry.build``. A setting's own range is its factory's to check."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (isinstance(value, Sequence) and not isinstance(value, (str, bytes))):
        return [to_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Enum):
        return value.value
    return check_number(key or "a setting", value)


def resolved_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """A factory's parameter annotations as types (not strings); a composed signature
    (``__signature__``, see ``specialize``) carries real types already."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # an annotation that names a type only imported for checking
        hints = {}
    for p in inspect.signature(factory).parameters.values():
        if p.annotation is not p.empty and not isinstance(p.annotation, str):
            hints[p.name] = p.annotation
    return hints
