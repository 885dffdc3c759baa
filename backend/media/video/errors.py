"""Video errors: bad input (not retried, shown to the app) versus a failed run."""
from __future__ import annotations


class VideoRejected(Exception):
    """The input is not an acceptable video; ``reason`` is a stable code shown to the app."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TranscodeFailed(Exception):
    """ffmpeg did not finish: it failed, ran past its time limit or wrote too much."""

    reason = "transcode_failed"


class TranscodeTimedOut(TranscodeFailed):
    """ffmpeg ran past its wall-clock limit and was killed."""

    reason = "transcode_timeout"


class OutputTooLarge(TranscodeFailed):
    """ffmpeg wrote more than the output limit and was killed."""

    reason = "output_too_large"


class VideoToolMissing(RuntimeError):
    """ffmpeg or ffprobe cannot be found on this machine."""
