"""What the push domain adds to an account's data export, and erases with the account."""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select

from backend.extensions import db
from backend.notifications.models import (
    Device,
    Notification,
    NotificationPreference,
    QuietHours,
    TopicSubscription,
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def export_push_data(user_id: uuid.UUID) -> dict[str, Any]:
    """Devices (tokens left out: they are credentials), preferences, topics and the inbox."""
    session = db.session
    quiet = session.get(QuietHours, user_id)
    return {
        "devices": [{
            "installation_id": d.installation_id, "platform": d.platform, "app_version": d.app_version,
            "locale": d.locale, "time_zone": d.time_zone, "push_permission": d.push_permission,
            "has_token": d.token is not None, "last_seen_at": _iso(d.last_seen_at), "created_at": _iso(d.created_at),
        } for d in session.scalars(select(Device).where(Device.user_id == user_id).order_by(Device.created_at))],
        "preferences": {p.category: p.enabled for p in session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id))},
        "quiet_hours": None if quiet is None else {
            "start": quiet.start_local.strftime("%H:%M"), "end": quiet.end_local.strftime("%H:%M"),
            "time_zone": quiet.time_zone},
        "topics": sorted(s.topic.name for s in session.scalars(
            select(TopicSubscription).where(TopicSubscription.user_id == user_id))),
        "inbox": [{
            "id": str(n.id), "category": n.category, "title": n.title, "body": n.body, "data": n.data,
            "deep_link": n.deep_link, "created_at": _iso(n.created_at), "read_at": _iso(n.read_at),
            "opened_at": _iso(n.opened_at),
        } for n in session.scalars(select(Notification).where(Notification.user_id == user_id)
                                   .order_by(Notification.created_at))],
    }


def erase_push_data(user_id: uuid.UUID) -> None:
    """Remove every push row of the user (the ledger goes with its notifications and devices)."""
    session = db.session
    for model in (Notification, Device, NotificationPreference, QuietHours, TopicSubscription):
        session.execute(delete(model).where(model.user_id == user_id))
