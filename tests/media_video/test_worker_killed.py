"""A real worker SIGKILLed mid-transcode: its ffmpeg dies with it, and the item is processed again."""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from backend.app import create_app
from backend.common.db import utcnow
from backend.common.jobs import enqueue_after_commit
from backend.extensions import db
from backend.media.housekeeping import retry_stale_processing
from backend.media.models import Media
from backend.media.storage import get_storage
from tests.auth.conftest import make_user  # noqa: F401 - the shared user factory
from tests.conftest import app_settings
from tests.media_video.clips import make_clip
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.chaos, pytest.mark.e2e]
SLOW = {"VIDEO_PRESET": "veryslow", "MEDIA_PROCESSING_STALE_S": 1}  # ffmpeg runs long enough to be caught


@pytest.fixture(scope="module")
def storage_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("killed-worker-store")


@pytest.fixture(scope="module")
def app(database_url, services, storage_dir):
    return create_app(app_settings(database_url, services.redis_url, STORAGE_LOCAL_PATH=str(storage_dir), **SLOW))


def _pending_video(user_id: uuid.UUID, data: bytes) -> uuid.UUID:
    media_id = uuid.uuid4()
    prefix = f"media/{media_id}/"
    db.session.add(Media(id=media_id, owner_id=user_id, kind="video", status="pending", declared_type="video/mp4",
                         size_bytes=len(data), checksum_sha256=hashlib.sha256(data).hexdigest(), key_prefix=prefix,
                         original_key=prefix + "original", upload_expires_at=utcnow() + timedelta(days=1)))
    db.session.commit()
    return media_id


def _ffmpeg_under(worker: subprocess.Popen) -> psutil.Process | None:
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(worker.pid).children(recursive=True):
            if child.name().startswith("ffmpeg"):
                return child
    return None


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_worker_killed_mid_transcode_leaves_no_ffmpeg_and_the_video_is_processed_again(
        committed_app, make_user, storage_dir, tmp_path):  # noqa: F811
    data = make_clip(tmp_path / "clip.mp4", width=960, height=540, seconds=3).read_bytes()
    with committed_app.app_context():
        user = make_user()
        media_id = _pending_video(user.id, data)
        media = db.session.get(Media, media_id)
        with open(tmp_path / "clip.mp4", "rb") as stream:
            get_storage().put(media.original_key, stream, content_type="video/mp4")
        enqueue_after_commit(db.session, "jobs.media.process_media", queue="media", media_id=str(media_id))
        db.session.commit()
    config = committed_app.config
    env = {**os.environ, "DATABASE_URL": config["DATABASE_URL"], "REDIS_URL": config["REDIS_URL"], "ENV": "test",
           "LOG_JSON": "false", "SECRET_KEY": config["SECRET_KEY"], "STORAGE_LOCAL_PATH": str(storage_dir),
           "VIDEO_PRESET": SLOW["VIDEO_PRESET"]}
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "jobs.worker", "media", "--no-scheduler"], cwd=ROOT,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ffmpeg = wait_for(lambda: _ffmpeg_under(worker), timeout=60, what="the work-horse's ffmpeg")
        horse = ffmpeg.parent()
        worker.send_signal(signal.SIGKILL)  # the machine dies: worker and work-horse, not ffmpeg
        with contextlib.suppress(psutil.NoSuchProcess):
            horse.send_signal(signal.SIGKILL)
        worker.wait(10)
        wait_for(lambda: _gone(ffmpeg), timeout=10, what="ffmpeg to die with its work-horse")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    from jobs.worker import build_worker

    with committed_app.app_context():
        assert db.session.scalar(select(Media.status).where(Media.id == media_id)) == "processing"
        wait_for(lambda: retry_stale_processing(db.session) >= 1, timeout=10, what="the stale item to be retried")
        build_worker(committed_app, ["media"], in_process=True).work(burst=True, with_scheduler=False)
        db.session.expire_all()
        media = db.session.get(Media, media_id)
        assert media.status == "ready", (media.status, media.failure_reason)
        assert media.attempts == 2


def test_job_timeout_kills_ffmpeg_and_fails_the_item(app, db_session, make_user, run_jobs, tmp_path,  # noqa: F811
                                                      monkeypatch):
    """RQ's job timeout (SIGALRM raising into the job) while ffmpeg runs: the group is killed and reaped.

    The pipeline's catch-all marks the item failed (not left processing) when the job's time runs out.
    The encode is made far longer than the job's 4 s (x264's veryslow preset on 6 s of 540p noise,
    which no encoder compresses quickly), so a quiet machine cannot finish it in time and a loaded
    one still starts ffmpeg well within it.
    """
    import threading

    from tests.media_video.clips import ffmpeg, ffmpeg_children

    monkeypatch.setitem(app.config, "VIDEO_PRESET", "veryslow")
    clip = tmp_path / "noise.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=960x540:rate=30:duration=6", "-vf", "noise=alls=80:allf=t+u",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip))
    media_id = _pending_video(make_user().id, clip.read_bytes())
    with clip.open("rb") as stream:
        get_storage().put(db.session.get(Media, media_id).original_key, stream, content_type="video/mp4")
    enqueue_after_commit(db.session, "jobs.media.process_media", queue="media", job_id=f"timeout-{media_id}",
                         timeout=4, retries=0, media_id=str(media_id))
    db.session.commit()
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            seen.update(ffmpeg_children(os.getpid()))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run_jobs(("media",))
    finally:
        done.set()
        watcher.join()
    assert seen, "ffmpeg never ran"
    assert not ffmpeg_children(os.getpid())
    assert not [pid for pid in seen if psutil.pid_exists(pid) and not _gone(psutil.Process(pid))]
    db.session.expire_all()
    media = db.session.get(Media, media_id)
    assert media.status == "failed" and media.failure_reason
