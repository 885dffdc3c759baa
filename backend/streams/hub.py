"""One Redis subscription for every open stream of this process, and the heartbeat sweep.

Inbox entries are announced on ``groundwork:inbox:<user_id>`` after their commit, media
changes on ``groundwork:media:<owner_id>`` (backend.media.status). The hub
pattern-subscribes once and hands each message to that user's open streams, so a stream
costs a queue, not a Redis connection. Publishing is best effort, so every heartbeat
the hub also reads the open users' recent entries from PostgreSQL in one query (a lost
publish is only a delay) and re-checks every holder's session and user in one Redis
round trip: a signed-out, suspended or deleted user's streams end within one heartbeat.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
import redis.asyncio as aioredis
from flask import Flask

from backend.streams.opening import Holder, Sweep, sweep

log = logging.getLogger(__name__)

# Channel pattern -> the SSE event its messages become. Inbox entries are `notification`
# (with an id, replayed after Last-Event-ID); media changes are `media.<status>`, live only
# (no id, so they never move the client's Last-Event-ID; GET /v1/media/{id} has the truth).
CHANNEL_PATTERNS = {"groundwork:inbox:*": "notification", "groundwork:media:*": "media"}
_MEDIA_STATUS = re.compile(r"^[a-z_]{1,32}$")
RECONNECT_MAX_S = 5.0


@dataclass(eq=False)
class Stream:
    """One open stream: who holds it, what it has sent, and its outbox of frames."""

    holder: Holder
    queue: asyncio.Queue
    anchor: tuple[datetime, str] | None = None
    seen: set[str] = field(default_factory=set)
    task: asyncio.Task | None = None

    def offer(self, item: tuple[str, Any]) -> None:
        """Queue a frame; a client too slow to take its frames is dropped (it resumes by Last-Event-ID)."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            log.info("dropping a stream of user %s: its client does not read", self.holder.user_id)
            if self.task is not None:
                self.task.cancel()


class Hub:
    """The process's open streams by user, fed by Redis pub/sub and the heartbeat sweep."""

    def __init__(self, app: Flask, executor: Executor, *, heartbeat_s: float,
                 sweep_window_s: float | None = None) -> None:
        self.app = app
        self.executor = executor
        self.heartbeat_s = heartbeat_s
        # Long enough for an entry whose transaction began well before its commit.
        self.sweep_window_s = sweep_window_s or 2 * heartbeat_s + 30
        self.by_user: dict[uuid.UUID, set[Stream]] = {}
        self.subscribed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @property
    def open_count(self) -> int:
        return sum(len(streams) for streams in self.by_user.values())

    async def start(self, *, ready_timeout_s: float = 5.0) -> None:
        """Subscribe and start beating; waits briefly for the subscription (streams still poll without it)."""
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._beat())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.subscribed.wait(), ready_timeout_s)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def add(self, stream: Stream) -> None:
        self.by_user.setdefault(stream.holder.user_id, set()).add(stream)

    def remove(self, stream: Stream) -> None:
        streams = self.by_user.get(stream.holder.user_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self.by_user[stream.holder.user_id]

    def publish_local(self, user_id: uuid.UUID, event: str, payload: dict[str, Any]) -> None:
        """Hand one announced event to the user's open streams in this process."""
        for stream in list(self.by_user.get(user_id, ())):
            stream.offer((event, payload))

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            client = aioredis.Redis.from_url(self.app.config["REDIS_URL"], health_check_interval=30)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(*CHANNEL_PATTERNS)
                self.subscribed.set()
                delay = 0.2
                async for message in pubsub.listen():
                    self._dispatch(message)
            except (redis.RedisError, OSError) as exc:
                log.warning("stream pub/sub lost (streams keep polling PostgreSQL): %s", exc)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(redis.RedisError, OSError):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MAX_S, delay * 2)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "pmessage":
            return
        pattern, channel = _text(message["pattern"]), _text(message["channel"])
        event = CHANNEL_PATTERNS.get(pattern)
        try:
            user_id = uuid.UUID(channel.rsplit(":", 1)[1])
            payload = json.loads(message["data"])
        except (ValueError, TypeError, IndexError):
            return
        if event is None or not isinstance(payload, dict) or "id" not in payload:
            return
        if event == "media":
            status = payload.get("status")
            event = f"media.{status}" if isinstance(status, str) and _MEDIA_STATUS.match(status) else "media.changed"
        self.publish_local(user_id, event, payload)

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat_s)
            streams = [s for group in self.by_user.values() for s in group]
            if not streams:
                continue
            holders = list({s.holder for s in streams})
            try:
                found: Sweep = await loop.run_in_executor(self.executor, _sweep_call(
                    self.app, holders, self.sweep_window_s))
            except Exception:  # noqa: BLE001 - a failed sweep must not stop the heartbeats
                log.exception("stream sweep failed; beating without it")
                found = Sweep({}, {})
            for stream in streams:
                ended = found.revoked.get(stream.holder)
                if ended is not None:
                    stream.offer(("revoked", {"code": ended.code, "message": ended.message}))
                    continue
                for position, payload in found.recent.get(stream.holder.user_id, ()):
                    if stream.anchor is None or position > stream.anchor:
                        stream.offer(("notification", payload))
                stream.offer(("heartbeat", None))


def _sweep_call(app: Flask, holders: list[Holder], window_s: float) -> Callable[[], Sweep]:
    return lambda: sweep(app, holders=holders, window_s=window_s)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
