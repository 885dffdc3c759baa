"""Retention cells cached from the roll-ups: persons first seen in a cohort and active in a period.

Counting a whole retention table joins months of ``analytics_user_days`` with the
persons (seconds at a million users), so the table is assembled from per-period cells:
for each active period (day or week), how many of each earlier cohort were active in it.
A period's cells cost one join over that period's user-days only. The periodic jobs
store them (``analytics_retention_counts``) with the same freshness rule as the active
counts: used when computed after the period closed, or within ``fresh_s``; else counted
live.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics.queries.common import day_start, next_period, period_start

MAX_OFFSETS = 90
STEP = {"day": 1, "week": 7}
# Cohort starts in plain date arithmetic (date_trunc on timestamptz per row costs seconds).
_FIRST_DAY = "(first_seen_at AT TIME ZONE 'UTC')::date"
COHORT = {"day": _FIRST_DAY,
          "week": f"{_FIRST_DAY} - (extract(isodow FROM first_seen_at AT TIME ZONE 'UTC'))::int + 1"}


def period_statement(*, interval: str, period: date) -> tuple[str, dict]:
    """The SQL counting the cells of one active period (benchmarks EXPLAIN it)."""
    step = STEP[interval]
    cohort = COHORT[interval]  # fixed SQL, never input
    sql = (f"SELECT {cohort} AS cohort, count(DISTINCT d.person_id) "  # noqa: S608
           "FROM analytics_user_days d JOIN analytics_persons p ON p.person_id = d.person_id "
           "WHERE d.day >= :period AND d.day < :after AND p.first_seen_at >= :oldest AND p.first_seen_at < :after_at "
           "GROUP BY 1")
    return sql, {"period": period, "after": period + timedelta(days=step),
                 "oldest": day_start(period - timedelta(days=step * MAX_OFFSETS)),
                 "after_at": day_start(period + timedelta(days=step))}


def count_live(session: Session, *, interval: str, period: date) -> dict[date, int]:
    """Cohort -> persons of that cohort active in ``period``."""
    sql, params = period_statement(interval=interval, period=period)
    return dict(session.execute(text(sql), params).all())


def cached(session: Session, *, interval: str, first: date, last: date, now: datetime,
           fresh_s: int) -> dict[date, dict[date, int]]:
    """Usable cached cells of the periods from ``first`` to ``last``: period -> cohort -> persons."""
    rows = session.execute(text(
        "SELECT period, cohort, retained, computed_at FROM analytics_retention_counts "
        "WHERE interval = :interval AND period BETWEEN :first AND :last"),
        {"interval": interval, "first": first, "last": last}).all()
    usable: dict[date, dict[date, int]] = {}
    for period, cohort, retained, computed_at in rows:
        closed = computed_at >= day_start(next_period(period, interval))
        if closed or computed_at >= now - timedelta(seconds=fresh_s):
            usable.setdefault(period, {})[cohort] = retained
    return usable


def store(session: Session, *, interval: str, period: date, cells: dict[date, int], now: datetime) -> None:
    """Replace the cells of one period (no commit); a period without activity keeps one zero cell."""
    session.execute(text("DELETE FROM analytics_retention_counts WHERE interval = :i AND period = :p"),
                    {"i": interval, "p": period})
    cells = cells or {period: 0}
    session.execute(text(
        "INSERT INTO analytics_retention_counts (interval, period, cohort, retained, computed_at) "
        "SELECT :i, :p, unnest(CAST(:cohorts AS date[])), unnest(CAST(:retained AS int[])), :now"),
        {"i": interval, "p": period, "cohorts": list(cells), "retained": list(cells.values()), "now": now})


def refresh(session: Session, *, since: date, now: datetime | None = None, backfill: int | None = 60) -> int:
    """Recount the periods from ``since``'s to today's, and up to ``backfill`` older ones never counted (no commit)."""
    now = now or datetime.now(UTC)
    today = now.date()
    oldest = session.execute(text("SELECT min(day) FROM analytics_user_days")).scalar()
    written = 0
    for interval in STEP:
        have = set(session.execute(text(
            "SELECT DISTINCT period FROM analytics_retention_counts WHERE interval = :i"), {"i": interval}).scalars())
        period, filled = period_start(min(oldest or since, since), interval), 0
        while period <= today:
            missing = period < period_start(since, interval) and period not in have
            if missing and backfill is not None and filled >= backfill:
                period = next_period(period, interval)
                continue
            filled += missing
            if period >= period_start(since, interval) or missing:
                store(session, interval=interval, period=period,
                      cells=count_live(session, interval=interval, period=period), now=now)
                written += 1
            period = next_period(period, interval)
    return written
