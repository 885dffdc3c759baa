"""B11: analyst queries on generated events: DAU/WAU/MAU over 90 days, an 8-week retention
table, a 3-step funnel over 30 days.

Scale (environment): ``B11_EVENTS`` events (default 50,000,000) from ``B11_PERSONS``
persons (default 1,000,000) over ``B11_DAYS`` days (default 90) ending yesterday. The
design point is hundreds of millions of events; the default is what fits this machine
(about 12 GB with indexes). The data is generated inside PostgreSQL (``generate_series``,
no Python loop) straight into the month partitions of a scratch database built by the
migrations; the event indexes are dropped for the load and rebuilt after; then the
roll-ups are built by the same code as ``flask analytics rebuild-rollups``.

Each query is run through ``backend.analytics.queries`` (the functions the API and the
console call): once right after the load in a fresh connection ("cold": PostgreSQL's
and the OS's caches are not dropped, the machine is shared), then REPS times warm
(median reported). The baseline is EXPLAIN ANALYZE of the same question asked of the raw
events table with partition pruning off (no roll-ups, no pruning). The plans of the
Groundwork queries are checked for partition pruning (funnel) and roll-up use (actives,
retention) and summarised in bench/RESULTS-b11.md.

Run alone: ``flock /tmp/groundwork-heavy.lock .venv/bin/python -m bench.b11_analytics_queries``
(a dry run: ``B11_EVENTS=1000000 B11_PERSONS=50000``; ``B11_KEEP=1`` reuses the data).
"""
from __future__ import annotations

import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import result_row, run_sql, table_header, write_results  # noqa: E402

EVENTS = int(os.environ.get("B11_EVENTS", "50000000"))
PERSONS = int(os.environ.get("B11_PERSONS", "1000000"))
DAYS = int(os.environ.get("B11_DAYS", "90"))
KEEP = os.environ.get("B11_KEEP") == "1"
REPS = 3
DB_NAME = "gw_bench_b11"
ADMIN_URL = os.environ.get("B11_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
TARGET_S = 1.0
# name, share of events: the funnel is view_item -> add_to_cart -> purchase
EVENT_MIX = [("screen_view", 45), ("app_open", 20), ("button_tap", 14), ("search", 8), ("view_item", 6),
             ("add_to_cart", 3), ("purchase", 2), ("signup", 2)]
FUNNEL = ("view_item", "add_to_cart", "purchase")


def _db_url() -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"


def _app() -> Any:
    from backend.app import create_app

    return create_app({"DATABASE_URL": _db_url(), "REDIS_URL": REDIS_URL, "ENV": "development", "LOG_JSON": False,
                       "LOG_LEVEL": "WARNING", "DB_STATEMENT_TIMEOUT_MS": 3_600_000})


def _window() -> tuple[date, date]:
    last = datetime.now(UTC).date() - timedelta(days=1)
    return last - timedelta(days=DAYS - 1), last


def _cohorts() -> tuple[date, date]:
    """The 8 weekly cohorts measured: they start 16 weeks before the window ends (or at its start)."""
    first, last = _window()
    start = max(first, last - timedelta(weeks=16))
    return start, start + timedelta(weeks=8) - timedelta(days=1)


def build_database() -> dict[str, float]:
    """Scratch database at the migrations' head, filled with the generated history; seconds per phase."""
    timings: dict[str, float] = {}
    run_sql(ADMIN_URL, f"DROP DATABASE IF EXISTS {DB_NAME}")
    run_sql(ADMIN_URL, f"CREATE DATABASE {DB_NAME}")
    first, last = _window()
    app = _app()
    with app.app_context():
        from flask_migrate import upgrade

        from backend.analytics.partitions import ensure_partitions
        from backend.extensions import db

        upgrade(directory=str(ROOT / "migrations"))
        ensure_partitions(db.session, start=datetime.combine(first, datetime.min.time(), tzinfo=UTC),
                          end=datetime.combine(last, datetime.min.time(), tzinfo=UTC))
        db.session.commit()
        db.engine.dispose()
    url = _db_url()
    indexes = run_sql(url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'analytics_events'",
                      fetch=True)
    for name, _ in indexes:
        run_sql(url, f"DROP INDEX {name}")
    started = time.perf_counter()
    # Persons: 30% existed before the window (first seen on day 0), the rest arrive evenly.
    run_sql(url, f"""
        CREATE UNLOGGED TABLE b11_persons AS
        SELECT md5('p' || g)::uuid AS person_id,
               CASE WHEN g % 10 < 3 THEN 0 ELSE (g::bigint * 7919) % {DAYS} END AS first_day,
               (ARRAY['ios','android','ios','android','web'])[1 + g % 5] AS platform,
               '3.' || (g % 7) || '.0' AS app_version,
               0.15 + (g % 13) / 40.0 AS stickiness
        FROM generate_series(1, {PERSONS}) g""")
    # Active days: likelier soon after the first, decaying towards each person's stickiness.
    run_sql(url, f"""
        CREATE UNLOGGED TABLE b11_days AS
        SELECT p.person_id, p.platform, p.app_version, d AS day_index
        FROM b11_persons p, generate_series(p.first_day, {DAYS - 1}) d
        WHERE d = p.first_day OR random() < p.stickiness + 0.5 * exp(-(d - p.first_day) / 7.0)""")
    (active_days,), = run_sql(url, "SELECT count(*) FROM b11_days", fetch=True)
    per_day = max(1.0, EVENTS / active_days)
    names = "ARRAY[" + ",".join(f"'{n}'" for n, share in EVENT_MIX for _ in range(share)) + "]"
    run_sql(url, f"""
        INSERT INTO analytics_events (occurred_at, event_id, name, person_id, user_id, install_id, session_id,
                                      platform, app_version, properties, received_at)
        SELECT t, gen_random_uuid(), ({names})[1 + floor(random() * 100)::int], d.person_id, d.person_id,
               'inst-' || d.person_id, NULL, d.platform, d.app_version,
               CASE WHEN random() < 0.2 THEN '{{"plan": "pro"}}'::jsonb ELSE '{{}}'::jsonb END, t
        FROM b11_days d,
             LATERAL generate_series(1, greatest(1, round({per_day} * 2 * random())::int)) k,
             LATERAL (SELECT TIMESTAMPTZ '{first.isoformat()}T00:00:00Z' + d.day_index * interval '1 day'
                             + random() * interval '86399 seconds' AS t) ts""")
    timings["events"] = time.perf_counter() - started
    started = time.perf_counter()
    for _, definition in indexes:  # ON ONLY would build the parent's index without the partitions'
        run_sql(url, definition.replace(" ON ONLY ", " ON "))
    timings["indexes"] = time.perf_counter() - started
    run_sql(url, "DROP TABLE b11_days")
    run_sql(url, "DROP TABLE b11_persons")
    started = time.perf_counter()
    with app.app_context():
        from backend.analytics.rollups import rebuild
        from backend.extensions import db

        rebuild(db.session, since=first)
        db.session.commit()
        db.engine.dispose()
    timings["rollups"] = time.perf_counter() - started
    run_sql(url, "VACUUM ANALYZE")
    return timings


def _questions() -> dict[str, tuple[Callable[[Any], Any], str]]:
    """Each measured question: the Groundwork call, and the raw-events SQL for the baseline."""
    from backend.analytics import queries

    first, last = _window()
    week_from, week_to = _cohorts()
    funnel_from = last - timedelta(days=29)
    raw_range = f"occurred_at >= '{first}T00:00:00Z' AND occurred_at < '{last + timedelta(days=1)}T00:00:00Z'"
    steps = [queries.FunnelStep(name) for name in FUNNEL]
    return {
        f"DAU, {DAYS} days": (lambda s: queries.actives(s, interval="day", start=first, end=last),
                         "SELECT (occurred_at AT TIME ZONE 'UTC')::date, count(DISTINCT person_id) "
                         f"FROM analytics_events WHERE {raw_range} GROUP BY 1"),
        f"WAU, {DAYS} days": (lambda s: queries.actives(s, interval="week", start=first, end=last),
                         "SELECT date_trunc('week', occurred_at AT TIME ZONE 'UTC'), count(DISTINCT person_id) "
                         f"FROM analytics_events WHERE {raw_range} GROUP BY 1"),
        f"MAU, {DAYS} days": (lambda s: queries.actives(s, interval="month", start=first, end=last),
                         "SELECT date_trunc('month', occurred_at AT TIME ZONE 'UTC'), count(DISTINCT person_id) "
                         f"FROM analytics_events WHERE {raw_range} GROUP BY 1"),
        "retention, 8 weekly cohorts x 8 weeks": (
            lambda s: queries.retention(s, interval="week", start=week_from, end=week_to, offsets=8),
            "WITH firsts AS (SELECT person_id, date_trunc('week', min(occurred_at)) AS cohort FROM analytics_events "
            "GROUP BY 1), act AS (SELECT DISTINCT person_id, date_trunc('week', occurred_at) AS w "
            "FROM analytics_events "
            f"WHERE occurred_at >= '{week_from}T00:00:00Z') "
            "SELECT f.cohort, (extract(epoch FROM a.w - f.cohort) / 604800)::int AS k, count(*) FROM firsts f "
            f"JOIN act a USING (person_id) WHERE f.cohort >= '{week_from}' AND f.cohort < TIMESTAMPTZ '{week_from}' "
            "+ interval '8 weeks' AND a.w >= f.cohort AND a.w <= f.cohort + interval '8 weeks' GROUP BY 1, 2"),
        "funnel, 3 steps, 30 days": (
            lambda s: queries.funnel(s, steps=steps, start=funnel_from, end=last, window=timedelta(days=1)),
            "FUNNEL"),
    }


def _timed(fn: Callable[[Any], Any], session: Any) -> float:
    started = time.perf_counter()
    fn(session)
    return time.perf_counter() - started


def _refresh_job_s() -> float:
    """Run the periodic job that recounts the open periods (as the scheduler does every 10 min); its seconds."""
    from jobs.analytics import refresh_recent_active_counts

    started = time.perf_counter()
    refresh_recent_active_counts()
    return time.perf_counter() - started


def _live_fallback_s(name: str) -> float:
    """The question asked as if the cache of the open period had gone stale (the scheduler down)."""
    from backend.analytics import queries
    from backend.analytics.queries.actives import CACHE_FRESH_S
    from backend.analytics.reader import analytics_session

    later = datetime.now(UTC) + timedelta(seconds=CACHE_FRESH_S + 60)
    first, last = _window()
    interval = {"DAU": "day", "WAU": "week", "MAU": "month"}.get(name[:3])
    if interval is None:
        week_from, week_to = _cohorts()
        stale = lambda s: queries.retention(s, interval="week", start=week_from, end=week_to, offsets=8,  # noqa: E731
                                            now=later)
    else:
        stale = lambda s: queries.actives(s, interval=interval, start=first, end=last, now=later)  # noqa: E731
    with analytics_session() as session:
        return _timed(stale, session)


def _baseline_s(sql: str, params: dict[str, Any] | None = None) -> float:
    """EXPLAIN ANALYZE of ``sql`` on the raw events, partition pruning off: execution seconds."""
    app = _app()
    with app.app_context():
        from sqlalchemy import text

        from backend.extensions import db

        db.session.execute(text("SET enable_partition_pruning = off"))
        plan = db.session.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql), params or {}).scalar()
        db.session.rollback()
        db.engine.dispose()
    return plan[0]["Execution Time"] / 1000


def _plan_summary(sql: str, params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Relations the plan of ``sql`` reads: event partitions, and other tables."""
    app = _app()
    with app.app_context():
        from sqlalchemy import text

        from backend.extensions import db

        lines = db.session.execute(text("EXPLAIN " + sql), params).scalars().all()
        db.session.rollback()
        db.engine.dispose()
    found = set(re.findall(r" on (\w+)", "\n".join(lines)))
    partitions = sorted(r for r in found if r.startswith("events_"))
    return partitions, sorted(found - set(partitions))


def main() -> int:
    load_at_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    if not KEEP:
        timings = build_database()
        print(f"generated in {timings}", flush=True)
    (events,), = run_sql(_db_url(), "SELECT count(*) FROM analytics_events", fetch=True)
    (persons,), = run_sql(_db_url(), "SELECT count(*) FROM analytics_persons", fetch=True)
    (user_days,), = run_sql(_db_url(), "SELECT count(*) FROM analytics_user_days", fetch=True)
    (months,), = run_sql(_db_url(), "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
                                  "WHERE p.relname = 'analytics_events'", fetch=True)
    rows, notes = [], []
    from backend.analytics import queries
    from backend.analytics.queries.funnels import funnel_statement
    from backend.analytics.retention_counts import period_statement

    app = _app()
    for name, (call, raw_sql) in _questions().items():
        cached = raw_sql != "FUNNEL"
        with app.app_context():
            from backend.analytics.reader import analytics_session
            from backend.extensions import db

            if cached:  # the scheduler runs this every 10 minutes; the baselines above took longer
                job_s = _refresh_job_s()
                fallback_s = _live_fallback_s(name)
            db.engine.dispose()
            with analytics_session() as session:  # as the API reads (work_mem for analyst queries)
                cold = _timed(call, session)
                warm = statistics.median(_timed(call, session) for _ in range(REPS))
            db.session.rollback()
        if raw_sql == "FUNNEL":
            first, last = _window()
            sql, params = funnel_statement(
                steps=[queries.FunnelStep(n) for n in FUNNEL], start=last - timedelta(days=29), end=last,
                window=timedelta(days=1))
            baseline = _baseline_s(sql, params)
            partitions, others = _plan_summary(sql, params)
            (total,), = run_sql(_db_url(), "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
                                         "WHERE p.relname = 'analytics_events'", fetch=True)
            notes.append(f"- {name}: the plan reads partitions {', '.join(partitions)} of {total} "
                         f"(pruned to the 30 days + window).")
        else:
            baseline = _baseline_s(raw_sql)
            if name.startswith("retention"):
                week_from, _ = _cohorts()
                sql, params = period_statement(interval="week", period=week_from + timedelta(weeks=8))
                partitions, others = _plan_summary(sql, params)
                notes.append(f"- {name}: cells read from analytics_retention_counts (cached per active period by the "
                             f"periodic job); a period's cells are counted from {', '.join(others)}; event "
                             f"partitions read: {', '.join(partitions) or 'none'}.")
            else:
                notes.append(f"- {name}: read from analytics_active_counts (cached by the periodic job, built by "
                             "rebuild-rollups); a period missing there is counted on analytics_user_days.")
        if cached:
            notes.append(f"  - the periodic job that keeps the open periods' counts (refresh-recent-active-counts, "
                         f"every 10 min) was run just before and took {job_s * 1000:.0f} ms; with the scheduler down "
                         f"an open period is counted live on the roll-up: {fallback_s * 1000:.0f} ms.")
        holds = warm <= TARGET_S
        rows.append(result_row(f"B11 {name}", f"{warm * 1000:.0f} ms warm ({cold * 1000:.0f} ms cold)",
                               f"{baseline * 1000:.0f} ms raw events, no pruning", baseline / warm if warm else None,
                               "≤ 1 s warm", holds))
        print(rows[-1], flush=True)
    body = "\n".join([
        f"Data: {events:,} events in {months} month partitions, {persons:,} persons, {user_days:,} user-days "
        f"over {DAYS} days (B11_EVENTS={EVENTS}, B11_PERSONS={PERSONS}). Ratio = baseline time / Groundwork "
        "warm time (higher is better). Cold = first run in a fresh connection after the load (caches not dropped). "
        f"Load average at start {load_at_start} (1/5/15 min).",
        "", table_header(), *rows, "", "Plans:", *notes])
    write_results(Path(__file__).resolve().parent / "RESULTS-b11.md", "B11: analytics queries", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
