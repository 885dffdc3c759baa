"""Named image presets: the only sizes Groundwork makes (no arbitrary transforms by URL)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One output: longest side (or square side when cropped), WebP quality."""

    name: str
    size: int
    square: bool = False
    quality: int = 80


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("avatar_128", 128, square=True),
    Preset("avatar_512", 512, square=True),
    Preset("thumb_320", 320),
    Preset("display_1080", 1080, quality=82),
)}
