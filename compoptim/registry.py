"""Build an object from a ``{name: ..., **settings}`` config through a name registry.

Every config group (optimizer, compressor, model, dataset) resolves its ``name`` this way,
so an unknown name or setting is always one line that lists what is allowed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from compoptim.errors import UserError


def build_from_registry(group: str, registry: Mapping[str, Callable[..., Any]], cfg: Mapping[str, Any],
                        *args: Any) -> Any:
    settings = dict(cfg)
    name = settings.pop("name", None)
    if name not in registry:
        raise UserError(f"unknown {group} '{name}'; available: {', '.join(sorted(registry))}")
    factory = registry[name]
    # A factory may list its settings explicitly (``factory.settings``) instead of by signature.
    allowed = list(getattr(factory, "settings", None) or _settings_of(factory, skip=len(args)))
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise UserError(f"{group}={name} has no setting '{unknown[0]}'; allowed: {', '.join(allowed) or 'none'}")
    return factory(*args, **settings)


def _settings_of(factory: Callable[..., Any], skip: int) -> list[str]:
    params = list(inspect.signature(factory).parameters.values())[skip:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
