"""The in-app inbox: every notification a user was sent, read state, opens, and live updates."""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import redis
from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.errors import NotFound
from backend.notifications.models import Notification

log = logging.getLogger(__name__)


def channel(user_id: uuid.UUID | str) -> str:
    """The Redis pub/sub channel announcing a user's new inbox entries."""
    return f"groundwork:inbox:{user_id}"


def inbox_query(*, user_id: uuid.UUID, unread_only: bool = False) -> Select:
    """The user's entries (for cursor pagination newest first)."""
    stmt = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return stmt


def unread_count(session: Session, *, user_id: uuid.UUID) -> int:
    """How many entries the user has not read."""
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def _own(session: Session, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification:
    notification = session.scalar(select(Notification).where(
        Notification.id == notification_id, Notification.user_id == user_id))
    if notification is None:
        raise NotFound("No such notification.", code="notification_not_found")
    return notification


def mark_read(session: Session, *, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification:
    """Mark one entry read (keeps the first read time)."""
    notification = _own(session, user_id, notification_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
        session.commit()
    return notification


def mark_all_read(session: Session, *, user_id: uuid.UUID) -> int:
    """Mark every unread entry read; returns how many changed."""
    result = session.execute(update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)).values(read_at=utcnow()))
    session.commit()
    return result.rowcount


def record_open(session: Session, *, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification:
    """A tap on the push opened the app: first open time kept (idempotent); opening also reads it."""
    notification = _own(session, user_id, notification_id)
    now = utcnow()
    # One conditional UPDATE so two concurrent reports keep the earliest time.
    session.execute(update(Notification).where(Notification.id == notification.id, Notification.opened_at.is_(None))
                    .values(opened_at=now, read_at=func.coalesce(Notification.read_at, now)))
    session.commit()
    session.refresh(notification)
    return notification


def entry_event(notification: Notification) -> dict[str, Any]:
    """The JSON an SSE client receives for one entry."""
    return {
        "id": str(notification.id), "category": notification.category, "title": notification.title,
        "body": notification.body, "data": notification.data, "deep_link": notification.deep_link,
        "image_url": notification.image_url, "campaign_id": str(notification.campaign_id or "") or None,
        "created_at": notification.created_at.isoformat(), "read_at": None, "opened_at": None,
    }


_ANNOUNCE_SLICE = 500
# ARGV[1]: a JSON list of [channel, message] pairs.
_PUBLISH_ALL = ("local pairs = cjson.decode(ARGV[1]) "
                "for i = 1, #pairs do redis.call('PUBLISH', pairs[i][1], pairs[i][2]) end return #pairs")


def announce(connection: redis.Redis, events: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
    """Tell live inbox streams about committed entries (best effort: streams also poll)."""
    if not events:
        return
    try:
        # One script call per slice instead of a PUBLISH command each: a campaign batch
        # announces hundreds of entries, and packing a command per entry (and reading a
        # reply per entry) cost the delivery lane more CPU than its database work.
        # The pairs travel as one JSON argument: redis-py packs each argument in Python.
        for start in range(0, len(events), _ANNOUNCE_SLICE):
            pairs = [(channel(user_id), json.dumps(payload))
                     for user_id, payload in events[start:start + _ANNOUNCE_SLICE]]
            connection.eval(_PUBLISH_ALL, 0, json.dumps(pairs))
    except redis.RedisError as exc:
        log.warning("could not announce inbox entries: %s", exc)


def entries_after(session: Session, *, user_id: uuid.UUID, after_id: uuid.UUID | None, limit: int = 100
                  ) -> list[Notification]:
    """Entries newer than ``after_id`` (oldest first), for Last-Event-ID resumption and polling."""
    anchor = session.scalar(select(Notification).where(
        Notification.id == after_id, Notification.user_id == user_id)) if after_id else None
    if anchor is None:
        return []
    stmt = select(Notification).where(Notification.user_id == user_id).where(
        or_(Notification.created_at > anchor.created_at,
            and_(Notification.created_at == anchor.created_at, Notification.id > anchor.id)))
    return list(session.scalars(stmt.order_by(Notification.created_at, Notification.id).limit(limit)))


def newest_entry(session: Session, *, user_id: uuid.UUID) -> Notification | None:
    """The user's newest entry (where a fresh stream starts)."""
    return session.scalar(select(Notification).where(Notification.user_id == user_id)
                          .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(1))


def recent_entries(session: Session, *, user_ids: list[uuid.UUID], window_s: float) -> list[Notification]:
    """The given users' entries of the last ``window_s`` seconds, oldest first (one query for many streams)."""
    if not user_ids:
        return []
    stmt = select(Notification).where(
        Notification.user_id.in_(user_ids),
        Notification.created_at > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, window_s))
    return list(session.scalars(stmt.order_by(Notification.created_at, Notification.id)))
