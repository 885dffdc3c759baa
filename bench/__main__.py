"""``make bench``: run every benchmark in bench/ and gather their tables in RESULTS.md.

Each ``bench/b*.py`` is runnable alone and writes its own ``RESULTS-<part>.md``;
this runner runs them one after another (never in parallel: they share two cores)
and writes ``bench/RESULTS.md`` with the date, the core count and every table.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the named benchmarks (default: all) and write RESULTS.md."""
    scripts = sorted(HERE.glob("b[0-9]*_*.py"))
    if argv:
        scripts = [s for s in scripts if any(s.stem.startswith(name) for name in argv)]
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{script.stem}"], cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
    write_results()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def write_results() -> None:
    """Concatenate every RESULTS-*.md under one dated heading."""
    parts = sorted(HERE.glob("RESULTS-*.md"))
    lines = [
        "# Benchmark results",
        "",
        f"Gathered {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
        "(each section states when it was measured). Targets: ../shared/BENCHMARKS.md.",
        "",
    ]
    for part in parts:
        text = part.read_text().strip().splitlines()
        lines += ["#" + text[0] if text and text[0].startswith("# ") else f"## {part.stem}", *text[1:], ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
