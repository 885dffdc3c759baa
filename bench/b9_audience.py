"""B9: a campaign audience query over 1M users/devices (zone, platform, last active).

Builds a scratch database by running the migrations, fills 1M users and 1M devices
with ``generate_series`` (in PostgreSQL, no Python loop), then, three times each:

- Groundwork: ``backend.notifications.campaigns.audience.stream_audience`` in a fresh worker
  process (server-side cursor, batches of 5,000), wall time until the last row is in
  Python, and the worker's peak RSS;
- baseline: ``EXPLAIN ANALYZE`` of the hand-written SQL for the same audience
  (execution time inside PostgreSQL, no transfer to a client).

It checks the service's plan uses an index on devices, prints BENCHMARKS.md rows and
writes bench/RESULTS-b9.md. Run alone: ``python -m bench.b9_audience``.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import result_row, table_header, write_results  # noqa: E402

USERS = int(os.environ.get("B9_USERS", "1000000"))
REPS = 3
DB_NAME = "gw_bench_b9"
ADMIN_URL = os.environ.get("B9_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
ZONES = [
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
    "America/Mexico_City", "America/Toronto", "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
    "Europe/Rome", "Europe/Moscow", "Europe/Istanbul", "Africa/Lagos", "Africa/Cairo", "Africa/Johannesburg",
    "Asia/Dubai", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Dhaka", "Asia/Bangkok", "Asia/Jakarta", "Asia/Shanghai",
    "Asia/Singapore", "Asia/Tokyo", "Asia/Seoul", "Asia/Manila", "Australia/Sydney", "Australia/Perth",
    "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham", "Pacific/Honolulu", "America/Anchorage",
    "America/Bogota", "America/Lima", "Europe/Warsaw", "Asia/Karachi", "UTC",
]
AUDIENCE = {"type": "segment", "filters": {
    "time_zones": ZONES[:10], "platforms": ["ios"], "last_active_within_days": 30}}
TARGET_S = 1.0
TARGET_RSS_MIB = 200


def _db_url() -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"


def _psql(url: str, sql: str, params: tuple | None = None, *, fetch: bool = False) -> Any:
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else None
    finally:
        connection.close()


def _app() -> Any:
    from backend.app import create_app

    return create_app({"DATABASE_URL": _db_url(), "REDIS_URL": REDIS_URL, "ENV": "development", "LOG_JSON": False,
                       "LOG_LEVEL": "WARNING", "DB_STATEMENT_TIMEOUT_MS": 600_000})


def build_database() -> float:
    """A fresh database at the migrations' head, filled with USERS users and devices; returns seconds."""
    _psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {DB_NAME}")
    _psql(ADMIN_URL, f"CREATE DATABASE {DB_NAME}")
    app = _app()
    with app.app_context():
        from flask_migrate import upgrade

        from backend.extensions import db

        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    started = time.perf_counter()
    url = _db_url()
    zones = "ARRAY[" + ",".join(f"'{z}'" for z in ZONES) + "]"
    _psql(url, f"""
        INSERT INTO users (id, email, role, status, first_name, last_active_at)
        SELECT md5('u' || g)::uuid, 'b9-' || g || '@example.test', 'user',
               CASE WHEN g % 97 = 0 THEN 'suspended' ELSE 'active' END,
               CASE WHEN g % 3 = 0 THEN NULL ELSE 'User' || g END,
               now() - (g % 60) * interval '1 day'
        FROM generate_series(1::bigint, {USERS}) g""")
    _psql(url, f"""
        INSERT INTO devices (id, user_id, installation_id, token, platform, app_version, locale, time_zone,
                             push_permission, last_seen_at)
        SELECT md5('d' || g)::uuid, md5('u' || g)::uuid, 'inst-' || g, 'tok-' || md5('t' || g),
               (ARRAY['ios','android','ios','android','web'])[1 + g % 5],
               '2.' || (g % 12) || '.0', (ARRAY['en','en-US','fr','de','es','pt-BR','ja'])[1 + g % 7],
               ({zones})[1 + (g * 7919) % {len(ZONES)}],
               CASE WHEN g % 50 = 0 THEN 'denied' ELSE 'granted' END,
               now() - ((g * 31) % 86400 * 60) * interval '1 second'
        FROM generate_series(1::bigint, {USERS}) g""")
    _psql(url, "VACUUM ANALYZE users")
    _psql(url, "VACUUM ANALYZE devices")
    return time.perf_counter() - started


def _service_sql() -> tuple[str, dict[str, Any]]:
    from backend.common.db import utcnow
    from backend.notifications.campaigns.audience import audience_select

    stmt = audience_select(AUDIENCE, now=utcnow())
    from sqlalchemy.dialects import postgresql

    compiled = stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled), {}


HAND_SQL = """
SELECT d.id, d.user_id, d.time_zone, d.locale, d.platform
FROM devices d
WHERE d.token IS NOT NULL AND d.disabled_at IS NULL AND d.push_permission IN ('granted', 'provisional')
  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id AND u.status <> 'active')
  AND d.platform = 'ios' AND d.time_zone = ANY(%s) AND d.last_seen_at >= now() - interval '30 days'
"""
# The first way one would write it (context: what the anti-join and covering index avoid).
NAIVE_SQL = """
SELECT d.id, d.user_id, d.time_zone, d.locale, d.platform
FROM devices d JOIN users u ON u.id = d.user_id
WHERE d.token IS NOT NULL AND d.disabled_at IS NULL AND d.push_permission IN ('granted', 'provisional')
  AND u.status = 'active' AND d.platform = 'ios' AND d.time_zone = ANY(%s)
  AND d.last_seen_at >= now() - interval '30 days'
"""


def baseline_ms(sql: str = HAND_SQL) -> tuple[float, int]:
    """EXPLAIN ANALYZE of hand-written SQL (one backend, as a cursor runs): execution ms and rows."""
    ((plan,),) = _psql(_db_url(), "SET max_parallel_workers_per_gather = 0; EXPLAIN (ANALYZE, FORMAT JSON) " + sql,
                       (ZONES[:10],), fetch=True)
    top = plan[0]
    return top["Execution Time"], top["Plan"]["Actual Rows"]


def raw_cursor_ms() -> float:
    """The hand-written SQL through a bare psycopg2 named cursor (same batches): ms to the last row."""
    import psycopg2

    connection = psycopg2.connect(_db_url())
    try:
        started = time.perf_counter()
        with connection.cursor(name="b9") as cursor:
            cursor.itersize = 5_000
            cursor.execute(HAND_SQL, (ZONES[:10],))
            sum(1 for _ in cursor)
        return (time.perf_counter() - started) * 1000
    finally:
        connection.close()


def _index_nodes(node: dict[str, Any]) -> list[str]:
    found = []
    if "Index Name" in node:
        found.append(f"{node['Node Type']} on {node['Index Name']}")
    for child in node.get("Plans", []):
        found += _index_nodes(child)
    return found


def service_plan() -> list[str]:
    """Index nodes in the plan of the query the service builds."""
    app = _app()
    with app.app_context():
        sql, _ = _service_sql()
    ((plan,),) = _psql(_db_url(), "EXPLAIN (FORMAT JSON) " + sql, fetch=True)
    return _index_nodes(plan[0]["Plan"])


def worker() -> None:
    """Child process: stream the audience through the service; print seconds, rows, peak RSS."""
    app = _app()
    with app.app_context():
        from backend.common.db import utcnow
        from backend.extensions import db
        from backend.notifications.campaigns.audience import stream_audience

        db.session.execute(db.text("SELECT 1"))  # connect before timing
        started = time.perf_counter()
        rows = sum(len(batch) for batch in stream_audience(db.session, AUDIENCE, now=utcnow(), batch_size=5_000))
        seconds = time.perf_counter() - started
        db.session.remove()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": rows, "rss_mib": rss_mib}))


def materialize_worker(campaign_id: str) -> None:
    """Child process: the ledger INSERT … SELECT for the same audience (rolled back); print seconds, rows."""
    import uuid

    app = _app()
    with app.app_context():
        from backend.common.db import utcnow
        from backend.extensions import db
        from backend.notifications.campaigns import schedule as sched
        from backend.notifications.campaigns.audience import Arm, distinct_zones, materialize_ledger

        session = db.session
        session.execute(db.text("SELECT 1"))
        started = time.perf_counter()
        now = utcnow()
        schedule = {"type": "local", "local_time": "09:00", "fallback_zone": "UTC"}
        dues = sched.due_by_zone(schedule, distinct_zones(session, AUDIENCE, now=now), now=now)
        rows = materialize_ledger(session, campaign_id=uuid.UUID(campaign_id), audience=AUDIENCE,
                                  category="promotional", arms=[Arm("A", 1), Arm("B", 1)], holdout_percent=10,
                                  dues=dues, now=now)
        seconds = time.perf_counter() - started
        session.rollback()
        db.session.remove()
    print(json.dumps({"seconds": seconds, "rows": rows}))


def _run_worker(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.b9_audience", *(args or ("--worker",))], cwd=ROOT,
                         check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    # B9_REUSE=1 measures an existing scratch database again (B9_KEEP=1 keeps it afterwards).
    build_s = 0.0 if os.environ.get("B9_REUSE") else build_database()
    indexes = service_plan()
    campaign_id = "00000000-0000-0000-0000-0000000000b9"
    _psql(_db_url(), "INSERT INTO campaigns (id, name, audience, message, schedule, status) VALUES "
          "(%s, 'b9', '{}', '{}', '{}', 'running') ON CONFLICT DO NOTHING", (campaign_id,))
    groundwork, baseline, naive, ledger, raw = [], [], [], [], []
    for _ in range(REPS):
        groundwork.append(_run_worker())
        baseline.append(baseline_ms())
        naive.append(baseline_ms(NAIVE_SQL))
        raw.append(raw_cursor_ms())
        ledger.append(_run_worker("--materialize", campaign_id))
    gw_s = statistics.median(r["seconds"] for r in groundwork)
    rss = max(r["rss_mib"] for r in groundwork)
    base_ms = statistics.median(ms for ms, _ in baseline)
    naive_ms = statistics.median(ms for ms, _ in naive)
    rows = groundwork[0]["rows"]
    assert rows == baseline[0][1], (rows, baseline[0][1])
    ratio = gw_s / (base_ms / 1000)
    holds = gw_s <= TARGET_S and bool(indexes) and rss <= TARGET_RSS_MIB
    table = "\n".join([
        table_header(),
        result_row(f"B9 audience query, {USERS:,} users (zone, platform, last active) → {rows:,} devices",
                   f"{gw_s * 1000:,.0f} ms streamed to Python, worker peak RSS {rss:.0f} MiB",
                   f"{base_ms:,.0f} ms (EXPLAIN ANALYZE, hand-written SQL)", ratio,
                   f"≤ {TARGET_S:.0f} s, index-backed, RSS ≤ {TARGET_RSS_MIB} MiB", holds),
        result_row("context: same rows through a bare psycopg2 named cursor (tuples, string ids)",
                   f"{gw_s * 1000:,.0f} ms (service)", f"{statistics.median(raw):,.0f} ms (bare cursor)",
                   gw_s / (statistics.median(raw) / 1000), "context only", None),
        result_row(f"context: ledger INSERT … SELECT of the same audience ({ledger[0]['rows']:,} rows, rolled back)",
                   f"{statistics.median(r['seconds'] for r in ledger) * 1000:,.0f} ms",
                   f"{base_ms:,.0f} ms (audience query alone)",
                   statistics.median(r["seconds"] for r in ledger) / (base_ms / 1000), "context only", None),
        result_row("context: naive JOIN users form of the same query", f"{naive_ms:,.0f} ms (EXPLAIN ANALYZE)",
                   f"{base_ms:,.0f} ms (anti-join form)", naive_ms / base_ms, "context only", None),
    ])
    detail = "\n".join([
        "## Absolute figures", "",
        f"- data generated with generate_series in {build_s:,.1f} s ({USERS:,} users, {USERS:,} devices, 40 zones)",
        f"- audience: {json.dumps(AUDIENCE)}",
        "- groundwork per rep: " + ", ".join(
            f"{r['seconds'] * 1000:,.0f} ms / {r['rss_mib']:.0f} MiB" for r in groundwork),
        "- baseline per rep: " + ", ".join(f"{ms:,.0f} ms" for ms, _ in baseline),
        "- naive JOIN form per rep: " + ", ".join(f"{ms:,.0f} ms" for ms, _ in naive),
        "- EXPLAIN ANALYZE runs with max_parallel_workers_per_gather = 0, as PostgreSQL runs a cursor's query",
        f"- index nodes in the service's plan: {', '.join(indexes) or 'NONE'}",
        "- ratio = Groundwork wall time (query + transfer + Python rows) ÷ PostgreSQL execution time alone; "
        "lower is better, and it cannot go below 1",
    ])
    print(table)
    print(detail)
    write_results(ROOT / "bench" / "RESULTS-b9.md", "B9: campaign audience query over 1M users", f"{table}\n\n{detail}")
    if not os.environ.get("B9_KEEP"):
        _psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {DB_NAME}")
    return 0 if holds else 1


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    elif "--materialize" in sys.argv:
        materialize_worker(sys.argv[-1])
    else:
        sys.exit(main())
