"""A user's media: read one, list, delete (every stored object goes with it)."""
from __future__ import annotations

import uuid

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from backend.common.jobs import enqueue_after_commit
from backend.media.errors import MediaNotFound
from backend.media.models import Media


def get_media(session: Session, *, owner_id: uuid.UUID, media_id: uuid.UUID) -> Media:
    """One of the owner's media items (someone else's is not found)."""
    media = session.scalar(select(Media).where(Media.id == media_id, Media.owner_id == owner_id))
    if media is None:
        raise MediaNotFound("No such media.")
    return media


def media_query(*, owner_id: uuid.UUID, kind: str | None = None, status: str | None = None) -> Select:
    """The owner's media, optionally of one kind or status (paginate newest first)."""
    stmt = select(Media).where(Media.owner_id == owner_id)
    if kind:
        stmt = stmt.where(Media.kind == kind)
    if status:
        stmt = stmt.where(Media.status == status)
    return stmt


def delete_media(session: Session, *, owner_id: uuid.UUID, media_id: uuid.UUID) -> None:
    """Forget the item now (it stops being served at once); its objects are removed after commit."""
    media = session.scalar(select(Media).where(Media.id == media_id, Media.owner_id == owner_id).with_for_update())
    if media is None:
        raise MediaNotFound("No such media.")
    remove_media(session, media=media)
    session.commit()


def remove_media(session: Session, *, media: Media) -> None:
    """Delete the row and queue the removal of its objects (no commit: the caller's transaction)."""
    enqueue_after_commit(session, "jobs.media.delete_media_objects", queue="media",
                         prefix=media.key_prefix, key=media.original_key, upload_id=media.upload_id)
    session.delete(media)


def erase_user_media(user_id: uuid.UUID) -> None:
    """Account erasure: every media item of the user, with its objects (in the erasing transaction)."""
    from backend.extensions import db

    for media in db.session.scalars(select(Media).where(Media.owner_id == user_id).with_for_update()):
        remove_media(db.session, media=media)


def export_user_media(user_id: uuid.UUID) -> list[dict]:
    """Account export: every media item's record (the files are downloaded through their URLs)."""
    from backend.extensions import db

    items = db.session.scalars(select(Media).where(Media.owner_id == user_id).order_by(Media.created_at))
    return [{"id": str(m.id), "kind": m.kind, "status": m.status, "content_type": m.detected_type or m.declared_type,
             "size_bytes": m.size_bytes, "filename": m.filename, "width": m.width, "height": m.height,
             "duration_s": m.duration_s, "visibility": m.visibility, "moderation": m.moderation,
             "variants": sorted(m.variants or {}), "created_at": m.created_at.isoformat()} for m in items]
