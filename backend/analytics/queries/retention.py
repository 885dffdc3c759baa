"""Retention cohorts: persons grouped by the day or week they were first seen, read from roll-ups.

N-day (classic) retention counts a cohort member at offset k when they were active in
the k-th period after their first; unbounded ("on or after") retention counts them when
they were active in period k or any later one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics import retention_counts
from backend.analytics.queries.common import Table, check_range, day_start, next_period, period_end, period_start
from backend.common.errors import ValidationFailed

MODES = ("n_day", "unbounded")
MAX_OFFSETS = 90

CACHE_FRESH_S = 900  # cached cells of a period still running are used while this recent


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


def _check(*, interval: str, start: date, end: date, offsets: int, mode: str) -> None:
    if interval not in ("day", "week"):
        raise ValidationFailed("Cohorts are by day or week.", details={"fields": {"interval": ["day or week"]}})
    if mode not in MODES:
        raise ValidationFailed("mode is n_day or unbounded.", details={"fields": {"mode": ["n_day or unbounded"]}})
    if not 1 <= offsets <= MAX_OFFSETS:
        raise ValidationFailed(f"offsets is 1 to {MAX_OFFSETS}.", details={"fields": {"offsets": ["1 to 90"]}})
    check_range(start, end)


def retention(session: Session, *, interval: str, start: date, end: date, offsets: int,
              mode: str = "n_day", now: datetime | None = None) -> RetentionResult:
    """Cohorts first seen from ``start`` to ``end`` (by day or week), followed for ``offsets`` periods.

    n_day: cell (cohort, k) counts the cohort's persons active in period k after their
    first, assembled from per-period cells (cached by the periodic jobs, else counted).
    unbounded: counts those whose last activity so far is in period k or later, read from
    the persons' last seen times.
    """
    _check(interval=interval, start=start, end=end, offsets=offsets, mode=mode)
    now = now or datetime.now(UTC)
    step = retention_counts.STEP[interval]
    first, last = period_start(start, interval), period_end(end, interval)
    bounds = {"first_at": day_start(first), "after_at": day_start(last + timedelta(days=1))}
    cohort_sql = retention_counts.COHORT[interval]
    sizes = dict(session.execute(text(
        f"SELECT {cohort_sql}, count(*) FROM analytics_persons "
        "WHERE first_seen_at >= :first_at AND first_seen_at < :after_at GROUP BY 1"), bounds).all())
    retained: dict[date, list[int]] = {c: [0] * (offsets + 1) for c in sizes}
    if mode == "unbounded":
        rows = session.execute(text(
            f"SELECT {cohort_sql} AS cohort, ((last_seen_at AT TIME ZONE 'UTC')::date - {cohort_sql}) / :step, "
            "count(*) FROM analytics_persons WHERE first_seen_at >= :first_at AND first_seen_at < :after_at "
            "GROUP BY 1, 2"), {**bounds, "step": step}).all()
        for cohort, last_k, n in rows:
            for k in range(min(last_k, offsets) + 1):
                retained[cohort][k] += n
    else:
        horizon = min(period_start(last, interval) + timedelta(days=step * offsets), period_start(now.date(), interval))
        cells = retention_counts.cached(session, interval=interval, first=first, last=horizon, now=now,
                                        fresh_s=CACHE_FRESH_S)
        period = first
        while period <= horizon:
            found = cells[period] if period in cells else retention_counts.count_live(
                session, interval=interval, period=period)
            for cohort, n in found.items():
                k = (period - cohort).days // step
                if cohort in retained and 0 <= k <= offsets:
                    retained[cohort][k] = n
            period = next_period(period, interval)
    return RetentionResult(interval, mode, offsets,
                           [(c, sizes.get(c, 0), retained[c]) for c in sorted(retained)])
