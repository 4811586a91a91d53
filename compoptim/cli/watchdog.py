"""A run's watchdog: when the process that writes summary.json dies without saying how the
run ended (SIGKILL, the out-of-memory killer, mpirun ending the job after another rank
died), a ``running`` status becomes ``killed``.

Nothing inside a killed process can record its own death, so a tiny helper process (its
own session: a Ctrl-C or a kill of the job's process group does not reach it) waits on a
pipe from the run. A run that ends on purpose writes one byte before the pipe closes; a
bare end of the pipe means the run's process is gone, and the helper reads summary.json.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

KILLED = ("the run's processes ended without recording a result: killed (SIGKILL, out of memory, or the "
          "launcher ended the job after another rank died)")

# Runs in the helper (python -S -c): json and os only, so it starts in a few milliseconds.
_HELPER = r"""
import json, os, sys
fd, path, message = int(sys.argv[1]), sys.argv[2], sys.argv[3]
said = b""
while True:
    try:
        chunk = os.read(fd, 64)
    except InterruptedError:
        continue
    if not chunk:
        break
    said += chunk
if said:
    sys.exit(0)
try:
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)
except (OSError, ValueError):
    sys.exit(0)
if isinstance(summary, dict) and summary.get("status") == "running":
    summary.update(status="killed", error=message)
    tmp = os.path.join(os.path.dirname(path), ".summary.json.tmp-watchdog")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass
"""


@contextlib.contextmanager
def watchdog(run_dir: Path) -> Iterator[None]:
    """Watch this process for the block's duration (leaving the block, also by an exception,
    is an end on purpose: the caller records the status itself)."""
    read_end, write_end = os.pipe()
    helper = None
    try:
        summary = str(Path(run_dir) / "summary.json")
        helper = subprocess.Popen([sys.executable, "-S", "-c", _HELPER, str(read_end), summary, KILLED],
                                  pass_fds=(read_end,), start_new_session=True, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        os.close(write_end)
        write_end = -1  # no watchdog (no processes left?): the run itself is not affected
    finally:
        os.close(read_end)
    try:
        yield
    finally:
        if write_end >= 0:
            with contextlib.suppress(OSError):
                os.write(write_end, b"ended")
            os.close(write_end)
        if helper is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                helper.wait(timeout=5)  # it exits as soon as it reads the pipe's end
