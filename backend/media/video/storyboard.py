"""The scrubbing storyboard: one sprite of thumbnails and the WebVTT that maps time to tiles."""
from __future__ import annotations

import math
from dataclasses import dataclass

MAX_TILES = 100
COLUMNS = 10
TILE_WIDTH = 160


@dataclass(frozen=True)
class StoryboardLayout:
    """Where each thumbnail sits in the sprite and which seconds it covers."""

    interval_s: float
    tiles: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int

    @property
    def sprite_size(self) -> tuple[int, int]:
        """Width and height of the whole sprite image."""
        return self.columns * self.tile_width, self.rows * self.tile_height


def plan_storyboard(*, duration_s: float, width: int, height: int) -> StoryboardLayout:
    """One tile a second, fewer for long videos (at most ``MAX_TILES``)."""
    interval = float(max(1, math.ceil(duration_s / MAX_TILES)))
    tiles = max(1, math.ceil(duration_s / interval))
    columns = min(COLUMNS, tiles)
    tile_height = max(2, int(round(TILE_WIDTH * height / width / 2.0)) * 2)
    return StoryboardLayout(interval, tiles, columns, math.ceil(tiles / columns), TILE_WIDTH, tile_height)


def _timestamp(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def storyboard_vtt(layout: StoryboardLayout, *, duration_s: float, sprite_url: str) -> str:
    """WebVTT cues ``start --> end`` pointing at ``sprite_url#xywh=x,y,w,h``."""
    lines = ["WEBVTT", ""]
    for index in range(layout.tiles):
        start = index * layout.interval_s
        end = min(duration_s, start + layout.interval_s)
        if end <= start:
            break
        x = index % layout.columns * layout.tile_width
        y = index // layout.columns * layout.tile_height
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}",
                  f"{sprite_url}#xywh={x},{y},{layout.tile_width},{layout.tile_height}", ""]
    return "\n".join(lines)
