"""Probing: the facts of real clips, and hostile or broken files refused before ffmpeg runs."""
from __future__ import annotations

import pytest

from backend.media.video.errors import VideoRejected
from backend.media.video.probe import probe_video
from backend.media.video.transcode import VideoLimits, check_limits, transcode
from tests.media_video.clips import make_clip


def test_probe_clip_reads_duration_size_and_audio(small_clip):
    probe = probe_video(small_clip)
    assert probe.container == "mov"
    assert probe.duration_s == pytest.approx(2.0, abs=0.1)
    assert (probe.width, probe.height, probe.rotation) == (320, 240, 0)
    assert probe.fps == pytest.approx(30)
    assert probe.video_codec == "h264"
    assert probe.has_audio


def test_probe_silent_clip_has_no_audio(silent_clip):
    assert not probe_video(silent_clip).has_audio


def test_probe_rotated_clip_reports_display_size(rotated_clip):
    probe = probe_video(rotated_clip)
    assert probe.rotation in (90, 270)
    assert (probe.width, probe.height) == (360, 640)


def test_probe_webm_is_accepted(clips):
    path = clips / "clip.webm"
    from tests.media_video.clips import ffmpeg

    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1", "-c:v", "libvpx", "-b:v", "200k",
           str(path))
    assert probe_video(path).container == "matroska"


HOSTILE = {
    # An HLS playlist dressed as MP4, reaching for a local file and a URL.
    "playlist.mp4": "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXTINF:1,\n"
                    "http://127.0.0.1:18299/x.ts\n#EXT-X-ENDLIST\n",
    # A concat list naming another file.
    "concat.mov": "ffconcat version 1.0\nfile '/etc/passwd'\n",
    "page.mp4": "<html><script>alert(1)</script></html>",
    "empty.mp4": "",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_probe_hostile_or_non_video_file_is_rejected(tmp_path, name):
    path = tmp_path / name
    path.write_text(HOSTILE[name])
    with pytest.raises(VideoRejected) as caught:
        probe_video(path)
    assert caught.value.reason == "unsupported_container"


def test_transcode_playlist_input_is_rejected_and_writes_nothing(tmp_path):
    path = tmp_path / "playlist.mp4"
    path.write_text(HOSTILE["playlist.mp4"])
    with pytest.raises(VideoRejected):
        transcode(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_probe_truncated_file_is_rejected(tmp_path, small_clip):
    path = tmp_path / "truncated.mp4"
    path.write_bytes(small_clip.read_bytes()[:2000])
    with pytest.raises(VideoRejected):
        probe_video(path)


def test_probe_name_that_looks_like_a_url_is_read_as_a_local_file(tmp_path, small_clip):
    path = tmp_path / "http:127.0.0.1"
    path.write_bytes(small_clip.read_bytes())
    assert probe_video(path).width == 320


def test_limits_refuse_too_long_video(small_clip):
    with pytest.raises(VideoRejected) as caught:
        check_limits(probe_video(small_clip), VideoLimits(max_duration_s=1.5))
    assert caught.value.reason == "video_too_long"


def test_limits_refuse_too_large_video(tmp_path):
    clip = make_clip(tmp_path / "wide.mp4", width=640, height=120, seconds=1, audio=False)
    with pytest.raises(VideoRejected) as caught:
        transcode(clip, tmp_path / "out", limits=VideoLimits(max_dimension=480))
    assert caught.value.reason == "video_too_large"


def test_probe_audio_only_mp4_has_no_video_stream(tmp_path):
    from tests.media_video.clips import ffmpeg

    path = tmp_path / "voice.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(path))
    with pytest.raises(VideoRejected) as caught:
        probe_video(path)
    assert caught.value.reason == "no_video_stream"
