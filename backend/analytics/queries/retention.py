"""Retention cohorts: persons grouped by the day or week they were first seen, read from roll-ups.

N-day (classic) retention counts a cohort member at offset k when they were active in
the k-th period after their first; unbounded ("on or after") retention counts them when
they were active in period k or any later one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics.queries.common import Table, check_range, day_start, period_end, period_start
from backend.common.errors import ValidationFailed

MODES = ("n_day", "unbounded")
MAX_OFFSETS = 90

_OFFSETS = """
WITH cohort AS (
    SELECT person_id, date_trunc(:interval, first_seen_at AT TIME ZONE 'UTC')::date AS cohort
    FROM analytics_persons WHERE first_seen_at >= :first_at AND first_seen_at < :after_at
), offsets AS (
    SELECT c.cohort, c.person_id, {offset} AS k
    FROM cohort c JOIN analytics_user_days d ON d.person_id = c.person_id
    WHERE d.day >= :first AND d.day <= :horizon
)
"""
_N_DAY = _OFFSETS + """
SELECT cohort, k, count(DISTINCT person_id) FROM offsets WHERE k BETWEEN 0 AND :offsets GROUP BY 1, 2
"""
_UNBOUNDED = _OFFSETS + """, last_seen AS (
    SELECT cohort, person_id, max(k) AS last_k FROM offsets WHERE k BETWEEN 0 AND :offsets GROUP BY 1, 2
)
SELECT cohort, s.k, count(*) FROM last_seen JOIN generate_series(0, :offsets) AS s(k) ON last_k >= s.k
GROUP BY 1, 2
"""


@dataclass(frozen=True)
class RetentionResult:
    interval: str
    mode: str
    offsets: int
    cohorts: list[tuple[date, int, list[int]]]  # (cohort start, size, retained persons at offset 0..offsets)

    def as_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "mode": self.mode, "offsets": self.offsets, "cohorts": [
            {"cohort": c, "size": size, "retained": retained,
             "rates": [round(n / size, 4) if size else 0.0 for n in retained]}
            for c, size, retained in self.cohorts]}

    def table(self) -> Table:
        header = ["cohort", "size", *[f"{self.interval}_{k}" for k in range(self.offsets + 1)]]
        return Table(header, [[c, size, *retained] for c, size, retained in self.cohorts])


def retention(session: Session, *, interval: str, start: date, end: date, offsets: int,
              mode: str = "n_day") -> RetentionResult:
    """Cohorts first seen from ``start`` to ``end`` (by day or week), followed for ``offsets`` periods."""
    if interval not in ("day", "week"):
        raise ValidationFailed("Cohorts are by day or week.", details={"fields": {"interval": ["day or week"]}})
    if mode not in MODES:
        raise ValidationFailed("mode is n_day or unbounded.", details={"fields": {"mode": ["n_day or unbounded"]}})
    if not 1 <= offsets <= MAX_OFFSETS:
        raise ValidationFailed(f"offsets is 1 to {MAX_OFFSETS}.", details={"fields": {"offsets": ["1 to 90"]}})
    check_range(start, end)
    first, last = period_start(start, interval), period_end(end, interval)
    step = 1 if interval == "day" else 7
    horizon = last + timedelta(days=step * offsets)
    offset = "d.day - c.cohort" if interval == "day" else "(date_trunc('week', d.day)::date - c.cohort) / 7"
    sql = (_N_DAY if mode == "n_day" else _UNBOUNDED).format(offset=offset)
    rows = session.execute(text(sql), {
        "interval": interval, "first_at": day_start(first), "after_at": day_start(last + timedelta(days=1)),
        "first": first, "horizon": horizon, "offsets": offsets}).all()
    sizes = dict(session.execute(text(
        "SELECT date_trunc(:interval, first_seen_at AT TIME ZONE 'UTC')::date, count(*) FROM analytics_persons "
        "WHERE first_seen_at >= :first_at AND first_seen_at < :after_at GROUP BY 1"),
        {"interval": interval, "first_at": day_start(first), "after_at": day_start(last + timedelta(days=1))}).all())
    retained: dict[date, list[int]] = {c: [0] * (offsets + 1) for c in sizes}
    for cohort, k, n in rows:
        retained.setdefault(cohort, [0] * (offsets + 1))[k] = n
    return RetentionResult(interval, mode, offsets,
                           [(c, sizes.get(c, 0), retained[c]) for c in sorted(retained)])

