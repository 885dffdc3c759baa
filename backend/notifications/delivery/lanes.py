"""Lane slots: at most ``MAX_LANES`` lanes per origin, whatever dispatches, reconciles or hands over.

A lane holds a slot (a member of a Redis sorted set per origin, scored by when it
expires) from the moment it is enqueued until it ends; ``PUSH_MAX_LANES`` sets how many. A dispatch starts only as many
lanes as there are free slots; a lane job that finds no slot ends at once (a duplicate
enqueue costs one Redis call). A running lane renews its slot after every batch; a
killed one's slot expires. Redis losing the set only means lanes start afresh: still at
most ``MAX_LANES``, and the ledger's row locks keep any overlap harmless.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import redis

log = logging.getLogger(__name__)

MAX_LANES = 16  # default of PUSH_MAX_LANES
# A running lane renews after every batch (seconds apart); a killed one's slot is free
# again within this, before its rows' lease (45 s) runs out.
RUNNING_TTL = timedelta(seconds=40)
QUEUED_TTL = timedelta(minutes=3)  # a lane waiting in the queue for a free worker
KEY = "groundwork:push:lanes:{origin}"
DISPATCH_KEY = "groundwork:push:dispatch-queued:{origin}"

# KEYS[1] the set; ARGV: now (ms), expiry (ms), max, tokens... → the tokens that got a slot.
_RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local got = {}
for i = 4, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
    table.insert(got, ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(ARGV[2]) - tonumber(ARGV[1])))
return got
"""


def _now_ms(connection: redis.Redis) -> int:
    seconds, micros = connection.time()  # Redis' clock: every worker agrees on it
    return int(seconds) * 1000 + int(micros) // 1000


def reserve(connection: redis.Redis, *, origin: str, count: int, ttl: timedelta = QUEUED_TTL,
            tokens: list[str] | None = None, max_lanes: int = MAX_LANES) -> list[str]:
    """Take up to ``count`` free slots (or renew ``tokens``); returns the slot tokens held.

    Redis unreachable: the slots are granted (a lane must not stop because its guard did).
    """
    wanted = tokens or [uuid.uuid4().hex for _ in range(count)]
    try:
        now = _now_ms(connection)
        got = connection.eval(_RESERVE, 1, KEY.format(origin=origin), now, now + int(ttl.total_seconds() * 1000),
                              max_lanes, *wanted)
    except redis.RedisError:
        log.warning("lane slots of %s unavailable; lanes run unguarded", origin, exc_info=True)
        return wanted
    return [t.decode() if isinstance(t, bytes) else str(t) for t in got]


def renew(connection: redis.Redis, *, origin: str, token: str, ttl: timedelta = RUNNING_TTL,
          max_lanes: int = MAX_LANES) -> bool:
    """Keep a running lane's slot (or take one again after a flush); False when none is free."""
    return bool(reserve(connection, origin=origin, count=1, ttl=ttl, tokens=[token], max_lanes=max_lanes))


def release(connection: redis.Redis, *, origin: str, token: str) -> None:
    """Give the slot back when the lane ends."""
    try:
        connection.zrem(KEY.format(origin=origin), token)
    except redis.RedisError:
        log.warning("could not release a lane slot of %s (it expires)", origin, exc_info=True)


def active(connection: redis.Redis, *, origin: str) -> int:
    """Lanes of ``origin`` queued or running now (0 when Redis cannot say)."""
    try:
        now = _now_ms(connection)
        return int(connection.zcount(KEY.format(origin=origin), now, "+inf"))
    except redis.RedisError:
        return 0


def claim_dispatch(connection: redis.Redis, *, origin: str, ttl: timedelta = timedelta(minutes=1)) -> bool:
    """True if no immediate dispatch of ``origin`` is queued yet (then one is now, for ``ttl``)."""
    try:
        return bool(connection.set(DISPATCH_KEY.format(origin=origin), "1", nx=True,
                                   px=int(ttl.total_seconds() * 1000)))
    except redis.RedisError:
        return True


def dispatch_started(connection: redis.Redis, *, origin: str) -> None:
    """A dispatch of ``origin`` runs: the reconciler may queue the next one."""
    try:
        connection.delete(DISPATCH_KEY.format(origin=origin))
    except redis.RedisError:
        log.warning("could not clear the queued-dispatch mark of %s", origin, exc_info=True)
