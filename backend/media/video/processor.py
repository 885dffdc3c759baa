"""The video processor of the media pipeline: ``process(ctx)`` for items of the video family.

The seam has judged the bytes (``ctx.detected_type``); this adds the polyglot check (no
markup at the end), probes (the container must be the type the bytes claim), transcodes
within the kind's policy and the VIDEO_* settings, then stores every file under the
item's prefix: segments and variant playlists first, the master playlist last among the
HLS files, so the variants it names exist once it does. Bad input and a run that cannot
finish (time or size limit, ffmpeg error) fail the item with a reason; a storage error
propagates, so the job is retried.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from flask import current_app
from PIL import Image

from backend.media.errors import MediaRejected
from backend.media.images.placeholder import placeholder_of
from backend.media.policies import KindPolicy
from backend.media.processing import ProcessingContext, ProcessingResult
from backend.media.sniff import tail_is_active
from backend.media.video.errors import TranscodeFailed, VideoRejected, VideoToolMissing
from backend.media.video.probe import probe_video
from backend.media.video.transcode import TranscodeResult, VideoLimits, check_limits, transcode
from backend.operations.work_metrics import observe_transcode_seconds

log = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
CONTENT_TYPES = {".m3u8": PLAYLIST_TYPE, ".ts": "video/mp2t", ".mp4": "video/mp4", ".jpg": "image/jpeg",
                 ".vtt": "text/vtt"}
# Which container the sniffed type must probe as (a WebM header over an MP4 body is refused).
CONTAINER_OF_TYPE = {"video/mp4": "mov", "video/quicktime": "mov", "video/webm": "matroska"}
STORE_THREADS = 8
ENCODE_SHARE = 90  # percent of the progress bar the transcode takes; storing takes the rest


def limits_for(policy: KindPolicy, config: Any) -> VideoLimits:
    """The kind's duration and size limits with the VIDEO_* run limits."""
    return VideoLimits(max_duration_s=policy.max_duration_s, max_dimension=policy.max_dimension,
                       time_limit_s=config["VIDEO_TIME_LIMIT_S"], max_output_bytes=config["VIDEO_MAX_OUTPUT_BYTES"],
                       preset=config["VIDEO_PRESET"], nice=config["VIDEO_NICE"])


def process(ctx: ProcessingContext) -> ProcessingResult:
    """Transcode ``ctx.source_path`` and store the ladder, fallback, poster and storyboard."""
    detected = ctx.detected_type
    if tail_is_active(ctx.source_path):
        raise MediaRejected("active_content")  # a polyglot: a video at the start, a page at the end
    limits = limits_for(ctx.policy, current_app.config)
    out = ctx.work_dir / "video"
    started = time.monotonic()
    try:
        probe = probe_video(ctx.source_path)
        if CONTAINER_OF_TYPE.get(detected) != probe.container:
            raise VideoRejected("type_mismatch", f"{detected} probed as {probe.container}")
        check_limits(probe, limits)
        made = transcode(ctx.source_path, out, limits=limits, probe=probe,
                         on_progress=lambda percent: ctx.report_progress(percent * ENCODE_SHARE / 100))
    except VideoRejected as exc:
        raise MediaRejected(exc.reason) from None
    except TranscodeFailed as exc:
        log.warning("video %s: %s", ctx.media_id, exc)
        raise MediaRejected(exc.reason) from None
    except VideoToolMissing as exc:  # an operator's fix, not the upload's fault: say so plainly
        log.error("video %s not processed: %s", ctx.media_id, exc)
        raise MediaRejected("video_processing_unavailable") from None
    encoded = time.monotonic()
    observe_transcode_seconds(encoded - started)
    variants = _store_all(ctx, out, made)
    log.info("video %s: %.1f s %dx%d -> %s in %.1f s, %d files stored in %.1f s", ctx.media_id, probe.duration_s,
             probe.width, probe.height, "/".join(r.name for r in made.renditions), encoded - started,
             len(made.files), time.monotonic() - encoded)
    return ProcessingResult(variants=variants, detected_type=detected, width=probe.width, height=probe.height,
                            duration_s=round(probe.duration_s, 3), placeholder=_placeholder(out / made.poster))


def _store_all(ctx: ProcessingContext, out: Path, made: TranscodeResult) -> dict[str, dict[str, Any]]:
    """Store every made file (the master playlist after all it names); returns the variants."""
    firsts = [name for name in made.files if name != made.master]
    keys: dict[str, str] = {}

    def store(name: str) -> str:
        return ctx.store(name, out / name, content_type=CONTENT_TYPES[Path(name).suffix])

    # Segments go up a few at a time (a long video has hundreds; each is a round trip to S3);
    # progress is reported from this thread, which owns the database session.
    with ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="video-store") as pool:
        pending = {pool.submit(store, name): name for name in firsts}
        try:
            for done, future in enumerate(as_completed(pending), start=1):
                keys[pending[future]] = future.result()
                ctx.report_progress(ENCODE_SHARE + (99 - ENCODE_SHARE) * done / (len(firsts) + 1))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    keys[made.master] = store(made.master)
    fallback = made.renditions_by_name[made.fallback_rendition]
    largest = made.renditions[-1]

    def variant(name: str, **extra: Any) -> dict[str, Any]:
        return {"key": keys[name], "content_type": CONTENT_TYPES[Path(name).suffix],
                "bytes": (out / name).stat().st_size, **extra}

    # The master playlist and the VTT name their parts by relative paths, which a plain signed
    # URL cannot follow: they are handed out by the playback routes, rewritten and signed.
    return {
        "hls": variant(made.master, width=largest.width, height=largest.height, deliver=False, renditions=[
            {"name": r.name, "width": r.width, "height": r.height, "video_kbps": r.video_kbps,
             "playlist_key": keys[made.variant_playlists[r.name]]} for r in made.renditions]),
        "mp4": variant(made.fallback, width=fallback.width, height=fallback.height),
        "poster": variant(made.poster, width=largest.width, height=largest.height),
        "storyboard": variant(made.storyboard_sprite, width=made.storyboard.sprite_size[0],
                              height=made.storyboard.sprite_size[1]),
        "storyboard_vtt": variant(made.storyboard_vtt, deliver=False),
    }


def _placeholder(poster: Path) -> str | None:
    """The media domain's placeholder, made from the poster frame."""
    with Image.open(poster) as image:
        image.load()
        return placeholder_of(image.convert("RGB"))
