"""Images: sniff, decode under pixel/frame limits, auto-orient, drop metadata, WebP presets.

Variants are re-encoded from pixels only: no EXIF, GPS, XMP, ICC or comment travels from
the upload into one. Animated uploads give still variants of their first frame. The
original stays private (served only as an attachment).
"""
from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from backend.media.images.placeholder import placeholder_of
from backend.media.images.presets import PRESETS, Preset
from backend.media.processing import MediaRejected, ProcessingContext, ProcessingResult
from backend.media.sniff import tail_is_active

PIL_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
# EXIF orientations that swap width and height (5-8: transposed/rotated by 90 or 270 degrees).
_TRANSPOSED = {5, 6, 7, 8}


def process(ctx: ProcessingContext) -> ProcessingResult:
    """Make every preset of the kind's policy from ``ctx.source_path``."""
    detected = ctx.detected_type
    if tail_is_active(ctx.source_path):
        raise MediaRejected("active_content")  # a polyglot: an image at the start, a page at the end
    presets = sorted((PRESETS[name] for name in ctx.policy.presets), key=lambda p: -p.size)
    largest = max((p.size for p in presets), default=1)
    image = open_limited(ctx.source_path, max_pixels=ctx.policy.max_pixels, max_frames=ctx.policy.max_frames,
                         expected=detected, draft_size=largest)
    width, height = upright_size(image)
    ImageOps.exif_transpose(image, in_place=True)
    upright = pixels_only(_to_rgb(image))
    ctx.report_progress(20)
    variants, source = {}, upright
    for done, preset in enumerate(presets, start=1):
        path = ctx.work_dir / f"{preset.name}.webp"
        # Largest first, each smaller one from the previous: fewer pixels to resample.
        source = render(source if not preset.square else upright, preset, path)
        key = ctx.store(f"{preset.name}.webp", path, content_type="image/webp")
        variants[preset.name] = {"key": key, "content_type": "image/webp", "width": source.width,
                                 "height": source.height, "bytes": path.stat().st_size}
        ctx.report_progress(20 + 75 * done / len(presets))
    return ProcessingResult(variants=variants, detected_type=detected, width=width, height=height,
                            placeholder=placeholder_of(source))


def open_limited(path: Path, *, max_pixels: int, max_frames: int, expected: str, draft_size: int) -> Image.Image:
    """Open and fully decode the image, refusing bombs before their pixels are allocated.

    JPEGs are decoded at the smallest DCT scale still at least ``draft_size`` on each side
    (Pillow's draft mode): the same output, a fraction of the memory and time.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path, formats=list(PIL_FORMATS))
            if PIL_FORMATS.get(image.format or "") != expected:
                raise MediaRejected("type_mismatch")
            if image.width * image.height > max_pixels:
                raise MediaRejected("too_many_pixels")
            if getattr(image, "n_frames", 1) > max_frames:
                raise MediaRejected("too_many_frames")
            image.info["original_size"] = image.size
            if image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            image.load()
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected("too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise MediaRejected("undecodable_image") from None
    return image


def upright_size(image: Image.Image) -> tuple[int, int]:
    """The full-resolution size as shown (EXIF orientation applied)."""
    width, height = image.info.get("original_size", image.size)
    orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in _TRANSPOSED else (width, height)


def pixels_only(image: Image.Image) -> Image.Image:
    """The image in sRGB with no metadata at all (EXIF, GPS, XMP, comments, ICC) left to save."""
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            image = ImageCms.profileToProfile(image, source, _srgb(), outputMode=image.mode) or image
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unreadable profile: keep the pixels as they are
    image.info.clear()
    return image


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA"):
        return image
    has_alpha = image.mode in ("LA", "PA", "RGBa") or (image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if has_alpha else "RGB")


def render(image: Image.Image, preset: Preset, target: Path) -> Image.Image:
    """Write ``preset`` of ``image`` as WebP (never upscaled); returns the written image."""
    if preset.square:
        side = min(preset.size, image.width, image.height)
        out = ImageOps.fit(image, (side, side), method=Image.Resampling.LANCZOS)
    else:
        scale = min(1.0, preset.size / max(image.width, image.height))
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        out = image if size == image.size else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    out.save(target, "WEBP", quality=preset.quality, method=4)
    return out
