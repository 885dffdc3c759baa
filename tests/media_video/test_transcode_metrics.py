"""A video job reports its transcode time, which every web pod exports for the dashboard."""
from __future__ import annotations

from tests.media_video.clips import make_clip
from tests.ops.test_work_metrics import samples


def test_a_transcode_is_counted_in_the_exported_histogram(client, headers, upload, run_media_jobs, tmp_path):
    before = samples(client).get(("groundwork_media_transcode_seconds_count", ()), 0)
    clip = make_clip(tmp_path / "v.mp4", width=320, height=180, seconds=1).read_bytes()
    done = upload(clip, kind="video", content_type="video/mp4", filename="clip.mp4")
    run_media_jobs()
    assert client.get(f"/v1/media/{done['id']}", headers=headers).get_json()["status"] == "ready"
    found = samples(client)
    assert found[("groundwork_media_transcode_seconds_count", ())] == before + 1
    assert found[("groundwork_media_transcode_seconds_sum", ())] > 0
