"""Transcode one local video file into everything an app plays it with.

``transcode(source, out_dir)`` probes the file, checks it against the limits, runs the
one ffmpeg pass (HLS ladder, poster, storyboard sprite), then copies the fallback
rendition's segments into an MP4 without re-encoding and writes the storyboard WebVTT.
Nothing is read but ``source``; nothing is written outside ``out_dir``.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend.media.video.binaries import ffmpeg_path
from backend.media.video.command import (
    HLS_DIR,
    MASTER,
    POSTER,
    STORYBOARD_SPRITE,
    VARIANT_PLAYLIST,
    EncodePlan,
    build_command,
)
from backend.media.video.errors import VideoRejected
from backend.media.video.ladder import Rendition, choose_renditions, fallback_rendition
from backend.media.video.probe import VideoProbe, input_url, probe_video
from backend.media.video.progress import ProgressReader
from backend.media.video.runner import RunLimits, run_limited
from backend.media.video.storyboard import StoryboardLayout, plan_storyboard, storyboard_vtt

FALLBACK = "fallback.mp4"
STORYBOARD_VTT = "storyboard.vtt"
ENCODE_SHARE = 95  # percent of the progress bar the encode takes; the rest is the fallback copy


@dataclass(frozen=True)
class VideoLimits:
    """What a source may be and how long and large its processing may get."""

    max_duration_s: float = 600.0
    max_dimension: int = 4096
    time_limit_s: float = 1800.0
    max_output_bytes: int = 8 * 1024**3
    preset: str = "veryfast"
    nice: int = 10

    def run_limits(self) -> RunLimits:
        """The bounds of each ffmpeg run."""
        return RunLimits(time_limit_s=self.time_limit_s, max_output_bytes=self.max_output_bytes, nice=self.nice)


@dataclass(frozen=True)
class TranscodeResult:
    """What was made; paths are relative to the output folder."""

    probe: VideoProbe
    renditions: list[Rendition]
    master: str
    variant_playlists: dict[str, str]
    fallback: str
    poster: str
    storyboard_sprite: str
    storyboard_vtt: str
    fallback_rendition: str
    storyboard: StoryboardLayout
    files: list[str] = field(default_factory=list)

    @property
    def renditions_by_name(self) -> dict[str, Rendition]:
        """The renditions keyed by name (``360p``...)."""
        return {r.name: r for r in self.renditions}


def check_limits(probe: VideoProbe, limits: VideoLimits) -> None:
    """Refuse a source longer or larger than the limits allow."""
    if probe.duration_s > limits.max_duration_s:
        raise VideoRejected("video_too_long", f"{probe.duration_s:.1f} s > {limits.max_duration_s:g} s")
    if max(probe.width, probe.height) > limits.max_dimension:
        raise VideoRejected("video_too_large", f"{probe.width}x{probe.height} > {limits.max_dimension}")


def _make_fallback(out_dir: Path, rendition: Rendition, limits: VideoLimits) -> Path:
    """Join the rendition's MPEG-TS segments (they concatenate byte for byte) and remux to MP4."""
    segments = sorted((out_dir / HLS_DIR / rendition.name).glob("seg_*.ts"))
    joined = out_dir / "fallback.ts"
    with joined.open("wb") as target:
        for segment in segments:
            with segment.open("rb") as part:
                shutil.copyfileobj(part, target)
    fallback = out_dir / FALLBACK
    try:
        run_limited([
            ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-protocol_whitelist", "file", "-f", "mpegts", "-i", input_url(joined),
            "-map", "0", "-c", "copy", "-movflags", "+faststart", str(fallback),
        ], output_dir=out_dir, limits=limits.run_limits())
    finally:
        joined.unlink(missing_ok=True)
    return fallback


def transcode(
    source: Path, out_dir: Path, *, limits: VideoLimits | None = None,
    on_progress: Callable[[int], None] | None = None, probe: VideoProbe | None = None,
) -> TranscodeResult:
    """Make the HLS ladder, MP4 fallback, poster and storyboard of ``source`` in ``out_dir``.

    Pass ``probe`` when the caller has probed ``source`` already (it is not probed twice).
    """
    limits = limits or VideoLimits()
    probe = probe or probe_video(source)
    check_limits(probe, limits)
    renditions = choose_renditions(probe)
    layout = plan_storyboard(duration_s=probe.duration_s, width=probe.width, height=probe.height)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = EncodePlan(source=source, out_dir=out_dir, probe=probe, renditions=renditions, storyboard=layout,
                      preset=limits.preset, max_duration_s=limits.max_duration_s)
    report = on_progress or (lambda _percent: None)
    reader = ProgressReader(duration_s=probe.duration_s, report=lambda p: report(p * ENCODE_SHARE // 100))
    run_limited(build_command(plan), output_dir=out_dir, limits=limits.run_limits(), on_line=reader.feed)
    fallback = fallback_rendition(renditions)
    _make_fallback(out_dir, fallback, limits)
    (out_dir / STORYBOARD_VTT).write_text(
        storyboard_vtt(layout, duration_s=probe.duration_s, sprite_url=STORYBOARD_SPRITE), encoding="utf-8")
    report(99)
    files = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    return TranscodeResult(
        probe=probe, renditions=renditions, master=f"{HLS_DIR}/{MASTER}",
        variant_playlists={r.name: f"{HLS_DIR}/{r.name}/{VARIANT_PLAYLIST}" for r in renditions},
        fallback=FALLBACK, poster=POSTER, storyboard_sprite=STORYBOARD_SPRITE, storyboard_vtt=STORYBOARD_VTT,
        fallback_rendition=fallback.name, storyboard=layout, files=files,
    )
