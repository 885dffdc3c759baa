"""Shared benchmark helpers: servers under the production configs, a bounded loopback
load generator, medians of repetitions, and the one-row result format of BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/b1_baseline.py` from anywhere
    sys.path.insert(0, str(ROOT))

from tests.e2e.processes import (  # noqa: E402 - needs ROOT on sys.path
    Server,
    start_gunicorn,
    start_nginx,
)

__all__ = [
    "Load",
    "Server",
    "install_wrk",
    "next_port",
    "measure",
    "median_load",
    "result_row",
    "start_gunicorn",
    "start_nginx",
    "table_header",
    "write_results",
]

CONNECTIONS = 16  # BENCHMARKS.md: p99 is judged at 16 connections
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))  # shorter only for a dry run of a harness
REPS = int(os.environ.get("BENCH_REPS", "3"))
# Optional "first-last" port range (a shared machine gives each engineer one); unset: any free port.
_PORT_RANGE = os.environ.get("BENCH_PORTS", "").strip()
_ports_given: list[int] = []


def next_port() -> int | None:
    """The next unused port of BENCH_PORTS, or None (let the server pick a free one) when unset."""
    if not _PORT_RANGE:
        return None
    first, last = (int(part) for part in _PORT_RANGE.split("-"))
    port = (_ports_given[-1] + 1) if _ports_given else first
    if port > last:
        raise RuntimeError(f"BENCH_PORTS={_PORT_RANGE} has no port left")
    _ports_given.append(port)
    return port


@dataclass(frozen=True)
class Load:
    """What one bounded run measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers and socket errors
    tool: str


def install_wrk() -> str | None:
    """wrk from Debian when missing and apt-get is usable as root; None if unavailable."""
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=300,
        )
    return shutil.which("wrk")


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def _run_wrk(url: str, seconds: float, connections: int) -> Load:
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    out = result.stdout
    percentiles = dict(re.findall(r"^\s*(50|99)(?:\.0+)?%\s+(\S+)\s*$", out, re.MULTILINE))
    if set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"could not read wrk's latency percentiles:\n{out}\n{result.stderr}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), "
        r"timeout (\d+)",
        out,
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_wrk_ms(percentiles["50"]),
        p99_ms=_wrk_ms(percentiles["99"]),
        requests=requests,
        errors=errors,
        tool="wrk",
    )


async def _aiohttp_load(url: str, seconds: float, connections: int) -> Load:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_connection() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        if response.status >= 300:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Load(
        rps=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        requests=len(latencies),
        errors=errors,
        tool="aiohttp",
    )


def measure(url: str, *, seconds: float = SECONDS, connections: int = CONNECTIONS) -> Load:
    """Drive ``url`` (loopback only) for ``seconds`` with ``connections`` at once."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("benchmarks load loopback servers only")
    if shutil.which("wrk"):
        return _run_wrk(url, seconds, connections)
    return asyncio.run(_aiohttp_load(url, seconds, connections))


def median_load(loads: list[Load]) -> Load:
    """Median of each figure over repetitions (errors summed: any error is reported)."""
    return Load(
        rps=statistics.median(load.rps for load in loads),
        p50_ms=statistics.median(load.p50_ms for load in loads),
        p99_ms=statistics.median(load.p99_ms for load in loads),
        requests=sum(load.requests for load in loads),
        errors=sum(load.errors for load in loads),
        tool=loads[0].tool,
    )


def table_header() -> str:
    return "| name | groundwork | baseline | ratio | target | holds |\n|---|---|---|---|---|---|"


def result_row(name: str, groundwork: str, baseline: str, ratio: float | None, target: str, holds: bool | None) -> str:
    """One row as BENCHMARKS.md asks: name, figures, ratio, target, whether it holds."""
    ratio_text = "—" if ratio is None else f"{ratio:.2f}×"
    holds_text = "—" if holds is None else ("yes" if holds else "**no**")
    return f"| {name} | {groundwork} | {baseline} | {ratio_text} | {target} | {holds_text} |"


def source_commit() -> str:
    """The commit measured: BENCH_COMMIT (for a `git archive` copy), else git's HEAD."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    commit = result.stdout.strip() or "unknown"
    return commit + (" + uncommitted changes" if dirty.stdout.strip() else "")


def machine_line() -> str:
    """Date, core count and commit, for the results file."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}, nproc={os.cpu_count()}, python {sys.version.split()[0]}, commit {source_commit()}"


def write_results(path: Path, title: str, body: str) -> None:
    """Replace ``path`` with a dated results section."""
    path.write_text(f"# {title}\n\nMeasured {machine_line()}.\n\n{body}\n")


def run_sql(url: str, sql: str, params: object = None, *, fetch: bool = False) -> list[tuple] | None:
    """One autocommitted statement on its own psycopg2 connection (scratch databases of the benchmarks)."""
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else None
    finally:
        connection.close()
