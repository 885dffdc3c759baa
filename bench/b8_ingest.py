"""B8: analytics ingest end to end: ``POST /v1/analytics/events``, 50 events a request, until committed.

A scratch database is built by the migrations; gunicorn serves the app with the
production config (``deploy/gunicorn.conf.py``, rate limits off) on a port of the
analytics range. An aiohttp client on one session keeps ``B8_CONNECTIONS`` requests in
flight for ``B8_SECONDS``, each a fresh batch of 50 events (new client UUIDs, 20,000
installs, skew correction on). An event counts when its answer says ``accepted``: the
write path has committed it to PostgreSQL before answering (the client event IDs the
database gained in the repetition are counted too, and must match).

Two rows, measured in the same run (three repetitions each, alternating; medians):

- **End to end**: accepted events per second through the API (target 25,000), beside a
  psycopg2 ``COPY ... FROM STDIN`` of as many rows of the same shape into the same
  partitioned table on one connection (bare COPY: no dedup ledger, no roll-up, no HTTP).
- **Write path**: the function the API runs once a batch is checked
  (``ingest.store_autocommit``: client IDs claimed, a retry counted once, events and
  roll-ups stored, committed), called in-process from ``B8_WRITERS`` threads with a
  connection each, on ``B8_WRITE_BATCHES`` fresh 50-event batches that went through
  ``check_batch``; against bare COPY of the same rows in the same 50-row batches on the
  same connections, each committed (the acknowledgement the API gives needs a commit per
  batch; the target is 0.7x). The same write path against one COPY of all the rows on one
  connection is printed as a third row, for context.

Prints the BENCHMARKS.md rows and writes bench/RESULTS-b8.md.

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
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
WRITERS = int(os.environ.get("B8_WRITERS", "4"))
WRITE_BATCHES = int(os.environ.get("B8_WRITE_BATCHES", "1500"))
DB_NAME = os.environ.get("B8_DB_NAME", "gw_bench_b8")  # a helper's scratch run takes its own name
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
                    # Read first: "accepted += await ..." reads the total before the await and
                    # writes it back after, losing what other requests added meanwhile.
                    answered = (await response.json())["accepted"]
                    accepted += answered
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
    """Rows per second of one bare COPY of ``rows`` rows shaped like the API's into analytics_events."""
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
            cursor.copy_expert(f"COPY analytics_events ({COPY_COLUMNS}) FROM STDIN", buffer)
            connection.commit()
            return rows / (time.perf_counter() - started)
    finally:
        connection.close()


COPY_COLUMNS = ("occurred_at, event_id, name, person_id, user_id, install_id, session_id, platform, app_version, "
                "properties, received_at")


def _checked_batches(count: int, seed: int, limits: Any) -> list[dict[str, Any]]:
    """``count`` fresh batches as the route hands them to the write path: checked, as the statement's parameters."""
    from backend.analytics import identity, ingest
    from backend.analytics.batches import check_batch

    received = datetime.now(UTC)
    found = []
    for body in _bodies(count, seed):
        data = json.loads(body)
        batch = ingest.Batch(install_id=data["install_id"], events=data["events"],
                             sent_at=datetime.fromisoformat(data["sent_at"]), platform=data["platform"],
                             app_version=data["app_version"])
        checked = check_batch(batch.events, sent_at=batch.sent_at, received_at=received, limits=limits,
                              platform=batch.platform, app_version=batch.app_version)
        assert len(checked.event_ids) == BATCH, checked.rejected
        found.append(ingest.write_params(checked, batch=batch, person_id=identity.anonymous_person_id(batch.install_id),
                                         user_id=None, ip_prefix="127.0.0.0/24", now=received))
    return found


def _copy_field(value: str | None) -> str:
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_text(params: dict[str, Any]) -> str:
    """The rows of one checked batch as COPY text, with the values the write path stores."""
    person, install, now = params["person"], _copy_field(params["install"]), params["now"].isoformat()
    return "".join(
        f"{moment}\t{event_id}\t{_copy_field(name)}\t{person}\t\\N\t{install}\t{_copy_field(session_id)}\t"
        f"{_copy_field(platform)}\t{_copy_field(version)}\t{_copy_field(props)}\t{now}\n"
        for moment, event_id, name, session_id, platform, version, props in zip(
            params["times"], params["ids"], params["names"], params["sessions"], params["platforms"],
            params["versions"], params["props"], strict=True))


def _in_threads(batches: list[Any], work: Any) -> tuple[float, float]:
    """(seconds, PostgreSQL CPU seconds) for WRITERS threads, an autocommit connection each, to ``work`` their share.

    Each thread runs its first batch before the clock starts (a connection's PREPAREs).
    """
    import psutil
    import psycopg2
    import psycopg2.extras

    connections = [psycopg2.connect(_db_url()) for _ in range(WRITERS)]
    backends = [psutil.Process(connection.get_backend_pid()) for connection in connections]
    for connection in connections:
        connection.autocommit = True
        psycopg2.extras.register_uuid(None, connection)
    ready = threading.Barrier(WRITERS + 1)

    def run(connection: Any, share: list[Any]) -> None:
        info: dict[str, Any] = {}
        work(connection, info, share[0])
        ready.wait()
        for batch in share[1:]:
            work(connection, info, batch)

    def backend_cpu() -> float:
        return sum(sum(backend.cpu_times()[:2]) for backend in backends)

    threads = [threading.Thread(target=run, args=(connection, batches[i::WRITERS]))
               for i, connection in enumerate(connections)]
    try:
        for thread in threads:
            thread.start()
        ready.wait()
        cpu_before, started = backend_cpu(), time.perf_counter()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started, backend_cpu() - cpu_before
    finally:
        for connection in connections:
            connection.close()


def _write_path(batches: list[dict[str, Any]]) -> dict[str, float]:
    """Rows per second (and PostgreSQL CPU ms per batch) of the write path and of bare COPY on the same batches."""
    from backend.analytics import ingest

    stored = []

    def write(connection: Any, info: dict[str, Any], params: dict[str, Any]) -> None:
        stored.append(ingest.store_autocommit(connection, info, params))

    def copy(connection: Any, info: dict[str, Any], params: dict[str, Any]) -> None:
        with connection.cursor() as cursor:  # autocommit: each COPY commits on its own
            cursor.copy_expert(f"COPY analytics_events ({COPY_COLUMNS}) FROM STDIN", io.StringIO(_copy_text(params)))

    timed = len(batches) - WRITERS  # each thread's first batch is outside the clock
    write_seconds, write_cpu = _in_threads(batches, write)
    if sum(stored) != len(batches) * BATCH:
        raise RuntimeError(f"the write path stored {sum(stored)} of {len(batches) * BATCH} fresh events")
    copy_seconds, copy_cpu = _in_threads(batches, copy)
    return {"write": timed * BATCH / write_seconds, "copy": timed * BATCH / copy_seconds,
            "write_pg_ms": write_cpu * 1000 / timed, "copy_pg_ms": copy_cpu * 1000 / timed}


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


def _stored_ids() -> int:
    (count,), = run_sql(_db_url(), "SELECT count(*) FROM analytics_event_ids", fetch=True)
    return count


def _one_copy_rate(batches: list[dict[str, Any]]) -> float:
    """Rows per second of one COPY of all the rows of ``batches`` on one connection, committed once."""
    import psycopg2

    buffer = io.StringIO("".join(_copy_text(params) for params in batches))
    connection = psycopg2.connect(_db_url())
    try:
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.copy_expert(f"COPY analytics_events ({COPY_COLUMNS}) FROM STDIN", buffer)
            connection.commit()
            return len(batches) * BATCH / (time.perf_counter() - started)
    finally:
        connection.close()


def main() -> int:
    from backend.analytics.ingest import limits_from
    from backend.config import load_config

    load_at_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    conf = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))  # what gunicorn will read, same environment
    build_database()
    env = {"DATABASE_URL": _db_url(), "REDIS_URL": REDIS_URL, "ENV": "development", "LOG_JSON": "true",
           "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": "false",
           "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789"}
    limits = limits_from(load_config(env))
    api_rates, copy_rates, errors_total, cpu_per_request, writes = [], [], 0, [], []
    with tempfile.TemporaryDirectory(prefix="b8-") as run_dir:
        server = start_gunicorn("wsgi:app", Path(run_dir), env=env, port=PORT)
        try:
            url = f"http://127.0.0.1:{server.port}/v1/analytics/events"
            asyncio.run(_drive(url, _bodies(200, seed=0)))  # warm the workers' pools (and make this month's partition)
            for rep in range(1, REPS + 1):
                bodies = _bodies(int(SECONDS * 1500), seed=rep)  # more than the server can take in SECONDS
                ids_before = _stored_ids()
                cpu_before, client_before = _cpu_seconds(server.process.pid), time.process_time()
                accepted, errors, elapsed = asyncio.run(_drive(url, bodies))
                requests = max(1, accepted // BATCH + errors)
                cpu = _cpu_ms_per_request(cpu_before, _cpu_seconds(server.process.pid), requests)
                cpu["client"] = (time.process_time() - client_before) * 1000 / requests
                if _stored_ids() - ids_before != accepted:
                    raise RuntimeError(f"answers said {accepted} accepted, the database gained "
                                       f"{_stored_ids() - ids_before} client event IDs")
                cpu_per_request.append(cpu)
                errors_total += errors
                api_rates.append(accepted / elapsed)
                copy_rates.append(_copy_rate(accepted or BATCH * 100))
                batches = _checked_batches(WRITE_BATCHES, seed=100 + rep, limits=limits)
                writes.append({**_write_path(batches), "one_copy": _one_copy_rate(batches)})
                print(f"rep {rep}: API {api_rates[-1]:,.0f} events/s ({errors} errors), "
                      f"COPY {copy_rates[-1]:,.0f} rows/s; CPU ms per request: "
                      + ", ".join(f"{group} {ms:.2f}" for group, ms in cpu.items())
                      + f"; write path {writes[-1]['write']:,.0f} rows/s vs COPY a batch {writes[-1]['copy']:,.0f} "
                      f"(PostgreSQL CPU ms a batch {writes[-1]['write_pg_ms']:.2f} vs {writes[-1]['copy_pg_ms']:.2f}), "
                      f"one COPY {writes[-1]['one_copy']:,.0f} rows/s", flush=True)
        finally:
            server.stop()
    stored = _stored_ids()
    api, bare = statistics.median(api_rates), statistics.median(copy_rates)
    write = {key: statistics.median(w[key] for w in writes) for key in writes[0]}
    rows = [
        result_row("B8 ingest end to end (50 events a request, committed)", f"{api:,.0f} events/s",
                   f"{bare:,.0f} rows/s one COPY", api / bare, f"≥ {TARGET_RATE:,} events/s",
                   api >= TARGET_RATE and errors_total == 0),
        result_row("B8 write path (checked batches of 50 → committed, IDs deduplicated)",
                   f"{write['write']:,.0f} rows/s",
                   f"{write['copy']:,.0f} rows/s bare COPY of the same 50-row batches", write["write"] / write["copy"],
                   f"≥ {TARGET_RATIO}× COPY", write["write"] / write["copy"] >= TARGET_RATIO),
        result_row("B8 write path vs one COPY of all its rows (context)", f"{write['write']:,.0f} rows/s",
                   f"{write['one_copy']:,.0f} rows/s", write["write"] / write["one_copy"], "—", None),
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
        f"Write path: {WRITE_BATCHES:,} checked 50-event batches a repetition from {WRITERS} threads, a connection "
        f"each (ingest.store_autocommit, as the API calls it); the baseline COPYs the same rows in the same batches on "
        f"the same connections, each batch committed. PostgreSQL CPU a batch: write path "
        f"{write['write_pg_ms']:.2f} ms, bare COPY {write['copy_pg_ms']:.2f} ms.",
        "", table_header(), *rows])
    print("\n".join(rows))
    write_results(Path(__file__).resolve().parent / "RESULTS-b8.md", "B8: analytics ingest", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
