"""What analytics adds to an account's data export, and erases with the account."""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from backend.extensions import db

EXPORTED_EVENTS = 1000  # the newest ones; the count says how many exist


def export_analytics_data(user_id: uuid.UUID) -> dict[str, Any]:
    """The person's properties, installs, event count and newest events."""
    session = db.session
    person = session.execute(text(
        "SELECT properties, first_seen_at, last_seen_at FROM analytics_persons WHERE person_id = :u"),
        {"u": user_id}).one_or_none()
    installs = session.execute(text(
        "SELECT install_id, platform, app_version, ip_prefix, first_seen_at, last_seen_at FROM analytics_installs "
        "WHERE user_id = :u ORDER BY first_seen_at"), {"u": user_id}).mappings()
    count = session.execute(text("SELECT count(*) FROM analytics_events WHERE person_id = :u"), {"u": user_id}).scalar()
    events = session.execute(text(
        "SELECT event_id, name, occurred_at, properties, session_id, platform, app_version FROM analytics_events "
        "WHERE person_id = :u ORDER BY occurred_at DESC LIMIT :n"), {"u": user_id, "n": EXPORTED_EVENTS}).mappings()
    return {
        "properties": person.properties if person else {},
        "first_seen_at": person.first_seen_at.isoformat() if person else None,
        "installs": [{**row, "first_seen_at": row["first_seen_at"].isoformat(),
                      "last_seen_at": row["last_seen_at"].isoformat()} for row in installs],
        "event_count": count,
        "events": [{**row, "event_id": str(row["event_id"]), "occurred_at": row["occurred_at"].isoformat()}
                   for row in events],
    }


def erase_analytics_data(user_id: uuid.UUID) -> None:
    """Delete the person's events, roll-ups, properties and installs (no commit; idempotent)."""
    session = db.session
    for statement in ("DELETE FROM analytics_events WHERE person_id = :u",
                      "DELETE FROM analytics_user_days WHERE person_id = :u",
                      "DELETE FROM analytics_persons WHERE person_id = :u",
                      "DELETE FROM analytics_installs WHERE user_id = :u"):
        session.execute(text(statement), {"u": user_id})
