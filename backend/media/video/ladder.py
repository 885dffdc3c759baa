"""Which renditions a video gets: 360p/720p/1080p, never larger than the source.

Bitrates are the rows of Apple's HLS authoring specification (H.264 table) for these
sizes: 640x360 at 365 kb/s, 1280x720 at 3000 kb/s, 1920x1080 at 6000 kb/s average, with
peaks capped at 1.5x (the spec allows up to 2x for VOD) and AAC stereo at 128 kb/s.
A "p" is the short side, so a portrait phone video gets 1080x1920, not 608x1080.
"""
from __future__ import annotations

from dataclasses import dataclass

from backend.media.video.probe import VideoProbe


@dataclass(frozen=True)
class Rung:
    """One line of the ladder before it meets a source."""

    name: str
    short_side: int
    video_kbps: int


@dataclass(frozen=True)
class Rendition:
    """One rendition of one source: size and rate."""

    name: str
    width: int
    height: int
    video_kbps: int

    @property
    def max_kbps(self) -> int:
        """Peak rate the encoder may reach (VBV maxrate)."""
        return self.video_kbps * 3 // 2

    @property
    def buffer_kbits(self) -> int:
        """VBV buffer: two seconds of the average rate."""
        return self.video_kbps * 2


LADDER = (Rung("360p", 360, 365), Rung("720p", 720, 3000), Rung("1080p", 1080, 6000))
AUDIO_KBPS = 128
FALLBACK_MAX_SHORT_SIDE = 720  # the MP4 fallback is the largest rendition up to 720p


def _even(value: float) -> int:
    return max(2, int(round(value / 2.0)) * 2)


def _sized(rung: Rung, width: int, height: int, short_side: int) -> Rendition:
    scale = short_side / min(width, height)
    return Rendition(rung.name, _even(width * scale), _even(height * scale), rung.video_kbps)


def choose_renditions(probe: VideoProbe, ladder: tuple[Rung, ...] = LADDER) -> list[Rendition]:
    """The rungs at or below the source's short side; a tiny source gets one at its own size."""
    source_short = min(probe.width, probe.height)
    chosen = [_sized(rung, probe.width, probe.height, rung.short_side)
              for rung in ladder if rung.short_side <= source_short]
    if not chosen:
        smallest = ladder[0]
        chosen = [_sized(Rung(f"{_even(source_short)}p", source_short, smallest.video_kbps), probe.width,
                         probe.height, _even(source_short))]
    return chosen


def fallback_rendition(renditions: list[Rendition]) -> Rendition:
    """The rendition copied into the MP4 fallback."""
    fitting = [r for r in renditions if min(r.width, r.height) <= FALLBACK_MAX_SHORT_SIDE]
    return fitting[-1] if fitting else renditions[0]
