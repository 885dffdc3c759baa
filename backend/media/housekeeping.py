"""Clean-ups the periodic job runs: abandoned uploads, and processing that stopped moving."""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.jobs import enqueue_after_commit
from backend.media.models import Media
from backend.media.processing import MAX_ATTEMPTS, clear_made_objects
from backend.media.status import mark_failed
from backend.media.storage import StorageError, get_storage
from backend.media.uploads import discard_upload

log = logging.getLogger(__name__)


def expire_abandoned_uploads(session: Session, *, limit: int = 200) -> int:
    """Abort uploads never completed before their expiry (S3 multipart aborted, parts removed)."""
    due = session.scalars(
        select(Media).where(Media.status == "uploading", Media.upload_expires_at < utcnow())
        .order_by(Media.upload_expires_at).limit(limit).with_for_update(skip_locked=True))
    expired = 0
    for media in list(due):
        try:
            discard_upload(media)
        except StorageError:
            log.warning("store unavailable while expiring upload %s; next run retries", media.id)
            continue
        media.status = "expired"
        expired += 1
    session.commit()
    return expired


def retry_stale_processing(session: Session, *, limit: int = 200) -> int:
    """Queue again items stuck in pending/processing (a lost job, a killed worker); fail repeat offenders."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["MEDIA_PROCESSING_STALE_S"])
    stale = list(session.scalars(
        select(Media).where(Media.status.in_(("pending", "processing")), Media.updated_at < cutoff)
        .order_by(Media.updated_at).limit(limit).with_for_update(skip_locked=True)))
    for media in stale:
        if media.attempts >= MAX_ATTEMPTS:
            clear_made_objects(get_storage(), media)  # what the dead runs wrote (segments, variants)
            mark_failed(session, media=media, reason="processing_timed_out")
            continue
        media.status, media.updated_at = "pending", utcnow()
        enqueue_after_commit(session, "jobs.media.process_media", queue="media",
                             job_id=f"media-process-{media.id}-{media.attempts}", media_id=str(media.id))
    session.commit()
    return len(stale)


def sweep_orphaned_objects(session: Session, *, batch: int = 500) -> int:
    """Delete stored objects of media rows that no longer exist (a deletion whose job was lost).

    Safe by construction: an item's row is committed before any of its objects can be
    stored, so objects without a row belong to deleted items (or to a request that
    never committed). Returns how many items' objects went.
    """
    store = get_storage()
    removed = 0
    pending: set[uuid.UUID] = set()

    def flush() -> int:
        known = set(session.scalars(select(Media.id).where(Media.id.in_(pending))))
        for media_id in pending - known:
            store.delete_prefix(f"media/{media_id}/")
        session.rollback()
        count = len(pending - known)
        pending.clear()
        return count

    seen: set[uuid.UUID] = set()
    for info in store.iter_keys("media/"):
        try:
            media_id = uuid.UUID(info.key.split("/")[1])
        except (IndexError, ValueError):
            continue
        if media_id in seen:
            continue
        seen.add(media_id)
        pending.add(media_id)
        if len(pending) >= batch:
            removed += flush()
    if pending:
        removed += flush()
    return removed
