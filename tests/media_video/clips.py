"""Tiny test videos made on the spot with ffmpeg's lavfi sources (nothing committed)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from backend.media.video.binaries import ffmpeg_path, ffprobe_path


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clip(path: Path, *, width: int = 320, height: int = 240, seconds: float = 2, fps: int = 30,
              audio: bool = True) -> Path:
    """A testsrc clip with a sine tone (or none), H.264/AAC in MP4."""
    args = ["-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def make_rotated_clip(path: Path, *, width: int = 320, height: int = 240, seconds: float = 2) -> Path:
    """Red top half, blue bottom half, stored landscape with a display matrix turning it 90 degrees."""
    plain = path.with_name(path.stem + "-plain.mp4")
    half = height // 2
    ffmpeg("-f", "lavfi", "-i",
           f"color=red:size={width}x{half}:d={seconds}[a];color=blue:size={width}x{half}:d={seconds}[b];"
           "[a][b]vstack,format=yuv420p",
           "-c:v", "libx264", "-preset", "ultrafast", str(plain))
    try:  # ffmpeg 6 and later: -display_rotation on the input; ffmpeg 5: the rotate tag
        ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(path))
    except subprocess.CalledProcessError:
        ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    os.unlink(plain)
    return path


def probe_json(path: Path, *extra: str) -> dict:
    """ffprobe's JSON of a file we made (a trusted output)."""
    done = subprocess.run([ffprobe_path(), "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                           *extra, str(path)], check=True, capture_output=True)
    return json.loads(done.stdout)


def keyframe_times(path: Path) -> list[float]:
    """Presentation times of the video keyframes of a file."""
    found = probe_json(path, "-select_streams", "v:0", "-skip_frame", "nokey", "-show_entries", "frame=pts_time")
    return [float(f["pts_time"]) for f in found.get("frames", [])]


def rgb_frame(path: Path, *, width: int, height: int) -> bytes:
    """The first frame of ``path`` as raw RGB bytes."""
    done = subprocess.run([ffmpeg_path(), "-nostdin", "-loglevel", "error", "-i", str(path), "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-"],
                          check=True, capture_output=True)
    return done.stdout


def ffmpeg_children(parent_pid: int) -> list[int]:
    """Running ffmpeg processes whose parent is ``parent_pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if name.startswith("ffmpeg") and int(fields[1]) == parent_pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"
