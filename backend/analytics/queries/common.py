"""Pieces every analyst query shares: date ranges, periods, results as tables."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from backend.common.errors import ValidationFailed

INTERVALS = ("day", "week", "month")
MAX_RANGE_DAYS = 400


def check_range(start: date, end: date, *, field: str = "to") -> None:
    """``start``..``end`` (both inclusive) is a forward range of at most MAX_RANGE_DAYS."""
    if end < start:
        raise ValidationFailed("The range ends before it starts.", code="invalid_range",
                               details={"fields": {field: ["must not be before from"]}})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed(f"A range covers at most {MAX_RANGE_DAYS} days.", code="range_too_long",
                               details={"fields": {field: [f"at most {MAX_RANGE_DAYS} days after from"]}})


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def period_start(day: date, interval: str) -> date:
    """The first day of the day/week (Monday)/month holding ``day``."""
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(current: date, interval: str) -> date:
    """The first day of the period after the one starting on ``current``."""
    if interval == "day":
        return current + timedelta(days=1)
    if interval == "week":
        return current + timedelta(days=7)
    return date(current.year + (current.month == 12), current.month % 12 + 1, 1)


def period_end(day: date, interval: str) -> date:
    """The last day of the period holding ``day``."""
    return next_period(period_start(day, interval), interval) - timedelta(days=1)


@dataclass(frozen=True)
class Table:
    """A query result as a header and rows (for CSV and for charts)."""

    header: list[str]
    rows: list[list[Any]]

    def as_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        for row in self.rows:
            writer.writerow(["" if v is None else v.isoformat() if isinstance(v, date) else v for v in row])
        return buffer.getvalue()
