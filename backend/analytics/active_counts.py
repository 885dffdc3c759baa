"""Active-person counts per day, week and month, cached from the user-day roll-up.

Counting distinct persons over months of ``analytics_user_days`` takes seconds at a
million users, so a periodic job stores each period's count with the time it was
computed. A cached count is used when it was computed after its period ended (final,
but for late events: the job recomputes the periods of the last
``ANALYTICS_MAX_EVENT_AGE_DAYS`` every few hours) or within ``fresh_s`` seconds; any
other period is counted live, so an answer is never missing, only slower.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics.queries.common import INTERVALS, day_start, next_period, period_start

_LIVE = {
    "day": "SELECT day, count(*) FROM analytics_user_days WHERE day BETWEEN :first AND :last GROUP BY 1",
    "week": "SELECT date_trunc('week', day)::date, count(DISTINCT person_id) FROM analytics_user_days "
            "WHERE day BETWEEN :first AND :last GROUP BY 1",
    "month": "SELECT date_trunc('month', day)::date, count(DISTINCT person_id) FROM analytics_user_days "
             "WHERE day BETWEEN :first AND :last GROUP BY 1",
}


def count_live(session: Session, *, interval: str, first: date, last: date) -> dict[date, int]:
    """Distinct active persons of every period starting from ``first`` to ``last`` (whole periods)."""
    end = next_period(period_start(last, interval), interval) - timedelta(days=1)
    return dict(session.execute(text(_LIVE[interval]), {"first": first, "last": end}).all())


def cached(session: Session, *, interval: str, first: date, last: date, now: datetime,
           fresh_s: int) -> dict[date, tuple[int, datetime]]:
    """Usable cached counts of periods starting from ``first`` to ``last``, with when each was computed."""
    rows = session.execute(text(
        "SELECT period, actives, computed_at FROM analytics_active_counts "
        "WHERE interval = :interval AND period BETWEEN :first AND :last"),
        {"interval": interval, "first": first, "last": last}).all()
    usable = {}
    for period, actives, computed_at in rows:
        closed = computed_at >= day_start(next_period(period, interval))
        if closed or computed_at >= now - timedelta(seconds=fresh_s):
            usable[period] = (actives, computed_at)
    return usable


def store(session: Session, *, interval: str, counts: dict[date, int], now: datetime) -> None:
    """Upsert computed counts (no commit)."""
    if not counts:
        return
    session.execute(text(
        "INSERT INTO analytics_active_counts (interval, period, actives, computed_at) "
        "SELECT :interval, unnest(CAST(:periods AS date[])), unnest(CAST(:actives AS int[])), :now "
        "ON CONFLICT (interval, period) DO UPDATE SET actives = excluded.actives, computed_at = excluded.computed_at"),
        {"interval": interval, "periods": list(counts), "actives": list(counts.values()), "now": now})


def refresh(session: Session, *, since: date, now: datetime | None = None, backfill: int | None = 60) -> int:
    """Recompute every period touching ``since``..today, and fill up to ``backfill`` missing older ones (no commit).

    The bound keeps a job on a large history within its timeout (the rest come next run);
    ``None`` fills them all (the rebuild command).
    """
    now = now or datetime.now(UTC)
    today = now.date()
    oldest = session.execute(text("SELECT min(day) FROM analytics_user_days")).scalar()
    written = 0
    for interval in INTERVALS:
        counts: dict[date, int] = {}
        if oldest is not None and oldest < since:
            have = set(session.execute(text(
                "SELECT period FROM analytics_active_counts WHERE interval = :i AND period < :since"),
                {"i": interval, "since": period_start(since, interval)}).scalars())
            period, filled = period_start(oldest, interval), 0
            while period < period_start(since, interval) and (backfill is None or filled < backfill):
                if period not in have:
                    filled += 1
                    counts.update(count_live(session, interval=interval, first=period, last=period))
                    counts.setdefault(period, 0)
                period = next_period(period, interval)
        recent = count_live(session, interval=interval, first=period_start(since, interval), last=today)
        period = period_start(since, interval)
        while period <= today:
            counts[period] = recent.get(period, 0)
            period = next_period(period, interval)
        store(session, interval=interval, counts=counts, now=now)
        written += len(counts)
    return written
