"""Percent done, read from ffmpeg's ``-progress`` output (``key=value`` lines)."""
from __future__ import annotations

from collections.abc import Callable


class ProgressReader:
    """Feed it ffmpeg's progress lines; it calls ``report(percent)`` each time the whole percent rises."""

    def __init__(self, *, duration_s: float, report: Callable[[int], None], ceiling: int = 99):
        self._duration_us = max(duration_s, 0.001) * 1_000_000
        self._report = report
        self._ceiling = ceiling
        self.percent = 0

    def feed(self, line: str) -> None:
        """Take one line; only ``out_time_us`` (``out_time_ms`` in older builds, also microseconds) counts."""
        key, _, value = line.partition("=")
        if key not in ("out_time_us", "out_time_ms"):
            return
        try:
            done_us = int(value)
        except ValueError:  # "N/A" before the first frame
            return
        percent = min(self._ceiling, int(done_us * 100 // self._duration_us))
        if percent > self.percent:
            self.percent = percent
            self._report(percent)
