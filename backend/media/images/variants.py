"""Images: sniff, decode under pixel/frame limits, auto-orient, drop metadata, WebP presets.

Outputs are re-encoded from pixels only: no EXIF, GPS, XMP or ICC text travels from the
upload into a variant. The original stays private (served only as an attachment).
"""
from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from backend.media.images.placeholder import placeholder_of
from backend.media.images.presets import PRESETS, Preset
from backend.media.processing import MediaRejected, ProcessingContext, ProcessingResult
from backend.media.sniff import sniff, tail_is_active

_PIL_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def process(ctx: ProcessingContext) -> ProcessingResult:
    """Make every preset of the kind's policy from ``ctx.source_path``."""
    detected = check_bytes(ctx.source_path, allowed=ctx.policy.content_types)
    with open_limited(ctx.source_path, max_pixels=ctx.policy.max_pixels, max_frames=ctx.policy.max_frames,
                      expected=detected) as image:
        upright = ImageOps.exif_transpose(image)  # a copy without the orientation tag
        upright = _to_rgb(upright)
        ctx.report_progress(20)
        variants = {}
        presets = [PRESETS[name] for name in ctx.policy.presets]
        for done, preset in enumerate(presets, start=1):
            path = ctx.work_dir / f"{preset.name}.webp"
            width, height = render(upright, preset, path)
            key = ctx.store(f"{preset.name}.webp", path, content_type="image/webp")
            variants[preset.name] = {"key": key, "content_type": "image/webp", "width": width,
                                     "height": height, "bytes": path.stat().st_size}
            ctx.report_progress(20 + 75 * done / len(presets))
        return ProcessingResult(variants=variants, detected_type=detected, width=upright.width,
                                height=upright.height, placeholder=placeholder_of(upright))


def check_bytes(path: Path, *, allowed: tuple[str, ...]) -> str:
    """The type the bytes say, if the policy allows it and nothing active hides at the end."""
    detected = sniff(path)
    if detected is None:
        raise MediaRejected("unrecognised_type")
    if detected not in allowed:
        raise MediaRejected(f"type_not_allowed: {detected}")
    if tail_is_active(path):
        raise MediaRejected("active_content")
    return detected


def open_limited(path: Path, *, max_pixels: int, max_frames: int, expected: str) -> Image.Image:
    """Open and fully decode the image, refusing bombs before their pixels are allocated."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path, formats=list(_PIL_FORMATS))
            if _PIL_FORMATS.get(image.format or "") != expected:
                raise MediaRejected("type_mismatch")
            if image.width * image.height > max_pixels:
                raise MediaRejected("too_many_pixels")
            if getattr(image, "n_frames", 1) > max_frames:
                raise MediaRejected("too_many_frames")
            image.load()
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected("too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise MediaRejected("undecodable_image") from None
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA"):
        return image
    has_alpha = image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if has_alpha else "RGB")


def render(image: Image.Image, preset: Preset, target: Path) -> tuple[int, int]:
    """Write ``preset`` of ``image`` as WebP (never upscaled); returns its size."""
    if preset.square:
        side = min(preset.size, image.width, image.height)
        out = ImageOps.fit(image, (side, side), method=Image.Resampling.LANCZOS)
    else:
        out = image.copy()
        out.thumbnail((preset.size, preset.size), Image.Resampling.LANCZOS)
    out.save(target, "WEBP", quality=preset.quality, method=4)
    return out.width, out.height
