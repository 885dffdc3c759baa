"""Direct uploads: ask → presigned PUT or multipart parts → (resume) → complete or abort.

The bytes go from the app straight to the store; this module only signs requests and
checks the result. Sizes are reserved against the owner's quota when the upload is
asked for (under a lock on the owner, so parallel requests cannot both squeeze in) and
checked again, with the stored size, at completion.
"""
from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.common.db import utcnow
from backend.common.errors import ValidationFailed
from backend.common.jobs import enqueue_after_commit
from backend.media.errors import FileTooLarge, MediaNotFound, QuotaExceeded, WrongState
from backend.media.models import Media
from backend.media.policies import policy_for
from backend.media.status import event_of, publish
from backend.media.storage import PresignedRequest, StoredPart, UploadNotFound, get_storage

MAX_PARTS = 10_000  # S3's limit
MIN_PART = 5 * 1024 * 1024  # S3's minimum for every part but the last
COUNTED_STATUSES = ("uploading", "pending", "processing", "ready")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class PartUrl:
    part_number: int
    size: int
    request: PresignedRequest


@dataclass(frozen=True)
class UploadState:
    """How to (continue to) upload a media item."""

    media: Media
    expires_at: datetime
    request: PresignedRequest | None = None  # single PUT
    part_size: int | None = None
    parts: tuple[PartUrl, ...] = ()  # parts still to send, each with a fresh URL
    stored_parts: tuple[StoredPart, ...] = ()
    uploaded: bool = False


def clean_filename(name: str | None) -> str | None:
    """The last path segment, in safe characters (kept for Content-Disposition, never for keys)."""
    if not name:
        return None
    base = PurePosixPath(name.replace("\\", "/")).name
    base = _UNSAFE_NAME.sub("_", base).strip(" .")[:200]
    return base or None


def quota_used(session: Session, *, owner_id: uuid.UUID, excluding: uuid.UUID | None = None) -> int:
    """Bytes the owner holds or has reserved (uploads in flight count)."""
    stmt = select(func.coalesce(func.sum(Media.size_bytes), 0)).where(
        Media.owner_id == owner_id, Media.status.in_(COUNTED_STATUSES))
    if excluding is not None:
        stmt = stmt.where(Media.id != excluding)
    return int(session.scalar(stmt) or 0)


def _check_quota(session: Session, *, owner_id: uuid.UUID, size: int, excluding: uuid.UUID | None = None) -> None:
    quota = current_app.config["MEDIA_QUOTA_BYTES"]
    used = quota_used(session, owner_id=owner_id, excluding=excluding)
    if used + size > quota:
        raise QuotaExceeded("This upload would exceed your storage quota.",
                            details={"quota_bytes": quota, "used_bytes": used, "requested_bytes": size})


def _part_size(size: int) -> int:
    wanted = max(current_app.config["MEDIA_PART_SIZE"], MIN_PART)
    return max(wanted, math.ceil(size / MAX_PARTS))


def request_upload(session: Session, *, owner_id: uuid.UUID, kind: str, content_type: str, size: int,
                   checksum_sha256: str | None = None, filename: str | None = None,
                   multipart: bool | None = None) -> UploadState:
    """Reserve a server-chosen key and quota; return where to send the bytes (commits)."""
    policy = policy_for(current_app.config, kind)
    content_type = content_type.split(";")[0].strip().lower()
    if content_type not in policy.content_types:
        raise ValidationFailed(f"{kind} uploads must be one of {', '.join(policy.content_types)}.",
                               code="type_not_allowed", details={"fields": {"content_type": ["Not allowed."]}})
    if size > policy.max_bytes:
        raise FileTooLarge(f"{kind} uploads are at most {policy.max_bytes} bytes.",
                           details={"max_bytes": policy.max_bytes})
    # Lock the owner so two requests at once cannot both fit in the last free bytes.
    session.execute(select(User.id).where(User.id == owner_id).with_for_update())
    _check_quota(session, owner_id=owner_id, size=size)
    media_id = uuid.uuid4()
    prefix = f"media/{media_id}/"
    store = get_storage()
    config = current_app.config
    if multipart is None:
        multipart = size > config["MEDIA_MULTIPART_THRESHOLD"]
    now = utcnow()  # the clock, not now(): the order of two uploads in one transaction is kept
    media = Media(id=media_id, owner_id=owner_id, kind=kind, created_at=now,
                  declared_type=content_type, size_bytes=size,
                  checksum_sha256=checksum_sha256, filename=clean_filename(filename), key_prefix=prefix,
                  original_key=prefix + "original",
                  upload_expires_at=now + timedelta(seconds=config["MEDIA_UPLOAD_EXPIRY_S"]))
    if multipart:
        media.part_size = _part_size(size)
        media.upload_id = store.create_multipart(media.original_key, content_type=content_type)
    session.add(media)
    session.commit()
    return upload_state(session, owner_id=owner_id, media_id=media_id)


def _owned(session: Session, *, owner_id: uuid.UUID, media_id: uuid.UUID, lock: bool = False) -> Media:
    stmt = select(Media).where(Media.id == media_id, Media.owner_id == owner_id)
    media = session.scalar(stmt.with_for_update() if lock else stmt)
    if media is None:
        raise MediaNotFound("No such media.")
    return media


def _part_count(media: Media) -> int:
    return math.ceil(media.size_bytes / (media.part_size or media.size_bytes))


def _part_length(media: Media, number: int) -> int:
    part_size = media.part_size or media.size_bytes
    return min(part_size, media.size_bytes - (number - 1) * part_size)


def upload_state(session: Session, *, owner_id: uuid.UUID, media_id: uuid.UUID,
                 part_numbers: list[int] | None = None) -> UploadState:
    """What is stored so far and fresh URLs for the rest (all missing parts, or those asked for)."""
    media = _owned(session, owner_id=owner_id, media_id=media_id)
    if media.status != "uploading":
        raise WrongState("This upload is no longer open.", details={"status": media.status})
    store = get_storage()
    ttl = current_app.config["MEDIA_UPLOAD_URL_TTL_S"]
    expires_at = min(utcnow() + timedelta(seconds=ttl), media.upload_expires_at)
    if not media.is_multipart:
        uploaded = store.head(media.original_key) is not None
        request = store.presign_put(media.original_key, content_type=media.declared_type, size=media.size_bytes,
                                    expires_s=ttl)
        return UploadState(media=media, expires_at=expires_at, request=request, uploaded=uploaded)
    count = _part_count(media)
    bad = [n for n in part_numbers or [] if not 1 <= n <= count]
    if bad:
        raise ValidationFailed(f"Part numbers run from 1 to {count}.", code="part_out_of_range",
                               details={"fields": {"part_numbers": [f"Out of range: {bad}."]}})
    stored = _stored_parts(media)
    done = {p.number for p in stored if p.size == _part_length(media, p.number)}
    wanted = part_numbers or [n for n in range(1, count + 1) if n not in done]
    parts = tuple(PartUrl(n, _part_length(media, n),
                          store.presign_part(media.original_key, upload_id=media.upload_id or "", part_number=n,
                                             expires_s=ttl)) for n in wanted)
    return UploadState(media=media, expires_at=expires_at, part_size=media.part_size, parts=parts,
                       stored_parts=tuple(stored), uploaded=len(done) == count)


def _joined_earlier(media: Media) -> bool:
    """A completion joined the parts but its commit was lost: the upload is gone, the object is there."""
    store = get_storage()
    try:
        store.list_parts(media.original_key, upload_id=media.upload_id or "")
    except UploadNotFound:
        return store.head(media.original_key) is not None
    return False


def _stored_parts(media: Media) -> list[StoredPart]:
    try:
        return get_storage().list_parts(media.original_key, upload_id=media.upload_id or "")
    except UploadNotFound:
        return []


def complete_upload(session: Session, *, owner_id: uuid.UUID, media_id: uuid.UUID) -> Media:
    """Check the stored bytes, then queue the media for validation and processing (commits).

    Completing again is harmless: media already past ``uploading`` is returned as it is.
    """
    media = _owned(session, owner_id=owner_id, media_id=media_id, lock=True)
    if media.status != "uploading":
        if media.status in ("aborted", "expired"):
            raise WrongState("This upload was abandoned; ask for a new one.", details={"status": media.status})
        session.rollback()
        return media
    store = get_storage()
    if media.is_multipart and not _joined_earlier(media):
        stored = _stored_parts(media)
        count = _part_count(media)
        by_number = {p.number: p for p in stored}
        missing = [n for n in range(1, count + 1)
                   if n not in by_number or by_number[n].size != _part_length(media, n)]
        extra = sorted(set(by_number) - set(range(1, count + 1)))
        if missing or extra:
            raise WrongState("Some parts are missing or have the wrong size.", code="upload_incomplete",
                             details={"missing_parts": missing[:100], "unexpected_parts": extra[:100]})
        store.complete_multipart(media.original_key, upload_id=media.upload_id or "",
                                 parts=[by_number[n] for n in range(1, count + 1)])
    info = store.head(media.original_key)
    if info is None:
        raise WrongState("Nothing was uploaded yet.", code="upload_incomplete")
    if info.size != media.size_bytes:
        store.delete_prefix(media.key_prefix)
        if media.is_multipart:
            media.status = "aborted"
            session.commit()
        raise ValidationFailed("The uploaded size differs from the size declared.", code="size_mismatch",
                               details={"declared_bytes": media.size_bytes, "stored_bytes": info.size})
    try:
        _check_quota(session, owner_id=owner_id, size=info.size, excluding=media.id)
    except QuotaExceeded:
        store.delete_prefix(media.key_prefix)
        media.status = "aborted"
        session.commit()
        raise
    policy = policy_for(current_app.config, media.kind)
    media.status, media.completed_at = "pending", utcnow()
    if policy.quarantine:
        from backend.media.moderation.services import open_quarantine_case

        media.moderation = "quarantined"
        open_quarantine_case(session, media=media)
    enqueue_after_commit(session, "jobs.media.process_media", queue="media", job_id=f"media-process-{media.id}",
                         media_id=str(media.id))
    session.commit()
    publish(media.owner_id, event_of(media))
    return media


def abort_upload(session: Session, *, owner_id: uuid.UUID, media_id: uuid.UUID) -> None:
    """Give up an upload in progress: its parts and objects go, its quota is freed (commits)."""
    media = _owned(session, owner_id=owner_id, media_id=media_id, lock=True)
    if media.status in ("aborted", "expired"):
        return
    if media.status != "uploading":
        raise WrongState("This upload is complete; delete the media instead.", details={"status": media.status})
    discard_upload(media)
    media.status = "aborted"
    session.commit()


def discard_upload(media: Media) -> None:
    """Remove an unfinished upload's parts and objects from the store."""
    store = get_storage()
    if media.upload_id:
        store.abort_multipart(media.original_key, upload_id=media.upload_id)
    store.delete_prefix(media.key_prefix)


def describe(state: UploadState) -> dict[str, Any]:
    """The upload instructions as the API returns them."""
    body: dict[str, Any] = {"expires_at": state.expires_at, "multipart": state.media.is_multipart,
                            "uploaded": state.uploaded}
    if state.request is not None:
        body["request"] = state.request
    else:
        body["part_size"] = state.part_size
        body["parts"] = [{"part_number": p.part_number, "size": p.size, "url": p.request.url,
                          "method": p.request.method, "headers": p.request.headers} for p in state.parts]
        body["stored_parts"] = [{"part_number": p.number, "size": p.size} for p in state.stored_parts]
    return body
