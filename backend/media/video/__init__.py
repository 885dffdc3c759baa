"""Video: probe, limits and one ffmpeg pass to an HLS ladder, MP4 fallback, poster and storyboard.

``transcode(source, out_dir)`` is the whole pipeline on local files; it knows nothing of
storage, the database or jobs.
"""
from backend.media.video.errors import OutputTooLarge, TranscodeFailed, TranscodeTimedOut, VideoRejected
from backend.media.video.transcode import TranscodeResult, VideoLimits, transcode

__all__ = ["OutputTooLarge", "TranscodeFailed", "TranscodeResult", "TranscodeTimedOut", "VideoLimits",
           "VideoRejected", "transcode"]
