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


def oriented_jpeg(width: int = 400, height: int = 200) -> bytes:
    """A JPEG stored sideways (EXIF Orientation 6) with GPS and camera tags: left half red, right blue."""
    image = Image.new("RGB", (width, height), "blue")
    image.paste("red", (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def gif_frames(count: int, size: int = 2) -> bytes:
    """An animated GIF of ``count`` frames."""
    frames = [Image.new("RGB", (size, size), (i % 256, 255 - i % 256, (7 * i) % 256)) for i in range(count)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=10, loop=0)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width``×``height`` with almost no data (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
            + chunk(b"IEND", b""))
