"""Work that went missing is found again; the account export lists the user's media."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import update

from backend.auth.deletion import export_account
from backend.common.db import utcnow
from backend.extensions import db
from backend.media.models import Media
from jobs.media import clean_up_media
from tests.media.samples import jpeg


def _age(media_id: str, *, seconds: int, **values) -> None:
    db.session.execute(update(Media).where(Media.id == uuid.UUID(media_id))
                       .values(updated_at=utcnow() - timedelta(seconds=seconds), **values))
    db.session.commit()


def test_processing_left_by_a_killed_worker_is_retried_then_made_ready(app, client, headers, upload, redis_conn,
                                                                        run_media_jobs):
    done = upload(jpeg())
    redis_conn.flushdb()  # the job is lost (a Redis wipe, a killed worker): the row still says pending
    _age(done["id"], seconds=app.config["MEDIA_PROCESSING_STALE_S"] + 5, status="processing", attempts=1)
    assert clean_up_media()["retried"] == 1
    run_media_jobs()
    media = client.get(f"/v1/media/{done['id']}", headers=headers).get_json()
    assert media["status"] == "ready" and media["variants"]


def test_processing_that_keeps_dying_is_failed_with_a_reason(app, client, headers, upload, redis_conn):
    import io

    from backend.media.storage import get_storage

    done = upload(jpeg())
    redis_conn.flushdb()
    store = get_storage(app)
    store.put(f"media/{done['id']}/hls/360p/segment_000.ts", io.BytesIO(b"half a ladder"), content_type="video/mp2t")
    _age(done["id"], seconds=app.config["MEDIA_PROCESSING_STALE_S"] + 5, status="processing", attempts=3)
    assert clean_up_media()["retried"] == 1
    db.session.expire_all()
    media = client.get(f"/v1/media/{done['id']}", headers=headers).get_json()
    assert media["status"] == "failed" and media["failure_reason"] == "processing_timed_out"
    assert [i.key for i in store.iter_keys(f"media/{done['id']}/")] == [f"media/{done['id']}/original"]


def test_account_export_lists_the_users_media(app, user, upload, run_media_jobs):
    done = upload(jpeg(), filename="me.jpg")
    run_media_jobs()
    with app.test_request_context():
        exported = export_account(user_id=user.id)["media"]
    assert [(m["id"], m["status"], m["filename"]) for m in exported] == [(done["id"], "ready", "me.jpg")]


def test_a_duplicate_job_leaves_an_item_being_processed_alone(app, upload):
    from backend.media.processing import run_processing

    done = upload(jpeg())
    _age(done["id"], seconds=0, status="processing", attempts=1)
    with app.test_request_context():
        assert run_processing(db.session, media_id=uuid.UUID(done["id"])) == "processing"
    assert db.session.get(Media, uuid.UUID(done["id"])).attempts == 1


def test_objects_left_by_a_lost_deletion_job_are_swept(app, client, headers, upload, run_media_jobs, redis_conn,
                                                       tmp_path, monkeypatch):
    import io

    from backend.media.storage import get_storage
    from backend.media.storage.local import LocalStorage
    from jobs.media import sweep_orphaned_media_objects

    if app.config["STORAGE_BACKEND"] == "local":  # a folder of its own: other sessions share instance/test-storage
        monkeypatch.setitem(app.extensions, "groundwork.storage", LocalStorage(
            str(tmp_path), base_url=app.config["PUBLIC_BASE_URL"], secret=app.config["SECRET_KEY"]))

    kept = upload(jpeg())
    run_media_jobs()
    deleted = upload(jpeg())
    run_media_jobs()
    assert client.delete(f"/v1/media/{deleted['id']}", headers=headers).status_code == 204
    redis_conn.flushdb()  # the deletion job is lost
    store = get_storage(app)
    store.put(f"media/{uuid.uuid4()}/original", io.BytesIO(b"never committed"), content_type="image/jpeg")
    assert sweep_orphaned_media_objects() >= 2
    assert list(store.iter_keys(f"media/{deleted['id']}/")) == []
    assert len(list(store.iter_keys(f"media/{kept['id']}/"))) == 3
