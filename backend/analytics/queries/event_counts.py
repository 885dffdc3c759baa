"""Event counts per period, by event name, optionally broken down by one property."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics.queries.common import INTERVALS, Table, check_range, day_start
from backend.common.errors import ValidationFailed

MAX_NAMES = 20
MAX_VALUES = 50  # the most frequent property values; the rest are summed as "$other"


@dataclass(frozen=True)
class EventCountsResult:
    interval: str
    breakdown: str | None
    rows: list[tuple[date, str, str | None, int]]  # (period, event name, property value, count)

    def as_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "breakdown": self.breakdown, "rows": [
            {"period": p, "name": n, "value": v, "count": c} for p, n, v, c in self.rows]}

    def table(self) -> Table:
        return Table(["period", "name", self.breakdown or "value", "count"], [list(r) for r in self.rows])


def event_counts(session: Session, *, start: date, end: date, interval: str = "day", names: list[str] | None = None,
                 breakdown: str | None = None) -> EventCountsResult:
    """Counts of each event (or of ``names``) per period, split by ``breakdown`` property's top values."""
    if interval not in INTERVALS:
        raise ValidationFailed("interval is day, week or month.",
                               details={"fields": {"interval": ["day, week or month"]}})
    if names is not None and not 1 <= len(names) <= MAX_NAMES:
        raise ValidationFailed(f"Name 1 to {MAX_NAMES} events.", details={"fields": {"names": ["1 to 20 names"]}})
    if breakdown is not None and not 0 < len(breakdown) <= 200:
        raise ValidationFailed("breakdown is a property key.", details={"fields": {"breakdown": ["1-200 characters"]}})
    check_range(start, end)
    value = "properties ->> :key" if breakdown else "NULL::text"
    name_filter = "AND name = ANY(:names)" if names else ""
    sql = f"""
    WITH counted AS (
        SELECT date_trunc(:interval, occurred_at AT TIME ZONE 'UTC')::date AS period, name, {value} AS value,
               count(*) AS n
        FROM analytics_events WHERE occurred_at >= :from AND occurred_at < :until {name_filter}
        GROUP BY 1, 2, 3
    ), top AS (
        SELECT value FROM counted GROUP BY value ORDER BY sum(n) DESC LIMIT {MAX_VALUES}
    )
    SELECT period, name, CASE WHEN value IN (SELECT value FROM top) OR value IS NULL THEN value ELSE '$other' END,
           sum(n)::bigint
    FROM counted GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC
    """
    rows = session.execute(text(sql), {"interval": interval, "from": day_start(start),
                                       "until": day_start(end + timedelta(days=1)), "names": names,
                                       "key": breakdown}).all()
    return EventCountsResult(interval, breakdown, [tuple(r) for r in rows])
