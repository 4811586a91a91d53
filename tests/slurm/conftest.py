"""tests/slurm/: compoptim's SLURM path against a running one-machine SLURM cluster.

Every test here is marked ``slurm`` and ``slow``. The session's cluster is started once by
``scripts/slurm_local.sh`` (munged, slurmctld, slurmd; Debian's slurm-wlm and munge, as root)
and stopped at the end. Where SLURM is not installed, or ``.ci/run`` could not install it
(it sets ``COMPOPTIM_SLURM_UNAVAILABLE`` to the reason), the tests skip with that reason, and
the session's summary ends with a banner saying so, so that a skip is never silent. The summary
also lists how long the cluster took to start and each test's run time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN
from tests.slurm.cluster import Cluster

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "srun", "squeue", "scancel", "scontrol")

_skipped: list[str] = []
_times: dict[str, float] = {}
_started: list[float] = []


def unavailable() -> str | None:
    """Why this machine cannot run a SLURM cluster, or None."""
    reason = os.environ.get("COMPOPTIM_SLURM_UNAVAILABLE")
    if reason:
        return f"SLURM could not be installed: {reason}"
    path = f"{os.environ.get('PATH', '')}:/usr/sbin"
    missing = [b for b in SLURM_BINARIES if shutil.which(b, path=path) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} not found): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (slurmd starts jobs as their user)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items, not only this folder's.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slurm)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Cluster:
    """The running cluster; every job the tests submit sees this venv's bin first on PATH
    (sbatch passes the submitting environment on)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}:/usr/sbin",
           "SLURM_CONF": str(directory / "slurm.conf"), "PYTHONUNBUFFERED": "1"}
    begin = time.monotonic()
    started = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_local.sh"), "start", str(directory)],
                             capture_output=True, text=True, env=env, timeout=120, check=False)
    if started.returncode != 0:
        pytest.fail(f"the local SLURM cluster did not start: {started.stderr.strip()}")
    _started.append(time.monotonic() - begin)
    yield Cluster(directory, env)
    subprocess.run(["bash", str(ROOT / "scripts" / "slurm_local.sh"), "stop", str(directory)],
                   capture_output=True, env=env, timeout=60, check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if HERE in item.path.parents:
        if report.skipped:
            _skipped.append(item.nodeid)
        elif call.when == "call":
            _times[item.nodeid] = report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    write = terminalreporter.write_line
    if _started or _times:
        write(f"SLURM: local cluster started in {_started[0]:.2f} s" if _started else "SLURM:")
        for nodeid, seconds in _times.items():
            write(f"  {seconds:6.1f} s  {nodeid}")
    if _skipped:
        banner = "!" * 78
        write(banner, red=True, bold=True)
        write(f"{len(_skipped)} SLURM tests SKIPPED: {unavailable() or 'see the skip reasons above'}",
              red=True, bold=True)
        write(banner, red=True, bold=True)
