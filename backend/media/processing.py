"""The processing seam: one job per media item, dispatched by family to its processor.

``run_processing(media_id)`` (called by ``jobs.media.process_media``) moves an item
from pending to processing, downloads the original to a private work folder, checks its
checksum, and calls the processor of the kind's family:

- ``backend.media.images.process(ctx) -> ProcessingResult`` for avatar and photo;
- ``backend.media.video.process(ctx) -> ProcessingResult`` for video.

Before any processor runs, the upload is scanned by clamd when MEDIA_CLAMD_ADDRESS is
set (``scan``), and the bytes are judged by their magic numbers (``sniff.judge``):
the type must be the declared one and allowed by the kind's policy. A processor then
decodes or probes for real. It reads ``ctx.source_path`` (a local file; never anything else), writes
objects only through ``ctx.store(name, path, content_type)`` (keys under the item's
prefix), reports ``ctx.report_progress(percent)`` as it goes, and returns the variants
and attributes. It raises ``MediaRejected(reason)`` for bad input: the item is marked
failed with that reason and not retried. A ``StorageError`` is retried by the job;
any other exception marks the item failed (``processing_error``). The item becomes
ready only after every variant it names is found in the store.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.media.errors import MediaRejected
from backend.media.models import Media
from backend.media.policies import KindPolicy, policy_for
from backend.media.scan import ScannerUnavailable, check_upload
from backend.media.sniff import judge
from backend.media.status import event_of, mark_failed, mark_ready, publish, report_progress
from backend.media.storage import Storage, StorageError, get_storage

__all__ = ["MediaRejected", "ProcessingContext", "ProcessingResult", "run_processing"]

log = logging.getLogger(__name__)

PROCESSORS = {"image": "backend.media.images", "video": "backend.media.video"}
MAX_ATTEMPTS = 3


@dataclass
class ProcessingResult:
    """What a processor made: variants by name and the item's attributes."""

    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    detected_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    placeholder: str | None = None


@dataclass
class ProcessingContext:
    """Everything a processor may use for one media item."""

    media_id: uuid.UUID
    kind: str
    policy: KindPolicy
    declared_type: str
    detected_type: str  # from the magic numbers: allowed by the policy and equal to the declared type
    source_path: Path
    work_dir: Path
    key_prefix: str
    storage: Storage
    progress: Callable[[int], None]

    def report_progress(self, percent: float) -> None:
        """Tell the app how far processing is (0-99)."""
        self.progress(int(percent))

    def store(self, name: str, path: Path, *, content_type: str) -> str:
        """Put a made file under this item's prefix; returns its key."""
        key = self.key_prefix + name
        with path.open("rb") as data:
            self.storage.put(key, data, content_type=content_type)
        return key


def processor_for(family: str) -> Callable[[ProcessingContext], ProcessingResult]:
    """The ``process`` function of a family (raises MediaRejected when none is installed)."""
    if family not in PROCESSORS:
        raise MediaRejected(f"{family} processing is not available")
    # A dependency missing inside the processor (an install that skipped one) is an operator's
    # error to see in the job's traceback, not a reason to fail the user's upload quietly.
    return importlib.import_module(PROCESSORS[family]).process


def run_processing(session: Session, *, media_id: uuid.UUID) -> str:
    """Process one pending item to ready or failed; idempotent (returns the final status)."""
    media = session.scalar(select(Media).where(Media.id == media_id).with_for_update(skip_locked=True))
    # Only pending items start: a duplicate job for an item another worker is processing
    # leaves it alone. Outages put the item back to pending before the job is retried, and
    # the clean-up job does the same for items a killed worker left in processing.
    if media is None or media.status != "pending":
        session.rollback()
        return media.status if media is not None else "gone"
    media.status, media.progress, media.attempts = "processing", 0, media.attempts + 1
    session.commit()
    publish(media.owner_id, event_of(media))
    work_dir = Path(tempfile.mkdtemp(prefix=f"groundwork-media-{media_id}-"))
    try:
        return _process(session, media, work_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _process(session: Session, media: Media, work_dir: Path) -> str:
    store = get_storage()
    policy = policy_for(current_app.config, media.kind)
    try:
        source = _download(store, media, work_dir)
        check_upload(source, address=current_app.config["MEDIA_CLAMD_ADDRESS"])
        detected = judge(source, allowed=policy.content_types, declared=media.declared_type)
        ctx = ProcessingContext(
            media_id=media.id, kind=media.kind, policy=policy, declared_type=media.declared_type,
            detected_type=detected,
            source_path=source, work_dir=work_dir, key_prefix=media.key_prefix, storage=store,
            progress=lambda percent: report_progress(session, media_id=media.id, percent=percent))
        result = processor_for(policy.family)(ctx)
        missing = [name for name, v in result.variants.items() if store.head(v["key"]) is None]
        if missing:
            raise StorageError(f"variants not found in the store after writing: {missing}")
    except MediaRejected as exc:
        clear_made_objects(store, media)
        mark_failed(session, media=session.merge(media), reason=exc.reason)
        return "failed"
    except (StorageError, ScannerUnavailable) as exc:
        session.rollback()
        if media.attempts >= MAX_ATTEMPTS:
            reason = "scanner_unavailable" if isinstance(exc, ScannerUnavailable) else "storage_unavailable"
            mark_failed(session, media=session.merge(media), reason=reason)
            return "failed"
        media = session.merge(media)
        media.status = "pending"
        session.commit()
        raise  # the job is retried with backoff
    except Exception:
        log.exception("processing media %s failed", media.id)
        session.rollback()
        clear_made_objects(store, media)
        mark_failed(session, media=session.merge(media), reason="processing_error")
        return "failed"
    media = session.merge(media)
    mark_ready(session, media=media, variants=result.variants, attributes={
        "detected_type": result.detected_type, "width": result.width, "height": result.height,
        "duration_s": result.duration_s, "placeholder": result.placeholder})
    return "ready"


def _download(store: Storage, media: Media, work_dir: Path) -> Path:
    """Copy the original to a local file, checking the declared checksum on the way."""
    target = work_dir / "source"
    digest = hashlib.sha256()
    with store.open(media.original_key) as stream, target.open("wb") as out:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
            out.write(chunk)
    if media.checksum_sha256 and digest.hexdigest() != media.checksum_sha256.lower():
        raise MediaRejected("checksum_mismatch")
    return target


def clear_made_objects(store: Storage, media: Media) -> None:
    """Remove every object made from the original (the original stays until the item is deleted)."""
    try:
        for info in list(store.iter_keys(media.key_prefix)):
            if info.key != media.original_key:
                store.delete_prefix(info.key)
    except StorageError:
        log.warning("could not clear partial variants of %s; the clean-up job retries", media.id)
