"""Where a media item stands: progress, ready, failed; each change published to its owner.

PostgreSQL holds the truth (apps can always poll ``GET /v1/media/{id}``); each change
is also published on Redis ``groundwork:media:<owner_id>`` for live streams. Publishing
is best effort: a Redis outage never fails processing.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.jobs import redis_client
from backend.media.models import Media

log = logging.getLogger(__name__)
# Called with (session, media) inside the transaction that made media ready or failed;
# webhooks register here so the event commits with the status.
_ON_FINISHED: list[Callable[[Session, Media], None]] = []


def channel(owner_id: uuid.UUID) -> str:
    """The Redis channel of one user's media events."""
    return f"groundwork:media:{owner_id}"


def on_finished(hook: Callable[[Session, Media], None]) -> None:
    """Run ``hook(session, media)`` whenever media becomes ready or failed (same transaction)."""
    if hook not in _ON_FINISHED:
        _ON_FINISHED.append(hook)


def emit_webhook(session: Session, media: Media) -> None:
    """``media.ready`` / ``media.failed`` to the app's servers, in the finishing transaction."""
    from backend.webhooks.services import emit

    emit(session, f"media.{media.status}", {
        "id": str(media.id), "owner_id": str(media.owner_id), "kind": media.kind, "status": media.status,
        "failure_reason": media.failure_reason, "content_type": media.detected_type, "width": media.width,
        "height": media.height, "duration_s": media.duration_s, "variants": sorted(media.variants or {})})


def event_of(media: Media) -> dict[str, Any]:
    """The small JSON an app receives on each change."""
    return {"id": str(media.id), "kind": media.kind, "status": media.status, "progress": media.progress,
            "failure_reason": media.failure_reason}


def publish(owner_id: uuid.UUID, event: dict[str, Any]) -> None:
    """Send ``event`` to the owner's live channel (best effort)."""
    try:
        redis_client().publish(channel(owner_id), json.dumps(event))
    except redis.RedisError:
        log.warning("media event for %s not published (Redis unavailable)", owner_id)


def report_progress(session: Session, *, media_id: uuid.UUID, percent: int) -> None:
    """Record processing progress (0-99; 100 only with ready) and tell the owner (commits)."""
    percent = max(0, min(99, int(percent)))
    row = session.execute(
        update(Media).where(Media.id == media_id, Media.status == "processing", Media.progress < percent)
        .values(progress=percent, updated_at=utcnow()).returning(Media.owner_id, Media.kind)
    ).first()
    session.commit()
    if row is not None:
        publish(row.owner_id, {"id": str(media_id), "kind": row.kind, "status": "processing",
                               "progress": percent, "failure_reason": None})


def mark_ready(session: Session, *, media: Media, variants: dict[str, dict[str, Any]],
               attributes: dict[str, Any]) -> None:
    """Media is served from now on (commits): its variants exist, its attributes are known."""
    media.variants = variants
    for name, value in attributes.items():
        setattr(media, name, value)
    media.status, media.progress, media.failure_reason, media.ready_at = "ready", 100, None, utcnow()
    _finish(session, media)


def mark_failed(session: Session, *, media: Media, reason: str) -> None:
    """Media will not be served; ``reason`` tells the app why (commits)."""
    media.status, media.failure_reason, media.variants = "failed", reason[:500], {}
    _finish(session, media)


def _finish(session: Session, media: Media) -> None:
    for hook in _ON_FINISHED:
        hook(session, media)
    session.commit()
    publish(media.owner_id, event_of(media))
