"""Where ffmpeg and ffprobe are: the one place that decides.

Debian's ffmpeg on PATH comes first (it brings ffprobe); otherwise the ffmpeg binary
shipped in the ``imageio-ffmpeg`` wheel. That wheel has no ffprobe, so probing needs
one on PATH (``deploy/install-system-deps.sh`` installs both).
"""
from __future__ import annotations

import functools
import shutil

from backend.media.video.errors import VideoToolMissing


@functools.cache
def ffmpeg_path() -> str:
    """The ffmpeg executable: PATH first, then the imageio-ffmpeg wheel's binary."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is a declared dependency
        raise VideoToolMissing("ffmpeg is not on PATH and imageio-ffmpeg is not installed") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise VideoToolMissing(f"no ffmpeg binary: {exc}") from None


@functools.cache
def ffprobe_path() -> str:
    """The ffprobe executable (PATH only: the imageio-ffmpeg wheel ships none)."""
    found = shutil.which("ffprobe")
    if not found:
        raise VideoToolMissing("ffprobe is not on PATH (deploy/install-system-deps.sh installs Debian's ffmpeg)")
    return found
