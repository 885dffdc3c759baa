"""The live inbox: new entries over server-sent events, from Redis pub/sub backed by PostgreSQL.

A stream subscribes first, then replays from the database whatever came after the
client's ``Last-Event-ID``, so nothing committed in between is missed. Every heartbeat
also polls PostgreSQL, so a lost publish (Redis restart) is only a delay. Streams end
after a bounded lifetime so a web worker is never held forever; clients reconnect with
``Last-Event-ID`` and lose nothing.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from flask import Flask

from backend.common import sse
from backend.extensions import db
from backend.notifications.inbox import channel, entries_after, entry_event, newest_id
from backend.notifications.models import Notification

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamLimits:
    """How long a stream lives, how often it beats, and the reconnect delay clients are told."""

    lifetime_s: float = 55.0
    heartbeat_s: float = 15.0
    retry_ms: int = 3000


def parse_event_id(raw: str | None) -> uuid.UUID | None:
    """The entry id a client last saw (anything else: start fresh)."""
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def stream_inbox(app: Flask, *, user_id: uuid.UUID, last_event_id: uuid.UUID | None,
                 limits: StreamLimits) -> Iterator[str]:
    """Yield SSE chunks for the user's new inbox entries until the lifetime ends."""
    connection = redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=limits.heartbeat_s + 5,
                                      socket_connect_timeout=app.config["REDIS_SOCKET_TIMEOUT_S"] or 2)
    pubsub = connection.pubsub(ignore_subscribe_messages=True)
    try:
        try:
            pubsub.subscribe(channel(user_id))
        except redis.RedisError as exc:
            log.warning("inbox stream without pub/sub (polling PostgreSQL): %s", exc)
            pubsub = None
        yield sse.retry(limits.retry_ms)
        delivered: set[str] = set()
        anchor = last_event_id
        with app.app_context():
            if anchor is None:
                anchor = newest_id(db.session, user_id=user_id)
                backlog: list[Notification] = []
            else:
                backlog = entries_after(db.session, user_id=user_id, after_id=anchor)
            events = [entry_event(n) for n in backlog]
            db.session.remove()  # give the connection back: streams are long, the pool is small
        for payload in events:
            delivered.add(payload["id"])
            anchor = uuid.UUID(payload["id"])
            yield _notification(payload)
        deadline = time.monotonic() + limits.lifetime_s
        next_beat = time.monotonic() + limits.heartbeat_s
        while (now := time.monotonic()) < deadline:
            wait = max(0.0, min(1.0, deadline - now, next_beat - now))
            payload = _next_message(pubsub, wait) if pubsub is not None else _sleep(wait)
            if payload is not None and payload["id"] not in delivered:
                delivered.add(payload["id"])
                yield _notification(payload)
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + limits.heartbeat_s
                polled, anchor = _poll(app, user_id, anchor)
                for item in polled:
                    if item["id"] not in delivered:
                        delivered.add(item["id"])
                        yield _notification(item)
                yield sse.comment("heartbeat")
        yield sse.comment("stream lifetime reached; reconnect with Last-Event-ID")
    finally:
        if pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                pubsub.close()
        connection.close()


def _notification(payload: dict) -> str:
    return sse.event(json.dumps(payload), name="notification", event_id=payload["id"])


def _next_message(pubsub: redis.client.PubSub, wait: float) -> dict | None:
    try:
        message = pubsub.get_message(timeout=wait)
    except redis.RedisError as exc:
        log.warning("inbox pub/sub read failed: %s", exc)
        time.sleep(wait)
        return None
    if not message or message.get("type") != "message":
        return None
    try:
        return json.loads(message["data"])
    except (ValueError, TypeError):
        return None


def _sleep(wait: float) -> None:
    time.sleep(wait)
    return None


def _poll(app: Flask, user_id: uuid.UUID, anchor: uuid.UUID | None) -> tuple[list[dict], uuid.UUID | None]:
    """Entries committed since ``anchor`` (catches publishes that never arrived)."""
    with app.app_context():
        try:
            if anchor is None:
                anchor = newest_id(db.session, user_id=user_id)
                return [], anchor
            items = [entry_event(n) for n in entries_after(db.session, user_id=user_id, after_id=anchor)]
        finally:
            db.session.remove()
    if items:
        anchor = uuid.UUID(items[-1]["id"])
    return items, anchor
