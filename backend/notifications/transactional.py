"""Transactional sends: a server or staff member notifies one user, or every follower of a topic, now.

Each recipient gets an inbox entry and, in the same transaction, one ledger row per live
device (``push_deliveries``); a dispatch of the delivery engine leaves after the commit.
From there a transactional push is delivered exactly like a campaign's, by the same
engine. A category the user turned off is suppressed (no entry, no push); a
non-transactional message inside the user's quiet hours is kept in the inbox at once and
its rows are due when the quiet hours end (the engine's policy decides again at send time).
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.common.db import utcnow
from backend.common.errors import NotFound
from backend.common.jobs import redis_client
from backend.notifications import inbox, topics
from backend.notifications.delivery.dispatch import schedule_dispatch
from backend.notifications.models import Notification, NotificationPreference, QuietHours
from backend.notifications.preferences import MANDATORY, QuietWindow, user_zone

# One ledger row per live device of each entry's user, due when the entry's push is (a row
# held by quiet hours says so, as one the engine deferred would: digests fold such rows).
_LEDGER_SQL = """
INSERT INTO push_deliveries (notification_id, device_id, user_id, time_zone, locale, status, due_at, next_attempt_at,
                             error_code)
SELECT e.id, d.id, d.user_id, d.time_zone, d.locale, 'pending', e.due_at, e.due_at,
       CASE WHEN e.due_at > :now THEN 'quiet_hours' END  -- why it waits, as the engine records it
FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS uuid[]), CAST(:dues AS timestamptz[])) AS e(id, user_id, due_at)
JOIN devices d ON d.user_id = e.user_id
WHERE d.token IS NOT NULL AND d.disabled_at IS NULL AND d.push_permission <> 'denied'
ON CONFLICT DO NOTHING
"""


@dataclass(frozen=True)
class PushContent:
    """What to show and how to deliver it."""

    category: str = "transactional"
    title: str | None = None
    body: str | None = None
    data: dict[str, str] = field(default_factory=dict)
    deep_link: str | None = None
    image_url: str | None = None
    ttl_seconds: int | None = None
    priority: str = "high"
    collapse_key: str | None = None
    silent: bool = False
    badge: int | None = None


@dataclass
class SendSummary:
    """What became of a send: queued now, deferred by quiet hours, or suppressed by preferences."""

    status: str
    recipients: int = 0
    queued: int = 0
    deferred: int = 0
    suppressed: int = 0
    notification_ids: list[uuid.UUID] = field(default_factory=list)
    deliver_at: datetime | None = None


def send_to_user(session: Session, *, user_id: uuid.UUID, content: PushContent) -> SendSummary:
    """Notify one user on every live device (and in the inbox)."""
    if session.scalar(select(User.id).where(User.id == user_id, User.status != "pending_deletion")) is None:
        raise NotFound("No such user.", code="user_not_found")
    summary = _send(session, user_ids=[user_id], content=content, topic=None)
    summary.notification_ids = summary.notification_ids[:1]
    return summary


def send_to_topic(session: Session, *, name: str, content: PushContent) -> SendSummary:
    """Notify every follower of a topic (none is fine: nothing is sent)."""
    topics.validate_topic_name(name)
    summary = _send(session, user_ids=topics.follower_ids(session, name=name), content=content, topic=name)
    summary.notification_ids = []  # one per follower: too many to answer with
    return summary


def _send(session: Session, *, user_ids: list[uuid.UUID], content: PushContent, topic: str | None) -> SendSummary:
    now = utcnow()
    allowed = _allowed(session, user_ids, content.category)
    suppressed = len(user_ids) - len(allowed)
    windows = {} if content.category in MANDATORY else _quiet_windows(session, allowed)
    notifications = [_entry(user_id, content, topic) for user_id in allowed]
    session.add_all(notifications)
    session.flush()
    ids_made = [n.id for n in notifications]
    events = [(n.user_id, inbox.entry_event(n)) for n in notifications]
    by_time: dict[datetime | None, list[uuid.UUID]] = defaultdict(list)
    for notification in notifications:
        window = windows.get(notification.user_id)
        deliver_at = window.ends_after(now) if window is not None and window.contains(now) else None
        notification.push_due_at = deliver_at or now
        by_time[deliver_at].append(notification.id)
    if notifications:
        session.execute(text(_LEDGER_SQL), {
            "ids": [str(n.id) for n in notifications], "users": [str(n.user_id) for n in notifications],
            "dues": [n.push_due_at for n in notifications], "now": now})
        # Due now: the dispatch leaves at once after the commit (a whole second never lies ahead).
        schedule_dispatch(session, campaign_id=None, now=now,
                          due_instants=[at or now.replace(microsecond=0) for at in by_time])
    session.commit()
    inbox.announce(redis_client(), events)
    deferred = sum(len(ids) for at, ids in by_time.items() if at is not None)
    status = "suppressed" if not notifications and suppressed else (
        "deferred" if notifications and deferred == len(notifications) else "queued")
    later = [at for at in by_time if at is not None]
    return SendSummary(
        status=status, recipients=len(user_ids), queued=len(notifications) - deferred, deferred=deferred,
        suppressed=suppressed, notification_ids=ids_made,
        deliver_at=min(later) if later else None,
    )


def _allowed(session: Session, user_ids: list[uuid.UUID], category: str) -> list[uuid.UUID]:
    """The users who have not turned ``category`` off (one query for any number)."""
    if category in MANDATORY or not user_ids:
        return list(user_ids)
    off = set(session.scalars(select(NotificationPreference.user_id).where(
        NotificationPreference.user_id.in_(user_ids), NotificationPreference.category == category,
        NotificationPreference.enabled.is_(False))))
    return [user_id for user_id in user_ids if user_id not in off]


def _quiet_windows(session: Session, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, QuietWindow]:
    if not user_ids:
        return {}
    rows = session.scalars(select(QuietHours).where(QuietHours.user_id.in_(user_ids))).all()
    return {
        row.user_id: QuietWindow(row.start_local, row.end_local,
                                 row.time_zone or user_zone(session, user_id=row.user_id))
        for row in rows
    }


def _entry(user_id: uuid.UUID, content: PushContent, topic: str | None) -> Notification:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(), "user_id": user_id, "category": content.category, "title": content.title,
        "body": content.body, "data": dict(content.data), "deep_link": content.deep_link,
        "image_url": content.image_url, "topic": topic, "priority": content.priority,
        "ttl_seconds": content.ttl_seconds, "collapse_key": content.collapse_key, "silent": content.silent,
        "badge": content.badge, "created_at": utcnow(),
    }
    return Notification(**fields)
