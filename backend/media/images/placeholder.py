"""A blurhash placeholder (about 30 characters) an app paints before the image loads.

``blurhash`` (halcy's pure-Python encoder, kept and dependency-free) runs on a 20 px
copy: a few milliseconds an image, small beside the decode.
"""
from __future__ import annotations

import blurhash
from PIL import Image

COMPONENTS = (4, 3)  # x, y: enough for a soft gradient, short enough for any API answer


def placeholder_of(image: Image.Image) -> str:
    """The blurhash of ``image`` (pass the smallest variant: it is already near 32 px)."""
    small = image.convert("RGB") if image.mode != "RGB" else image
    scale = 20 / max(small.width, small.height)  # blurhash needs little: 20 px keeps it near 5 ms
    if scale < 1:
        small = small.resize((max(1, round(small.width * scale)), max(1, round(small.height * scale))),
                             Image.Resampling.BILINEAR, reducing_gap=2.0)
    raw, width = small.tobytes(), small.width
    rows = [[tuple(raw[(y * width + x) * 3:(y * width + x) * 3 + 3]) for x in range(width)]
            for y in range(small.height)]
    return blurhash.encode(rows, components_x=COMPONENTS[0], components_y=COMPONENTS[1])
