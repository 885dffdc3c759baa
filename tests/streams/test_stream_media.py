"""Media processing changes reach the owner's open inbox stream as media.* events (no polling)."""
from __future__ import annotations

import uuid
from datetime import timedelta

from backend.common.db import utcnow
from backend.extensions import db
from backend.media import status
from backend.media.models import Media
from tests.streams.client import open_stream
from tests.streams.conftest import send_notification


def _processing_media(owner_id: uuid.UUID) -> Media:
    media_id = uuid.uuid4()
    media = Media(id=media_id, owner_id=owner_id, kind="photo", status="processing", declared_type="image/jpeg",
                  size_bytes=1000, key_prefix=f"media/{media_id}/", original_key=f"media/{media_id}/original",
                  upload_expires_at=utcnow() + timedelta(hours=1))
    db.session.add(media)
    db.session.commit()
    return media


def test_media_progress_and_outcome_arrive_as_media_events_without_moving_last_event_id(
        streams, committed_app, holder):
    (owner_id, headers), (other_id, _) = holder(), holder()
    reader = open_stream(streams, headers)
    with committed_app.app_context():
        media, others = _processing_media(owner_id), _processing_media(other_id)
        media_id = str(media.id)
        status.report_progress(db.session, media_id=others.id, percent=10)  # someone else's: not on this stream
        status.report_progress(db.session, media_id=media.id, percent=40)
        status.report_progress(db.session, media_id=media.id, percent=80)
        status.mark_failed(db.session, media=db.session.get(Media, media.id), reason="not an image")
        db.session.remove()

    first, second = reader.next_event("media.processing"), reader.next_event("media.processing")
    assert (first["id"], first["progress"], second["progress"]) == (media_id, 40, 80)
    failed = reader.next_event("media.failed")
    assert (failed["id"], failed["failure_reason"]) == (media_id, "not an image")

    # Media events carry no SSE id: the next notification is still what Last-Event-ID tracks.
    entry_id = send_notification(committed_app, owner_id, "After the media")
    while (frame := reader.next_frame()) is not None and frame.get("event") != ["notification"]:
        assert "id" not in frame, frame
    assert frame is not None and frame["id"] == [entry_id]
    reader.close()
