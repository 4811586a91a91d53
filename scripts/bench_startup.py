"""Start-up time of the command line before any training: this checkout against an older
commit, measured in turn in one run (ratios, and absolute seconds on this machine).

    python scripts/bench_startup.py                       # against 48d2097 (before the lazy imports)
    python scripts/bench_startup.py --base HEAD~3 --repeats 9
    python scripts/bench_startup.py --smoke               # one repetition (CI)

Each case is a fresh process: ``compoptim-run --help``, a config error
(``optimizer=adamm``) and ``--version``. The older commit runs from a git worktree in a
temporary folder (its conf tree linked where the package expects it), with this venv.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"--help": ["--help"], "config error": ["optimizer=adamm"], "--version": ["--version"]}
# Run compoptim-run's entry point from the given source tree.
ENTRY = "import sys; sys.path.insert(0, {tree!r}); sys.argv = ['compoptim-run', *sys.argv[1:]]; " \
        "from compoptim.cli.run import main; main()"


def timed(tree: Path, args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", ENTRY.format(tree=str(tree)), *args], cwd=cwd, capture_output=True,
                   check=False, timeout=300)
    return time.perf_counter() - start


def worktree(base: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), base], check=True,
                   capture_output=True)
    (into / "compoptim" / "conf").symlink_to(into / "conf")  # where a wheel puts it
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="48d2097", help="the commit to compare against")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one repetition")
    args = parser.parse_args()
    repeats = 1 if args.smoke else args.repeats
    with tempfile.TemporaryDirectory(prefix="bench_startup") as tmp:
        old = worktree(args.base, Path(tmp) / "base")
        try:
            times: dict[tuple[str, str], list[float]] = {}
            for _ in range(repeats):
                for case, case_args in CASES.items():
                    for label, tree in (("base", old), ("now", ROOT)):
                        times.setdefault((case, label), []).append(timed(tree, case_args, Path(tmp)))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False,
                           capture_output=True)
    print(f"| case | {args.base} (s, median of {repeats}) | now (s) | now / base |")
    print("|---|---|---|---|")
    for case in CASES:
        base, now = (statistics.median(times[(case, label)]) for label in ("base", "now"))
        print(f"| {case} | {base:.2f} | {now:.2f} | {now / base:.2f} |")


if __name__ == "__main__":
    main()
