"""The one-pass transcode on real clips: ladder, segments, keyframes, fallback, poster, storyboard."""
from __future__ import annotations

import re

import pytest

from backend.media.video import transcode
from tests.media_video.clips import keyframe_times, probe_json, rgb_frame


@pytest.fixture(scope="module")
def hd_result(hd_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("hd-out")
    percents: list[int] = []
    result = transcode(hd_clip, out, on_progress=percents.append)
    return result, out, percents


def _streams(path, kind):
    return [s for s in probe_json(path)["streams"] if s["codec_type"] == kind]


def test_transcode_720p_source_gets_360p_and_720p_but_never_1080p(hd_result):
    result, out, _ = hd_result
    assert [(r.name, r.width, r.height) for r in result.renditions] == [("360p", 640, 360), ("720p", 1280, 720)]
    master = (out / result.master).read_text()
    assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x360", "1280x720"]
    assert "360p/index.m3u8" in master and "720p/index.m3u8" in master and "1080p" not in master
    assert 'CODECS="avc1.' in master and "mp4a.40.2" in master


def test_transcode_bitrates_follow_the_ladder(hd_result):
    result, out, _ = hd_result
    bandwidths = [int(b) for b in re.findall(r"BANDWIDTH=(\d+)", (out / result.master).read_text())]
    assert bandwidths[0] < 1_000_000 < 3_000_000 < bandwidths[1] < 8_000_000


def test_transcode_segments_are_about_six_seconds_with_keyframes_every_two(hd_result):
    result, out, _ = hd_result
    playlist = (out / result.variant_playlists["720p"]).read_text()
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", playlist)]
    assert len(durations) == 2
    assert durations[0] == pytest.approx(6.0, abs=0.1)
    assert sum(durations) == pytest.approx(8.0, abs=0.2)
    assert "#EXT-X-ENDLIST" in playlist and "#EXT-X-PLAYLIST-TYPE:VOD" in playlist
    fallback_keys = keyframe_times(out / result.fallback)
    assert [round(t - fallback_keys[0], 1) for t in fallback_keys] == [0.0, 2.0, 4.0, 6.0]


def test_transcode_fallback_is_an_h264_aac_mp4_of_the_largest_rendition_up_to_720p(hd_result):
    result, out, _ = hd_result
    found = probe_json(out / result.fallback)
    assert "mp4" in found["format"]["format_name"]
    (video,) = _streams(out / result.fallback, "video")
    (audio,) = _streams(out / result.fallback, "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1280, 720)
    assert audio["codec_name"] == "aac" and audio["channels"] == 2
    assert float(found["format"]["duration"]) == pytest.approx(8.0, abs=0.2)


def test_transcode_poster_and_storyboard_match_the_vtt(hd_result):
    result, out, _ = hd_result
    (poster,) = _streams(out / result.poster, "video")
    assert (poster["width"], poster["height"]) == (1280, 720)
    (sprite,) = _streams(out / result.storyboard_sprite, "video")
    assert (sprite["width"], sprite["height"]) == (8 * 160, 90)  # one tile a second, one row
    vtt = (out / result.storyboard_vtt).read_text()
    assert vtt.startswith("WEBVTT\n")
    cues = re.findall(r"(\S+) --> (\S+)\nstoryboard\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)", vtt)
    assert len(cues) == 8
    assert cues[0] == ("00:00:00.000", "00:00:01.000", "0", "0", "160", "90")
    assert cues[-1] == ("00:00:07.000", "00:00:08.000", "1120", "0", "160", "90")


def test_transcode_reports_rising_progress_to_99(hd_result):
    _, _, percents = hd_result
    assert percents == sorted(percents)
    assert len(percents) >= 3
    assert percents[-1] == 99
    assert max(p for p in percents[:-1]) >= 80


def test_transcode_strips_source_metadata(tmp_path, small_clip):
    from tests.media_video.clips import ffmpeg

    tagged = tmp_path / "tagged.mp4"
    ffmpeg("-i", str(small_clip), "-c", "copy", "-metadata", "location=+48.8584+002.2945/",
           "-metadata", "title=secret", str(tagged))
    result = transcode(tagged, tmp_path / "out")
    tags = probe_json(tmp_path / "out" / result.fallback)["format"].get("tags", {})
    assert "location" not in tags and "title" not in tags


def test_transcode_small_source_gets_one_rendition_at_its_own_size(tmp_path, small_clip):
    result = transcode(small_clip, tmp_path / "out")
    assert [(r.width, r.height) for r in result.renditions] == [(320, 240)]


def test_transcode_audio_less_source_gives_video_only_outputs(tmp_path, silent_clip):
    out = tmp_path / "out"
    result = transcode(silent_clip, out)
    assert [r.name for r in result.renditions] == ["360p"]
    assert not _streams(out / result.fallback, "audio")
    assert "mp4a" not in (out / result.master).read_text()
    segment = next((out / "hls" / "360p").glob("seg_*.ts"))
    assert [s["codec_type"] for s in probe_json(segment)["streams"]] == ["video"]


def test_transcode_rotated_phone_video_comes_out_upright(tmp_path, rotated_clip):
    out = tmp_path / "out"
    result = transcode(rotated_clip, out)
    assert [(r.width, r.height) for r in result.renditions] == [(360, 640)]  # portrait, short side 360
    (video,) = _streams(out / result.fallback, "video")
    assert (video["width"], video["height"]) == (360, 640)
    assert not any("rotation" in side for side in video.get("side_data_list", []))
    assert "rotate" not in video.get("tags", {})
    # The coded picture had red on top; turned as its display matrix says, red is on one side.
    red_side = "right" if result.probe.rotation == 90 else "left"
    frame = rgb_frame(out / result.fallback, width=360, height=640)

    def pixel(x, y):
        return frame[(y * 360 + x) * 3: (y * 360 + x) * 3 + 3]

    left, right = pixel(60, 320), pixel(300, 320)
    red, blue = (left, right) if red_side == "left" else (right, left)
    assert red[0] > 200 and red[2] < 60, (left, right)
    assert blue[2] > 200 and blue[0] < 60, (left, right)
    (poster,) = _streams(out / result.poster, "video")
    assert (poster["width"], poster["height"]) == (360, 640)


def test_transcode_anamorphic_source_comes_out_with_square_pixels(tmp_path):
    from tests.media_video.clips import ffmpeg

    source = tmp_path / "anamorphic.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=480x360:rate=10:duration=1,setsar=4/3", "-c:v", "libx264",
           "-preset", "ultrafast", str(source))
    out = tmp_path / "out"
    result = transcode(source, out)
    assert [(r.width, r.height) for r in result.renditions] == [(640, 360)]
    (video,) = _streams(out / result.fallback, "video")
    assert (video["width"], video["height"], video["sample_aspect_ratio"]) == (640, 360, "1:1")


def test_transcode_high_frame_rate_source_is_streamed_at_60(tmp_path):
    from tests.media_video.clips import make_clip

    source = make_clip(tmp_path / "fast.mp4", width=320, height=240, seconds=2, fps=120, audio=False)
    out = tmp_path / "out"
    result = transcode(source, out)
    (video,) = _streams(out / result.fallback, "video")
    assert video["avg_frame_rate"] == "60/1"
    keys = keyframe_times(out / result.fallback)
    assert [round(t - keys[0], 1) for t in keys] == [0.0]  # 2 s: one keyframe, GOP of 120 frames at 60 fps
