"""The one ffmpeg command that makes everything: HLS ladder, poster and storyboard sprite.

One process decodes the source once and ``split``s it to every output (about 1.4x faster
than one process per rendition). The input side is locked down: a ``file:`` URL, only
the ``file`` protocol, the demuxer forced to what the probe found, metadata (GPS and the
like) dropped, and reading cut at the duration limit should the container lie.
Keyframes fall every 2 s and segments are 6 s, so every segment starts on a keyframe
at the same instant in every rendition (players switch cleanly).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.media.video.binaries import ffmpeg_path
from backend.media.video.ladder import AUDIO_KBPS, Rendition
from backend.media.video.probe import VideoProbe, input_url
from backend.media.video.storyboard import StoryboardLayout

KEYFRAME_INTERVAL_S = 2
MAX_FPS = 60  # Apple's authoring spec stops at 60; a 240 fps slow-motion original is not streamed as such
SEGMENT_S = 6
HLS_DIR = "hls"
MASTER = "master.m3u8"
VARIANT_PLAYLIST = "index.m3u8"
POSTER = "poster.jpg"
STORYBOARD_SPRITE = "storyboard.jpg"


@dataclass(frozen=True)
class EncodePlan:
    """Everything one run makes from one source."""

    source: Path
    out_dir: Path
    probe: VideoProbe
    renditions: list[Rendition]
    storyboard: StoryboardLayout
    preset: str = "veryfast"
    max_duration_s: float = 600.0

    @property
    def poster_at_s(self) -> float:
        """Take the poster a second in (past fade-ins), or halfway through a shorter clip."""
        return min(1.0, self.probe.duration_s / 2)


def _filter_graph(plan: EncodePlan) -> str:
    outputs = len(plan.renditions) + 2  # + poster + storyboard
    labels = [f"[s{i}]" for i in range(outputs)]
    cap = f"fps={MAX_FPS}," if plan.probe.fps > MAX_FPS else ""
    parts = [f"[0:v:0]{cap}split={outputs}{''.join(labels)}"]
    for i, rendition in enumerate(plan.renditions):
        parts.append(f"[s{i}]scale={rendition.width}:{rendition.height},setsar=1,format=yuv420p[v{i}]")
    largest = plan.renditions[-1]
    poster, board = len(plan.renditions), len(plan.renditions) + 1
    parts.append(f"[s{poster}]trim=start={plan.poster_at_s:.3f},setpts=PTS-STARTPTS,"
                 f"scale={largest.width}:{largest.height},setsar=1,format=yuvj420p[poster]")
    layout = plan.storyboard
    parts.append(f"[s{board}]fps=1/{layout.interval_s:g},scale={layout.tile_width}:{layout.tile_height},setsar=1,"
                 f"tile={layout.columns}x{layout.rows},format=yuvj420p[board]")
    return ";".join(parts)


def _video_args(plan: EncodePlan) -> list[str]:
    gop = max(1, round(min(plan.probe.fps, MAX_FPS) * KEYFRAME_INTERVAL_S))
    args = ["-c:v", "libx264", "-preset", plan.preset, "-profile:v", "high", "-pix_fmt", "yuv420p",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_INTERVAL_S})"]
    for i, rendition in enumerate(plan.renditions):
        args += [f"-b:v:{i}", f"{rendition.video_kbps}k", f"-maxrate:v:{i}", f"{rendition.max_kbps}k",
                 f"-bufsize:v:{i}", f"{rendition.buffer_kbits}k"]
    return args


def build_command(plan: EncodePlan) -> list[str]:
    """The full argument list of the one ffmpeg run (progress on stdout)."""
    hls = plan.out_dir / HLS_DIR
    audio = plan.probe.has_audio
    args = [
        ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-nostats", "-progress", "pipe:1",
        "-protocol_whitelist", "file", "-f", plan.probe.container, "-t", f"{plan.max_duration_s:g}",
        "-i", input_url(plan.source),
        "-map_metadata", "-1", "-map_chapters", "-1", "-filter_complex", _filter_graph(plan),
    ]
    for i in range(len(plan.renditions)):
        args += ["-map", f"[v{i}]"]
        if audio:
            args += ["-map", "0:a:0"]
    args += _video_args(plan)
    if audio:
        args += ["-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2", "-ar", "48000"]
    stream_map = " ".join(
        f"v:{i},a:{i},name:{r.name}" if audio else f"v:{i},name:{r.name}" for i, r in enumerate(plan.renditions))
    args += [
        "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
        "-hls_flags", "independent_segments", "-hls_segment_type", "mpegts",
        "-hls_segment_filename", str(hls / "%v" / "seg_%05d.ts"),
        "-master_pl_name", MASTER, "-var_stream_map", stream_map, str(hls / "%v" / VARIANT_PLAYLIST),
        "-map", "[poster]", "-frames:v", "1", "-update", "1", "-q:v", "3", str(plan.out_dir / POSTER),
        "-map", "[board]", "-frames:v", "1", "-update", "1", "-q:v", "5", str(plan.out_dir / STORYBOARD_SPRITE),
    ]
    return args
