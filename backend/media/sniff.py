"""What a file is, judged from its first bytes (magic numbers), never from its name.

This is the first gate only: a real decode (Pillow) or probe (ffprobe) follows. Active
content (HTML, SVG, XML, scripts, PDFs) and files that look like one thing at the start
and another further in (polyglots) are refused.
"""
from __future__ import annotations

from pathlib import Path

from backend.media.errors import MediaRejected

HEAD = 4096
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),  # EBML (WebM / Matroska)
)
# Markers of content a browser or viewer may execute or render as a document.
_ACTIVE = (b"<html", b"<!doctype", b"<svg", b"<script", b"<?xml", b"<body", b"<iframe", b"%pdf-",
           b"<?php", b"javascript:")


def sniff(path: Path) -> str | None:
    """The media type the bytes start with, or None when unknown or active content."""
    with path.open("rb") as f:
        head = f.read(HEAD)
    if looks_active(head):
        return None
    for offset, magic, media_type in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"heic", b"heix", b"mif1", b"avif"):
            return None  # HEIF/AVIF stills: not accepted by default policies
        return "video/mp4"
    return None


def looks_active(data: bytes) -> bool:
    """Whether ``data`` carries markup or script a browser could render (case-insensitive)."""
    lowered = data.lower()
    return any(marker in lowered for marker in _ACTIVE)


def tail_is_active(path: Path, size: int = 64 * 1024) -> bool:
    """Polyglot check: markup hidden after the image data (e.g. an HTML page after a GIF)."""
    with path.open("rb") as f:
        f.seek(0, 2)
        end = f.tell()
        f.seek(max(0, end - size))
        return looks_active(f.read())


def judge(path: Path, *, allowed: tuple[str, ...], declared: str) -> str:
    """The type the bytes say, when it is allowed and the declared one (else MediaRejected)."""
    detected = sniff(path)
    if detected is None:
        raise MediaRejected("unrecognised_type")
    if detected not in allowed:
        raise MediaRejected(f"type_not_allowed: {detected}")
    if detected != declared:
        raise MediaRejected(f"type_mismatch: declared {declared}, the bytes are {detected}")
    return detected
