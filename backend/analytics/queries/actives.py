"""Daily, weekly and monthly active persons as series, read from the user-day roll-up."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics.queries.common import Table, check_range, next_period, period_end, period_start

_SQL = {
    "day": "SELECT day AS period, count(*) AS actives FROM analytics_user_days "
           "WHERE day BETWEEN :start AND :end {platform} GROUP BY day ORDER BY day",
    "week": "SELECT date_trunc('week', day)::date AS period, count(DISTINCT person_id) AS actives "
            "FROM analytics_user_days WHERE day BETWEEN :start AND :end {platform} GROUP BY 1 ORDER BY 1",
    "month": "SELECT date_trunc('month', day)::date AS period, count(DISTINCT person_id) AS actives "
             "FROM analytics_user_days WHERE day BETWEEN :start AND :end {platform} GROUP BY 1 ORDER BY 1",
}


@dataclass(frozen=True)
class ActivesResult:
    interval: str
    series: list[tuple[date, int]]

    def as_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "series": [{"period": p, "actives": n} for p, n in self.series]}

    def table(self) -> Table:
        return Table(["period", "actives"], [[p, n] for p, n in self.series])


def actives(session: Session, *, interval: str, start: date, end: date, platform: str | None = None) -> ActivesResult:
    """Distinct active persons per day, calendar week (Monday) or month from ``start`` to ``end``.

    The range is widened to whole periods, so the first and last week or month are complete.
    Periods without activity are present with 0.
    """
    check_range(start, end)
    first = period_start(start, interval)
    last = period_end(end, interval)
    sql = _SQL[interval].format(platform="AND platform = :platform" if platform else "")
    found = dict(session.execute(text(sql), {"start": first, "end": last, "platform": platform}).all())
    series, current = [], first
    while current <= last:
        series.append((current, found.get(current, 0)))
        current = next_period(current, interval)
    return ActivesResult(interval, series)

