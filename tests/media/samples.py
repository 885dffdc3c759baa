"""Test media made on the fly (Pillow), never committed as files."""
from __future__ import annotations

import io

from PIL import Image


def jpeg(width: int = 640, height: int = 480, *, exif: Image.Exif | None = None, color: str = "teal") -> bytes:
    """A JPEG of the given size, with optional EXIF."""
    image = Image.new("RGB", (width, height), color)
    for x in range(0, width, max(1, width // 8)):  # some structure, so encoders do real work
        image.paste("orange", (x, 0, min(width, x + max(1, width // 16)), height // 2))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def png(width: int = 64, height: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (10, 200, 30, 128)).save(out, "PNG")
    return out.getvalue()
