"""Run the tests that drive other processes many times in a row and count the failures.

``python -m tests.steady --runs 10`` runs the e2e, chaos and security tests (``-m``) ten
times, each run a fresh pytest session on ``--workers`` xdist workers, and prints one
line per run and the totals; ``--busy-core`` keeps one core spinning meanwhile, as on a
loaded CI machine. Exit status 1 when any run failed. `make steady` runs it.
"""
from __future__ import annotations

import argparse
import multiprocessing
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKERS = "e2e or chaos or security"
_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected)")


def _spin() -> None:
    while True:
        pass


def run_once(*, markers: str, workers: int, extra: list[str], log: Path) -> tuple[int, dict[str, int], float]:
    """One pytest session; returns its exit code, its summary counts and its wall time."""
    command = [sys.executable, "-m", "pytest", "-m", markers, "-q", *extra]
    if workers:
        command += ["-n", str(workers), "--dist", "loadgroup"]
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    elapsed = time.monotonic() - started
    tail = log.read_text(errors="replace").splitlines()[-1:] or [""]
    counts = {("error" if kind.startswith("error") else kind): int(n) for n, kind in _SUMMARY.findall(tail[0])}
    return code, counts, elapsed


def main(argv: list[str] | None = None) -> int:
    """Run the sessions, print a line each and the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="xdist workers per run (0: one process)")
    parser.add_argument("--markers", default=MARKERS)
    parser.add_argument("--busy-core", action="store_true", help="keep one core spinning during the runs")
    parser.add_argument("--log-dir", type=Path, default=ROOT / "instance" / "steady")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    spinner = multiprocessing.Process(target=_spin, daemon=True) if args.busy_core else None
    if spinner:
        spinner.start()
    failed_runs = 0
    totals: dict[str, int] = {}
    try:
        for number in range(1, args.runs + 1):
            log = args.log_dir / f"run-{number:02d}.log"
            code, counts, elapsed = run_once(markers=args.markers, workers=args.workers, extra=args.pytest_args,
                                             log=log)
            failed_runs += code != 0
            for kind, n in counts.items():
                totals[kind] = totals.get(kind, 0) + n
            print(f"run {number}/{args.runs}: exit {code} {counts} in {elapsed:.0f} s ({log})", flush=True)
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(("FAILED ", "ERROR ")):
                    print(f"  {line}", flush=True)
    finally:
        if spinner:
            spinner.terminate()
            spinner.join(5)
    busy = ", one core kept busy" if args.busy_core else ""
    print(f"steady: {args.runs - failed_runs}/{args.runs} runs green{busy}; totals {totals}", flush=True)
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
