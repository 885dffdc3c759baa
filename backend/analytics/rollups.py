"""Rebuilding the roll-ups from the events (backfill after an import, a bug, or a restore).

The write path keeps ``analytics_user_days`` current one batch at a time; this rebuilds
it, the persons' first and last seen times, and the cached active counts, from
``analytics_events`` for the days from ``since`` on. It reads the partitions of those
days only, and runs in the caller's transaction (the CLI commits).
"""
from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics import active_counts, retention_counts
from backend.analytics.queries.common import day_start


def rebuild(session: Session, *, since: date, now: datetime | None = None) -> dict[str, int]:
    """Recompute user-days and persons from events since ``since``, then every active count since then."""
    now = now or datetime.now(UTC)
    start = day_start(since)
    session.execute(text("DELETE FROM analytics_user_days WHERE day >= :since"), {"since": since})
    days = session.execute(text(
        "INSERT INTO analytics_user_days (day, person_id, events, platform, app_version) "
        "SELECT (occurred_at AT TIME ZONE 'UTC')::date, person_id, count(*), max(platform), max(app_version) "
        "FROM analytics_events WHERE occurred_at >= :start GROUP BY 1, 2"), {"start": start}).rowcount
    persons = session.execute(text(
        "INSERT INTO analytics_persons (person_id, is_user, first_seen_at, last_seen_at) "
        "SELECT person_id, bool_or(user_id IS NOT NULL), min(occurred_at), max(occurred_at) "
        "FROM analytics_events WHERE occurred_at >= :start GROUP BY person_id "
        "ON CONFLICT (person_id) DO UPDATE SET "
        "first_seen_at = least(analytics_persons.first_seen_at, excluded.first_seen_at), "
        "last_seen_at = greatest(analytics_persons.last_seen_at, excluded.last_seen_at)"), {"start": start}).rowcount
    session.execute(text("DELETE FROM analytics_active_counts "
                         "WHERE period >= date_trunc('month', CAST(:since AS date))"), {"since": since})
    counts = active_counts.refresh(session, since=since, now=now, backfill=None)
    session.execute(text("DELETE FROM analytics_retention_counts WHERE period >= CAST(:since AS date) - 7"),
                    {"since": since})
    cells = retention_counts.refresh(session, since=since, now=now, backfill=None)
    return {"user_days": days, "persons": persons, "active_counts": counts, "retention_periods": cells}
