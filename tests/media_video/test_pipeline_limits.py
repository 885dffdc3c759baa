"""The kind's policy and the VIDEO_* limits applied by the worker: refusals become failed items."""
from __future__ import annotations

import json
import os
import uuid

import pytest

from backend.app import create_app
from backend.config import ConfigError, load_config
from backend.extensions import db
from backend.media.models import Media
from backend.media.policies import load_policies
from backend.media.storage import get_storage
from tests.media.conftest import media_settings
from tests.media_video.clips import ffmpeg_children, make_clip


@pytest.fixture(scope="module")
def app(database_url, services):
    return create_app(media_settings(database_url, services.redis_url, "local", None,
                                     MEDIA_POLICIES=load_policies(json.dumps({"video": {"max_duration_s": 1.5}})),
                                     VIDEO_MAX_OUTPUT_BYTES=2000))


def _processed(client, headers, upload, run_media_jobs, data):
    done = upload(data, kind="video", content_type="video/mp4")
    run_media_jobs()
    return client.get(f"/v1/media/{done['id']}", headers=headers).get_json()


def test_video_longer_than_policy_fails_as_too_long(client, headers, upload, run_media_jobs, tmp_path):
    data = make_clip(tmp_path / "long.mp4", seconds=2, audio=False).read_bytes()
    item = _processed(client, headers, upload, run_media_jobs, data)
    assert (item["status"], item["failure_reason"]) == ("failed", "video_too_long")


def test_video_writing_past_output_limit_fails_and_leaves_only_the_original(app, client, headers, upload,
                                                                            run_media_jobs, tmp_path):
    data = make_clip(tmp_path / "short.mp4", seconds=1).read_bytes()
    item = _processed(client, headers, upload, run_media_jobs, data)
    assert (item["status"], item["failure_reason"]) == ("failed", "output_too_large")
    media = db.session.get(Media, uuid.UUID(item["id"]))
    assert [i.key for i in get_storage(app).iter_keys(media.key_prefix)] == [media.original_key]
    assert not ffmpeg_children(os.getpid())


def test_video_time_limit_must_stay_below_the_job_timeout():
    with pytest.raises(ConfigError, match="VIDEO_TIME_LIMIT_S"):
        load_config({"VIDEO_TIME_LIMIT_S": "600", "JOB_TIMEOUT_S": "600", "DATABASE_URL": "x", "REDIS_URL": "y"})


def test_video_without_ffprobe_on_the_machine_fails_with_a_plain_reason(client, headers, upload, run_media_jobs,
                                                                        tmp_path, monkeypatch):
    from backend.media.video import binaries

    data = make_clip(tmp_path / "short.mp4", seconds=1, audio=False).read_bytes()
    binaries.ffprobe_path.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine with the imageio-ffmpeg wheel only
    try:
        item = _processed(client, headers, upload, run_media_jobs, data)
    finally:
        monkeypatch.undo()
        binaries.ffprobe_path.cache_clear()
    assert (item["status"], item["failure_reason"]) == ("failed", "video_processing_unavailable")
