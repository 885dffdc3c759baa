"""Analytics housekeeping from the periodic table: partitions ahead, expired ones dropped."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app

from backend.analytics import active_counts, partitions, retention_counts
from backend.extensions import db


def maintain_event_partitions() -> dict[str, list[str]]:
    """Create the months of events ahead of now (and back to the oldest accepted age); drop expired ones."""
    config, now = current_app.config, datetime.now(UTC)
    start = now - timedelta(days=config["ANALYTICS_MAX_EVENT_AGE_DAYS"])
    end = now + timedelta(days=31 * config["ANALYTICS_PARTITIONS_AHEAD"])
    created = partitions.ensure_partitions(db.session, start=start, end=end)
    dropped = partitions.drop_expired_partitions(db.session, retention_days=config["ANALYTICS_RETENTION_DAYS"],
                                                 now=now)
    db.session.commit()
    return {"created": [m.isoformat() for m in created], "dropped": [m.isoformat() for m in dropped]}


def prune_event_ids() -> int:
    """Forget client event IDs older than the oldest accepted event age (plus a day)."""
    removed = partitions.prune_event_ids(db.session, keep_days=current_app.config["ANALYTICS_MAX_EVENT_AGE_DAYS"] + 1)
    db.session.commit()
    return removed


def refresh_recent_active_counts() -> int:
    """Recount actives and retention cells of the last two days (today's too), and any period never counted."""
    now = datetime.now(UTC)
    since = (now - timedelta(days=1)).date()
    written = active_counts.refresh(db.session, since=since, now=now)
    written += retention_counts.refresh(db.session, since=since, now=now)
    db.session.commit()
    return written


def refresh_late_active_counts() -> int:
    """Recount every period that late events can still change (the oldest accepted age)."""
    now = datetime.now(UTC)
    since = (now - timedelta(days=current_app.config["ANALYTICS_MAX_EVENT_AGE_DAYS"] + 1)).date()
    written = active_counts.refresh(db.session, since=since, now=now)
    written += retention_counts.refresh(db.session, since=since, now=now)
    db.session.commit()
    return written
