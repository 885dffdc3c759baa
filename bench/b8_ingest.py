"""B8: analytics ingest end to end: ``POST /v1/analytics/events``, 50 events a request, until committed.

A scratch database is built by the migrations; gunicorn serves the app with the
production config (``deploy/gunicorn.conf.py``, rate limits off) on a port of the
analytics range. An aiohttp client on one session keeps ``B8_CONNECTIONS`` requests in
flight for ``B8_SECONDS``, each a fresh batch of 50 events (new client UUIDs, 20,000
installs, skew correction on). An event counts when its answer says ``accepted``: the
write path has committed it to PostgreSQL before answering.

Baseline in the same run: psycopg2 ``COPY ... FROM STDIN`` of the same number of rows of
the same shape into the same partitioned table (bare COPY: no dedup ledger, no
roll-up, no HTTP). Three repetitions each, alternating; medians. Prints the BENCHMARKS.md
rows and writes bench/RESULTS-b8.md.

Run alone: ``flock /tmp/groundwork-heavy.lock .venv/bin/python -m bench.b8_ingest``
(a dry run: ``B8_SECONDS=3``).
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import runpy
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import result_row, run_sql, start_gunicorn, table_header, write_results  # noqa: E402

SECONDS = float(os.environ.get("B8_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("B8_CONNECTIONS", "32"))
PORT = int(os.environ.get("B8_PORT", "18410"))  # the analytics range 18400-18499 (B8_PORT to move it)
BATCH = 50
INSTALLS = 20_000
REPS = 3
DB_NAME = "gw_bench_b8"
ADMIN_URL = os.environ.get("B8_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
TARGET_RATE = 25_000
TARGET_RATIO = 0.7
NAMES = ("screen_view", "app_open", "button_tap", "search", "view_item", "add_to_cart", "purchase")


def _db_url() -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"


def build_database() -> None:
    run_sql(ADMIN_URL, f"DROP DATABASE IF EXISTS {DB_NAME}")
    run_sql(ADMIN_URL, f"CREATE DATABASE {DB_NAME}")
    from backend.app import create_app

    app = create_app({"DATABASE_URL": _db_url(), "REDIS_URL": REDIS_URL, "ENV": "development", "LOG_JSON": False,
                      "LOG_LEVEL": "WARNING"})
    with app.app_context():
        from flask_migrate import upgrade

        from backend.extensions import db

        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


def _bodies(count: int, seed: int) -> list[bytes]:
    """``count`` request bodies of BATCH fresh events each."""
    now = datetime.now(UTC).isoformat()
    bodies = []
    for i in range(count):
        events = [{"event_id": str(uuid.uuid4()), "name": NAMES[(i + j) % len(NAMES)], "timestamp": now,
                   "session_id": f"s-{seed}-{i}", "properties": {"screen": "home", "position": j}}
                  for j in range(BATCH)]
        bodies.append(json.dumps({"install_id": f"bench-install-{(seed * 7919 + i) % INSTALLS:06d}", "sent_at": now,
                                  "platform": "ios", "app_version": "3.1.0", "events": events}).encode())
    return bodies


async def _drive(url: str, bodies: list[bytes]) -> tuple[int, int, float]:
    """Send bodies with CONNECTIONS in flight for SECONDS: (accepted events, errors, seconds)."""
    import aiohttp

    accepted = errors = 0
    feed = iter(bodies)
    deadline = time.perf_counter() + SECONDS
    headers = {"Content-Type": "application/json"}

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal accepted, errors
        while time.perf_counter() < deadline:
            body = next(feed, None)
            if body is None:
                return
            async with session.post(url, data=body, headers=headers) as response:
                if response.status == 200:
                    accepted += (await response.json())["accepted"]
                else:
                    errors += 1
                    await response.read()

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session) for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    return accepted, errors, elapsed


def _copy_rate(rows: int) -> float:
    """Rows per second of a bare COPY of ``rows`` rows shaped like the API's into analytics_events."""
    import psycopg2

    now = datetime.now(UTC).isoformat()
    buffer = io.StringIO()
    for i in range(rows):
        install = f"bench-install-{i % INSTALLS:06d}"
        person = uuid.uuid5(uuid.NAMESPACE_URL, install)
        props = json.dumps({"screen": "home", "position": i % BATCH})
        buffer.write(f"{now}\t{uuid.uuid4()}\t{NAMES[i % len(NAMES)]}\t{person}\t\\N\t{install}\ts-{i // BATCH}\t"
                     f"ios\t3.1.0\t{props}\t{now}\n")
    connection = psycopg2.connect(_db_url())
    try:
        buffer.seek(0)
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.copy_expert(
                "COPY analytics_events (occurred_at, event_id, name, person_id, user_id, install_id, session_id, "
                "platform, app_version, properties, received_at) FROM STDIN", buffer)
            connection.commit()
            return rows / (time.perf_counter() - started)
    finally:
        connection.close()


def _cpu_seconds(server_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the gunicorn workers and of this database's PostgreSQL backends, by pid."""
    import psutil

    def used(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    found: dict[str, dict[int, float]] = {"workers": {}, "postgres": {}}
    for worker in psutil.Process(server_pid).children():
        found["workers"][worker.pid] = used(worker)
    backends = run_sql(_db_url(), "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                       (DB_NAME,), fetch=True)
    for (pid,) in backends:
        try:
            found["postgres"][pid] = used(psutil.Process(pid))
        except psutil.Error:
            continue
    return found


def _cpu_ms_per_request(before: dict, after: dict, requests: int) -> dict[str, float]:
    """CPU milliseconds per request spent by each group between two ``_cpu_seconds`` samples."""
    return {group: sum(after[group][pid] - before[group].get(pid, 0.0) for pid in after[group]) * 1000 / requests
            for group in after}


def main() -> int:
    load_at_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    conf = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))  # what gunicorn will read, same environment
    build_database()
    env = {"DATABASE_URL": _db_url(), "REDIS_URL": REDIS_URL, "ENV": "development", "LOG_JSON": "true",
           "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": "false",
           "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789"}
    api_rates, copy_rates, errors_total, cpu_per_request = [], [], 0, []
    with tempfile.TemporaryDirectory(prefix="b8-") as run_dir:
        server = start_gunicorn("wsgi:app", Path(run_dir), env=env, port=PORT)
        try:
            url = f"http://127.0.0.1:{server.port}/v1/analytics/events"
            asyncio.run(_drive(url, _bodies(200, seed=0)))  # warm the workers' pools
            for rep in range(1, REPS + 1):
                bodies = _bodies(int(SECONDS * 1500), seed=rep)  # more than the server can take in SECONDS
                cpu_before, client_before = _cpu_seconds(server.process.pid), time.process_time()
                accepted, errors, elapsed = asyncio.run(_drive(url, bodies))
                requests = max(1, accepted // BATCH + errors)
                cpu = _cpu_ms_per_request(cpu_before, _cpu_seconds(server.process.pid), requests)
                cpu["client"] = (time.process_time() - client_before) * 1000 / requests
                cpu_per_request.append(cpu)
                errors_total += errors
                api_rates.append(accepted / elapsed)
                copy_rates.append(_copy_rate(accepted or BATCH * 100))
                print(f"rep {rep}: API {api_rates[-1]:,.0f} events/s ({errors} errors), "
                      f"COPY {copy_rates[-1]:,.0f} rows/s; CPU ms per request: "
                      + ", ".join(f"{group} {ms:.2f}" for group, ms in cpu.items()), flush=True)
        finally:
            server.stop()
    (stored,), = run_sql(_db_url(), "SELECT count(*) FROM analytics_event_ids", fetch=True)
    api, bare = statistics.median(api_rates), statistics.median(copy_rates)
    ratio = api / bare
    rows = [
        result_row("B8 ingest events/s (50 a request, committed)", f"{api:,.0f} events/s", f"{bare:,.0f} rows/s COPY",
                   ratio, f"≥ {TARGET_RATE:,} events/s and ≥ {TARGET_RATIO}× COPY",
                   api >= TARGET_RATE and ratio >= TARGET_RATIO and errors_total == 0),
    ]
    body = "\n".join([
        f"{CONNECTIONS} requests in flight for {SECONDS:.0f} s, {REPS} repetitions (medians); gunicorn with the "
        f"production config (deploy/gunicorn.conf.py: {conf['workers']} gthread workers x {conf['threads']} threads on "
        f"{os.cpu_count()} cores, rate limits off, the aiohttp client on the same cores); {errors_total} non-200 "
        f"answers; {stored:,} client event IDs stored in all. Load average at start {load_at_start} (1/5/15 min).",
        "CPU per 50-event request (medians of the repetitions; what bounds the rate on a shared 2-core machine): "
        + ", ".join(f"{group} {statistics.median(c[group] for c in cpu_per_request):.2f} ms"
                    for group in ("workers", "postgres", "client"))
        + " (gunicorn workers, this database's PostgreSQL backends, the aiohttp load client).",
        "", table_header(), *rows])
    print("\n".join(rows))
    write_results(Path(__file__).resolve().parent / "RESULTS-b8.md", "B8: analytics ingest", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
