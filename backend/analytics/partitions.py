"""Monthly partitions of analytics_events: created ahead, dropped after the retention period.

Each partition covers one UTC calendar month, ``[first day, first day of next month)``,
and lives in the ``analytics_partitions`` schema as ``events_YYYY_MM``. There is no
default partition: every accepted event falls in a month that ``ensure_partitions``
creates (the ingest path creates a missing one and retries), so old months can be
dropped whole, and a query over a month scans that month's partition only.
"""
from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics.models import PARTITION_SCHEMA

log = logging.getLogger(__name__)
# Months seen to have a partition, per database, so the write path checks only new months.
_KNOWN_MONTHS: set[tuple[str, date]] = set()
_NAME = re.compile(r"^events_(\d{4})_(\d{2})$")


def month_start(moment: date | datetime) -> date:
    """The first day of the month holding ``moment``."""
    return date(moment.year, moment.month, 1)


def next_month(first: date) -> date:
    """The first day of the month after ``first``."""
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def partition_name(first: date) -> str:
    return f"events_{first.year:04d}_{first.month:02d}"


def existing_partitions(session: Session) -> list[date]:
    """The months that have a partition, oldest first."""
    names = session.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'analytics_events'")).scalars()
    months = [date(int(m.group(1)), int(m.group(2)), 1) for m in map(_NAME.match, names) if m]
    return sorted(months)


def create_partition(session: Session, first: date) -> None:
    """Create the partition of the month starting ``first`` (nothing if it exists)."""
    session.execute(text(
        f'CREATE TABLE IF NOT EXISTS {PARTITION_SCHEMA}."{partition_name(first)}" '
        f"PARTITION OF analytics_events FOR VALUES FROM ('{first.isoformat()}T00:00:00+00:00') "
        f"TO ('{next_month(first).isoformat()}T00:00:00+00:00')"))


def ensure_partitions(session: Session, *, start: datetime, end: datetime) -> list[date]:
    """Create every missing month partition from ``start``'s month to ``end``'s (no commit)."""
    have = set(existing_partitions(session))
    created, first = [], month_start(start)
    while first <= month_start(end):
        if first not in have:
            create_partition(session, first)
            created.append(first)
        first = next_month(first)
    return created


def database_key(session: Session) -> str:
    """Which database ``session`` writes to, as the month cache keys it (str(url) is slow on every batch)."""
    url = session.get_bind().engine.url
    return f"{url.host}:{url.port}/{url.database}"


def ensure_months(session: Session, months: set[date]) -> None:
    """Make sure each month has a partition before rows go in (no commit).

    Months this process saw existing are not checked again; one it creates is remembered
    only once another check sees it (after the creating transaction committed).
    """
    database = database_key(session)
    if all((database, m) in _KNOWN_MONTHS for m in months):
        return
    existing = set(existing_partitions(session))
    _KNOWN_MONTHS.update((database, m) for m in existing)
    for first in sorted(months - existing):
        create_partition(session, first)


def forget_months() -> None:
    """Drop the cache of known months (after a write found one missing)."""
    _KNOWN_MONTHS.clear()


def drop_expired_partitions(session: Session, *, retention_days: int, now: datetime | None = None) -> list[date]:
    """Drop every partition whose whole month ended before the retention horizon (no commit)."""
    horizon = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    dropped = []
    for first in existing_partitions(session):
        ends = datetime.combine(next_month(first), datetime.min.time(), tzinfo=UTC)
        if ends <= horizon:
            session.execute(text(f'DROP TABLE {PARTITION_SCHEMA}."{partition_name(first)}"'))
            dropped.append(first)
    if dropped:
        forget_months()
    return dropped


def prune_event_ids(session: Session, *, keep_days: int, now: datetime | None = None, batch: int = 50_000) -> int:
    """Forget client event IDs older than ``keep_days`` (no commit); returns how many went.

    Events that old are refused as too old, so a retry of one can no longer be counted twice.
    """
    horizon = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    result = session.execute(text(
        "DELETE FROM analytics_event_ids WHERE event_id IN ("
        "SELECT event_id FROM analytics_event_ids WHERE received_at < :horizon LIMIT :batch)"),
        {"horizon": horizon, "batch": batch})
    return result.rowcount or 0
