"""A blurhash placeholder (about 30 characters) an app paints before the image loads.

``blurhash`` (halcy's pure-Python encoder, kept and dependency-free) runs on a 32 px
copy: a few milliseconds an image, small beside the decode.
"""
from __future__ import annotations

import blurhash
from PIL import Image

COMPONENTS = (4, 3)  # x, y: enough for a soft gradient, short enough for any API answer


def placeholder_of(image: Image.Image) -> str:
    """The blurhash of ``image`` (aspect ratio kept by the 4×3 components)."""
    small = image.convert("RGB")
    small.thumbnail((32, 32), Image.Resampling.BILINEAR)
    raw, width = small.tobytes(), small.width
    rows = [[tuple(raw[(y * width + x) * 3:(y * width + x) * 3 + 3]) for x in range(width)]
            for y in range(small.height)]
    return blurhash.encode(rows, components_x=COMPONENTS[0], components_y=COMPONENTS[1])
