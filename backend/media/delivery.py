"""Signed delivery: short-lived URLs, one per object, only for media that may be served.

Served means ready and not held by moderation (quarantined until approved, or removed).
The owner may read their own items; other signed-in users only items the owner shared
(``visibility = users``). Variants are served inline (they are WebP/HLS the server made);
the original only to its owner, always as an attachment.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.media.errors import MediaNotFound
from backend.media.models import Media
from backend.media.storage import get_storage

SERVED_MODERATION = ("none", "approved")


def servable(media: Media) -> bool:
    """Whether the item's objects may be handed out now."""
    return media.status == "ready" and media.moderation in SERVED_MODERATION


def viewable_media(session: Session, *, viewer_id: uuid.UUID, media_id: uuid.UUID) -> Media:
    """An item the viewer may have URLs for: their own, or a servable one its owner shared."""
    media = session.scalar(select(Media).where(Media.id == media_id))
    if media is None or (media.owner_id != viewer_id and not (media.visibility == "users" and servable(media))):
        raise MediaNotFound("No such media.")
    return media


def delivery_of(media: Media, *, for_owner: bool) -> dict[str, Any] | None:
    """Signed URLs of every deliverable variant (and, for the owner, the original); None when not servable."""
    if not servable(media):
        return None
    ttl = current_app.config["MEDIA_DOWNLOAD_URL_TTL_S"]
    store = get_storage()
    expires_at: datetime = utcnow() + timedelta(seconds=ttl)
    variants = {}
    for name, variant in (media.variants or {}).items():
        if variant.get("deliver", True) is False:
            continue  # parts of a variant (HLS segments) are signed by their playlist
        variants[name] = {"url": store.presign_get(variant["key"], expires_s=ttl,
                                                   content_type=variant.get("content_type")),
                          "content_type": variant.get("content_type"), "width": variant.get("width"),
                          "height": variant.get("height")}
    body: dict[str, Any] = {"expires_at": expires_at, "variants": variants, "original": None}
    if for_owner:
        body["original"] = store.presign_get(media.original_key, expires_s=ttl,
                                             content_type="application/octet-stream",
                                             filename=media.filename or f"{media.id}")
    return body


def set_visibility(session: Session, *, owner_id: uuid.UUID, media_id: uuid.UUID, visibility: str) -> Media:
    """Share an item with signed-in users, or make it private again (commits)."""
    media = session.scalar(select(Media).where(Media.id == media_id, Media.owner_id == owner_id))
    if media is None:
        raise MediaNotFound("No such media.")
    media.visibility = visibility
    session.commit()
    return media
