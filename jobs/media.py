"""Media jobs: process an upload, remove a deleted item's objects, periodic clean-up."""
from __future__ import annotations

import uuid

from backend.extensions import db
from backend.media import housekeeping
from backend.media.models import Media
from backend.media.processing import clear_made_objects, run_processing
from backend.media.storage import get_storage


def process_media(*, media_id: str) -> str:
    """Validate and process one uploaded item to ready or failed (idempotent)."""
    return run_processing(db.session, media_id=uuid.UUID(media_id))


def delete_media_objects(*, prefix: str, key: str, upload_id: str | None = None) -> int:
    """Remove every stored object of a deleted item (and its unfinished upload); idempotent."""
    store = get_storage()
    if upload_id:
        store.abort_multipart(key, upload_id=upload_id)
    return store.delete_prefix(prefix)


def withdraw_media_objects(*, media_id: str) -> bool:
    """Delete what was made from a removed item (all HLS parts too); the original stays for a restore."""
    media = db.session.get(Media, uuid.UUID(media_id))
    if media is None or media.moderation != "removed":
        return False
    clear_made_objects(get_storage(), media)
    return True


def clean_up_media() -> dict[str, int]:
    """Expire abandoned uploads and retry processing that stopped moving."""
    return {"expired_uploads": housekeeping.expire_abandoned_uploads(db.session),
            "retried": housekeeping.retry_stale_processing(db.session)}


def sweep_orphaned_media_objects() -> int:
    """Delete stored objects whose media row is gone (their deletion job was lost)."""
    return housekeeping.sweep_orphaned_objects(db.session)
