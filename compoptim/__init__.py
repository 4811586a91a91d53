"""compoptim: decentralized training with compressed communication (PyTorch + MPI + Hydra).

``compoptim.run(overrides)`` trains one configuration from Python (see ``compoptim.api``);
it is imported on first use, so ``import compoptim`` stays light (no torch, no MPI).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Result", "__version__", "run"]

_API = ("Result", "run")


def __getattr__(name: str) -> Any:
    if name in _API:
        from compoptim import api

        return getattr(api, name)
    raise AttributeError(f"module 'compoptim' has no attribute {name!r}")
