"""What a video file is, read by ffprobe, which may open nothing but that one local file.

A crafted upload can be an HLS playlist or a concat list naming other files or URLs
(the classic ffmpeg SSRF / local file read). So ffprobe gets the file as a ``file:``
URL, ``-protocol_whitelist file`` and ``-format_whitelist`` of the containers we accept:
a playlist or concat list never reaches its demuxer. The transcoder then forces the
demuxer found here (``-f``), so ffmpeg cannot guess differently.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from backend.media.video.binaries import ffprobe_path
from backend.media.video.errors import VideoRejected

# ffprobe's demuxer name -> the name ffmpeg's ``-f`` takes. MP4/QuickTime and Matroska/WebM only.
CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": "mov", "matroska,webm": "matroska"}
FORMAT_WHITELIST = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"
PROBE_TIMEOUT_S = 30
PROBE_BYTES = 20_000_000  # ffprobe reads at most this much to find the streams


@dataclass(frozen=True)
class VideoProbe:
    """The facts the ladder needs; width/height are as displayed (rotation and pixel aspect applied)."""

    container: str  # ffmpeg -f name: "mov" or "matroska"
    duration_s: float
    width: int
    height: int
    rotation: int  # degrees the player must turn the coded picture (0, 90, 180, 270)
    fps: float
    video_codec: str
    has_audio: bool


def input_url(path: Path) -> str:
    """The path as a ``file:`` URL, so a name like ``http:x`` is never taken for a protocol."""
    return "file:" + str(path.resolve())


def _run_ffprobe(path: Path) -> dict[str, Any]:
    args = [
        ffprobe_path(), "-hide_banner", "-v", "error",
        "-protocol_whitelist", "file", "-format_whitelist", FORMAT_WHITELIST,
        "-probesize", str(PROBE_BYTES),
        "-print_format", "json", "-show_format", "-show_streams", input_url(path),
    ]
    try:
        done = subprocess.run(  # noqa: S603 - our own binary with arguments we build
            args, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise VideoRejected("unreadable_video", "probing took too long") from None
    if done.returncode != 0:
        raise VideoRejected("unsupported_container", done.stderr.decode("utf-8", "replace").strip()[-300:])
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise VideoRejected("unreadable_video", "ffprobe printed no JSON") from None


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise degrees to turn the picture upright, from the display matrix or the old tag."""
    degrees: float = 0
    for side in stream.get("side_data_list") or ():
        if "rotation" in side:
            degrees = -float(side["rotation"])  # the matrix angle is counter-clockwise
            break
    else:
        tag = (stream.get("tags") or {}).get("rotate")
        if tag is not None:
            degrees = float(tag)
    return int(round(degrees / 90.0)) * 90 % 360


def _fps(stream: dict[str, Any]) -> float:
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            value = Fraction(stream.get(key) or "0/1")
        except (ValueError, ZeroDivisionError):
            continue
        if value > 0:
            return float(value)
    return 30.0


def _pixel_aspect(stream: dict[str, Any]) -> float:
    """The sample (pixel) aspect ratio; 1 when square, unknown or absurd."""
    try:
        value = Fraction(str(stream.get("sample_aspect_ratio") or "1:1").replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return 1.0
    return float(value) if Fraction(1, 4) <= value <= 4 else 1.0


def _duration(found: dict[str, Any], video: dict[str, Any]) -> float:
    for raw in ((found.get("format") or {}).get("duration"), video.get("duration")):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if value > 0:
            return value
    raise VideoRejected("unreadable_video", "no duration")


def probe_video(path: Path) -> VideoProbe:
    """Probe ``path``; raises VideoRejected when it is not a video we accept."""
    found = _run_ffprobe(path)
    format_name = (found.get("format") or {}).get("format_name", "")
    if format_name not in CONTAINERS:
        raise VideoRejected("unsupported_container", format_name)
    streams = found.get("streams") or []
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    if not videos:
        raise VideoRejected("no_video_stream")
    video = videos[0]
    coded_w, coded_h = int(video.get("width") or 0), int(video.get("height") or 0)
    if coded_w <= 0 or coded_h <= 0:
        raise VideoRejected("unreadable_video", "no picture size")
    coded_w = max(2, round(coded_w * _pixel_aspect(video)))  # anamorphic: as wide as it is shown
    rotation = _rotation(video)
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    return VideoProbe(
        container=CONTAINERS[format_name], duration_s=_duration(found, video), width=width, height=height,
        rotation=rotation, fps=_fps(video), video_codec=str(video.get("codec_name") or ""),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
    )
