"""``python -m bench`` (``make bench``): run every benchmark, then gather the table.

Each benchmark runs alone in its own process and writes ``bench/RESULTS-<name>.md``;
this collects them into ``bench/RESULTS.md`` with the date and the core count.
"""

from __future__ import annotations

import re
import subprocess
import sys

from bench.common import ROOT, machine_line

BENCHMARKS = ["b1_baseline"]


def main() -> int:
    """Run each benchmark module; a failing one is reported and the rest still run."""
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, check=False).returncode:
            failed.append(name)
    sections = [path.read_text() for path in sorted((ROOT / "bench").glob("RESULTS-*.md"))]
    (ROOT / "bench" / "RESULTS.md").write_text(
        f"# Benchmark results\n\nCollected {machine_line()}; each section keeps its own run date.\n\n"
        + "\n".join(re.sub(r"^(#+) ", r"#\1 ", section, flags=re.MULTILINE) for section in sections)
    )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
