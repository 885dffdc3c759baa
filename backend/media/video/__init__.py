"""Video: probe, limits and one ffmpeg pass to an HLS ladder, MP4 fallback, poster and storyboard.

``transcode(source, out_dir)`` is the whole pipeline on local files and knows nothing of
storage, the database or jobs; ``process(ctx)`` is the media pipeline's video processor
(``backend.media.processing``), which runs it and stores what it made.
"""
from backend.media.video.errors import OutputTooLarge, TranscodeFailed, TranscodeTimedOut, VideoRejected
from backend.media.video.processor import process
from backend.media.video.transcode import TranscodeResult, VideoLimits, transcode

__all__ = ["OutputTooLarge", "TranscodeFailed", "TranscodeResult", "TranscodeTimedOut", "VideoLimits",
           "VideoRejected", "process", "transcode"]
