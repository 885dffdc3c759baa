"""Local wall-clock times → UTC instants, per IANA zone, DST-correct.

A nonexistent local time (inside a spring-forward gap) moves forward to the first
valid instant after the gap (02:30 on a New York spring-forward day → 03:00 EDT).
An ambiguous one (inside a fall-back overlap) fires once, at its first occurrence.
Unknown or invalid zones use the campaign's fallback zone.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backend.common.locales import is_time_zone

# Launching a little late (a slow click, a queue) must not refuse or skip a send.
GRACE = timedelta(minutes=1)


def is_valid_zone(name: str | None) -> bool:
    """Whether ``name`` is an IANA zone this machine's tz database knows."""
    if not is_time_zone(name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_or_fallback(name: str | None, fallback: str) -> str:
    """``name`` when it is a known zone, else ``fallback``."""
    return name if is_valid_zone(name) else fallback


def local_to_utc(day: date, at: time, zone: str) -> datetime:
    """The UTC instant of wall-clock ``day at`` in ``zone`` (gap → forward, overlap → first)."""
    tz = ZoneInfo(zone)
    wall = datetime.combine(day, at.replace(tzinfo=None))
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant  # exists (fold=0 is the first occurrence when ambiguous)
    # Inside a gap: fold=0 reads the wall time with the old offset, fold=1 with the new
    # one; the transition lies between those two UTC instants. Find its exact second.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = instant
    if low > high:
        low, high = high, low
    after = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


@dataclass(frozen=True)
class ZoneDue:
    """When a campaign is due for recipients in one zone."""

    zone: str  # as stored on devices (may be invalid)
    effective_zone: str  # the zone actually used (fallback for invalid ones)
    due_at: datetime  # UTC
    local: datetime  # wall clock in the effective zone

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form (ISO 8601 instants)."""
        return {
            "time_zone": self.zone,
            "effective_time_zone": self.effective_zone,
            "due_at": self.due_at.isoformat(),
            "due_local": self.local.isoformat(),
        }


def parse_local_time(raw: str) -> time:
    """``HH:MM`` (24 h) → time; raises ValueError when malformed."""
    hours, _, minutes = raw.partition(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(f"not HH:MM: {raw!r}")
    return time(int(hours), int(minutes))


def due_for_zone(schedule: dict, zone: str, *, now: datetime) -> ZoneDue:
    """The due instant of ``schedule`` (now / at / local) for recipients in ``zone``."""
    fallback = schedule.get("fallback_zone") or "UTC"
    effective = zone_or_fallback(zone, fallback)
    tz = ZoneInfo(effective)
    kind = schedule.get("type", "now")
    if kind == "now":
        due = now
    elif kind == "at":
        due = max(datetime.fromisoformat(schedule["send_at"]).astimezone(UTC), now)
    else:
        at = parse_local_time(schedule["local_time"])
        day = date.fromisoformat(schedule["date"]) if schedule.get("date") else now.astimezone(tz).date()
        due = local_to_utc(day, at, effective)
        # A zone where the moment has already passed gets it at the same wall time the
        # next day rather than a burst at launch (what "9 am local" means to a user).
        if due < now - GRACE:
            due = local_to_utc(day + timedelta(days=1), at, effective)
        due = max(due, now)
    return ZoneDue(zone=zone, effective_zone=effective, due_at=due, local=due.astimezone(tz))


def due_by_zone(schedule: dict, zones: Iterable[str], *, now: datetime) -> dict[str, ZoneDue]:
    """``due_for_zone`` for each distinct zone."""
    return {zone: due_for_zone(schedule, zone, now=now) for zone in sorted(set(zones))}


def earliest_possible_due(schedule: dict, *, now: datetime) -> datetime:
    """The first instant any recipient anywhere could be due (for validating expiry)."""
    kind = schedule.get("type", "now")
    if kind == "now":
        return now
    if kind == "at":
        return datetime.fromisoformat(schedule["send_at"]).astimezone(UTC)
    at = parse_local_time(schedule["local_time"])
    if not schedule.get("date"):
        return now
    # UTC+14 (Pacific/Kiritimati) reaches any wall-clock time first.
    return local_to_utc(date.fromisoformat(schedule["date"]), at, "Pacific/Kiritimati")


def latest_possible_due(schedule: dict) -> datetime | None:
    """For a dated local schedule: the instant the wall time passes in the last zone (UTC-12)."""
    if schedule.get("type") != "local" or not schedule.get("date"):
        return None
    return local_to_utc(date.fromisoformat(schedule["date"]), parse_local_time(schedule["local_time"]), "Etc/GMT+12")
