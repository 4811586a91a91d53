"""Every test under tests/mpi/ is marked ``mpi`` here, a new file's included, so
``pytest -m "not mpi"`` leaves out all that spawn mpirun."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items, not only this folder's.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.mpi)
