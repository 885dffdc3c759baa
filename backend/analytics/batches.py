"""Checking an ingest batch event by event, and placing each event in time.

The time rule (PostHog's skew correction, then a clamp and a refusal):

1. The batch may carry ``sent_at``, the client's clock when it sent the batch. Each
   event's time is then ``received_at + (timestamp - sent_at)``: the client's clock
   error cancels out. Without ``sent_at`` the event's ``timestamp`` is taken as is;
   without a ``timestamp`` the event happened when it was received.
2. An event placed more than ``ANALYTICS_MAX_FUTURE_S`` after the receive time is
   clamped to the receive time (kept, and listed in ``clamped``).
3. An event placed more than ``ANALYTICS_MAX_EVENT_AGE_DAYS`` before the receive time is
   refused (``too_old``); its client event ID may no longer be remembered, so accepting
   it could count a retry twice.

Any other problem of one event refuses that event with a stable code; the rest of the
batch is kept.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

PLATFORMS = ("ios", "android", "web", "other")
NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,200}\Z")  # \Z: "$" would pass a final newline
SHORT_TEXT = re.compile(r"^[^\x00-\x1f\x7f]+\Z")
MAX_SHORT_TEXT = {"session_id": 128, "app_version": 64}
# The form clients send (any case); other spellings uuid.UUID accepts take the slow path.
_HYPHENATED_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# orjson encodes an event's properties about ten times faster than json; this encoder (one
# for every event: json.dumps with options builds a new one per call) decides the cases
# orjson cannot (NaN, integers past 64 bits).
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


@dataclass(frozen=True)
class Limits:
    """The ingest limits (from config)."""

    max_future: timedelta
    max_age: timedelta
    max_properties_bytes: int


@dataclass
class CheckedBatch:
    """The accepted events as columns (ready for the write path) and the refusals."""

    event_ids: list[str] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    session_ids: list[str | None] = field(default_factory=list)
    platforms: list[str | None] = field(default_factory=list)
    app_versions: list[str | None] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    clamped: list[int] = field(default_factory=list)


class EventRefused(Exception):
    """One event cannot be stored; ``code`` tells the client why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def encode_properties(properties: dict[str, Any]) -> str | None:
    """The properties as compact JSON PostgreSQL's jsonb accepts (None: NUL or a non-finite number)."""
    try:
        encoded = orjson.dumps(properties).decode()
    except TypeError:  # an integer past 64 bits, a key that is not a string: the standard encoder's rules
        encoded = None
    if encoded is None or "null" in encoded:  # orjson writes NaN and Infinity as null: only json refuses them
        try:
            encoded = _ENCODE(properties)
        except ValueError:
            return None
    return None if "\\u0000" in encoded else encoded


def parse_time(value: Any) -> datetime:
    """An ISO 8601 instant with a UTC offset."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("not an ISO 8601 string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no UTC offset")
    return parsed


def place_in_time(timestamp: datetime | None, *, sent_at: datetime | None, received_at: datetime,
                  limits: Limits) -> tuple[datetime, bool]:
    """The event's corrected time, and whether it was clamped (raises ``EventRefused`` when too old)."""
    if timestamp is None:
        return received_at, False
    placed = received_at + (timestamp - sent_at) if sent_at is not None else timestamp
    if placed > received_at + limits.max_future:
        return received_at, True
    if placed < received_at - limits.max_age:
        raise EventRefused("too_old", f"The event is more than {limits.max_age.days} days old.")
    return placed, False


def _text(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_SHORT_TEXT[key] or not SHORT_TEXT.match(value):
        raise EventRefused(f"invalid_{key}", f"{key} is a string of 1-{MAX_SHORT_TEXT[key]} characters.")
    return value


def _event_id(value: Any) -> str:
    """The client's event UUID in canonical form."""
    if isinstance(value, str) and _HYPHENATED_UUID.match(value):
        return value.lower()
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise EventRefused("invalid_event_id", "event_id is a UUID chosen by the client.") from None


def _check_one(event: Any, *, sent_at: datetime | None, received_at: datetime, limits: Limits,
               defaults: dict[str, str | None]) -> tuple[str, datetime, bool, tuple]:
    if not isinstance(event, dict):
        raise EventRefused("invalid_event", "Each event is a JSON object.")
    event_id = _event_id(event.get("event_id"))
    name = event.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise EventRefused("invalid_name", "name is 1-200 characters without control characters.")
    timestamp = None
    if event.get("timestamp") is not None:
        try:
            timestamp = parse_time(event["timestamp"])
        except ValueError:
            raise EventRefused("invalid_timestamp", "timestamp is an ISO 8601 instant with a UTC offset.") from None
    properties = event.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise EventRefused("invalid_properties", "properties is a JSON object.")
    encoded = encode_properties(properties)
    if encoded is None:
        raise EventRefused("invalid_properties", "properties cannot hold NUL characters or non-finite numbers.")
    if len(encoded) * 4 > limits.max_properties_bytes and len(encoded.encode()) > limits.max_properties_bytes:
        raise EventRefused("properties_too_large",
                           f"properties take more than {limits.max_properties_bytes} bytes as JSON.")
    platform = event.get("platform", defaults["platform"])
    if platform is not None and platform not in PLATFORMS:
        raise EventRefused("invalid_platform", f"platform is one of {', '.join(PLATFORMS)}.")
    session_id = _text(event, "session_id")
    app_version = _text(event, "app_version") if "app_version" in event else defaults["app_version"]
    placed, clamped = place_in_time(timestamp, sent_at=sent_at, received_at=received_at, limits=limits)
    return event_id, placed, clamped, (name, session_id, platform, app_version, encoded)


def check_batch(events: list[Any], *, sent_at: datetime | None, received_at: datetime, limits: Limits,
                platform: str | None = None, app_version: str | None = None) -> CheckedBatch:
    """Split ``events`` into accepted columns and per-event refusals (``index``, ``code``, ``message``)."""
    checked, seen = CheckedBatch(), set()
    defaults = {"platform": platform, "app_version": app_version}
    for index, event in enumerate(events):
        try:
            event_id, placed, clamped, (name, session_id, plat, version, props) = _check_one(
                event, sent_at=sent_at, received_at=received_at, limits=limits, defaults=defaults)
            if event_id in seen:
                raise EventRefused("duplicate_in_batch", "This event_id appears earlier in the same batch.")
        except EventRefused as refused:
            given = event.get("event_id") if isinstance(event, dict) else None
            checked.rejected.append({"index": index, "event_id": given if isinstance(given, str) else None,
                                     "code": refused.code, "message": refused.message})
            continue
        seen.add(event_id)
        if clamped:
            checked.clamped.append(index)
        checked.event_ids.append(event_id)
        checked.times.append(placed.astimezone(UTC).isoformat())
        checked.names.append(name)
        checked.session_ids.append(session_id)
        checked.platforms.append(plat)
        checked.app_versions.append(version)
        checked.properties.append(props)
    return checked
