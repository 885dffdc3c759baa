"""Daily, weekly and monthly active persons as series, read from the user-day roll-up."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics import active_counts
from backend.analytics.queries.common import Table, check_range, next_period, period_end, period_start

_PLATFORM_SQL = {
    "day": "SELECT day, count(*) FROM analytics_user_days "
           "WHERE day BETWEEN :start AND :end AND platform = :platform GROUP BY 1",
    "week": "SELECT date_trunc('week', day)::date, count(DISTINCT person_id) FROM analytics_user_days "
            "WHERE day BETWEEN :start AND :end AND platform = :platform GROUP BY 1",
    "month": "SELECT date_trunc('month', day)::date, count(DISTINCT person_id) FROM analytics_user_days "
             "WHERE day BETWEEN :start AND :end AND platform = :platform GROUP BY 1",
}
CACHE_FRESH_S = 900  # a cached count of a period still running is used while this recent


@dataclass(frozen=True)
class ActivesResult:
    interval: str
    series: list[tuple[date, int]]
    as_of: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "as_of": self.as_of,
                "series": [{"period": p, "actives": n} for p, n in self.series]}

    def table(self) -> Table:
        return Table(["period", "actives"], [[p, n] for p, n in self.series])


def actives(session: Session, *, interval: str, start: date, end: date, platform: str | None = None,
            now: datetime | None = None) -> ActivesResult:
    """Distinct active persons per day, calendar week (Monday) or month from ``start`` to ``end``.

    The range is widened to whole periods, so the first and last week or month are complete.
    Periods without activity are present with 0. Counts come from the cache the periodic
    job keeps (``active_counts``) where usable, else from the roll-up; ``as_of`` is the
    oldest computation the answer uses. A platform filter always counts the roll-up.
    """
    check_range(start, end)
    now = now or datetime.now(UTC)
    first = period_start(start, interval)
    last = period_end(end, interval)
    if platform:
        found = dict(session.execute(text(_PLATFORM_SQL[interval]),
                                     {"start": first, "end": last, "platform": platform}).all())
        as_of = now
    else:
        found, as_of = _from_cache_or_live(session, interval=interval, first=first, last=last, now=now)
    series, current = [], first
    while current <= last:
        series.append((current, found.get(current, 0)))
        current = next_period(current, interval)
    return ActivesResult(interval, series, as_of)


def _from_cache_or_live(session: Session, *, interval: str, first: date, last: date,
                        now: datetime) -> tuple[dict[date, int], datetime]:
    usable = active_counts.cached(session, interval=interval, first=first, last=last, now=now, fresh_s=CACHE_FRESH_S)
    found = {period: n for period, (n, _) in usable.items()}
    missing, period = [], first
    while period <= last:
        if period not in usable:
            missing.append(period)
        period = next_period(period, interval)
    if missing:  # one live count over the span of the missing periods
        live = active_counts.count_live(session, interval=interval, first=missing[0], last=missing[-1])
        found.update({p: live.get(p, 0) for p in missing})
    as_of = min([computed for _, computed in usable.values()] + ([now] if missing else []), default=now)
    return found, as_of

