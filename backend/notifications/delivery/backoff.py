"""Project-wide quota backoff: after a 429, every lane of every worker waits for that FCM project.

FCM's quota is per project, so a 429 concerns every request of the project, not only the
rows that got it. The wait (Retry-After, or the engine's default) is one Redis key per
project holding the instant sending may resume; each lane reads it before claiming. The
ledger stays the truth: rows that got the 429 carry their own next attempt, so if Redis
forgets the key nothing is lost, lanes only try a little sooner.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis

log = logging.getLogger(__name__)

KEY = "groundwork:push:quota-backoff:{project}"
# Keep the later of two instants: two lanes reporting 429s must not shorten the wait.
_HOLD = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


def hold(connection: redis.Redis, *, project: str, until: datetime, now: datetime) -> None:
    """Make every lane of ``project`` wait until ``until`` (best effort: the ledger holds the rows)."""
    ttl_ms = max(1, int((until - now).total_seconds() * 1000))
    try:
        connection.eval(_HOLD, 1, KEY.format(project=project), f"{until.timestamp():.3f}", ttl_ms)
    except redis.RedisError:
        log.warning("could not record the quota backoff of project %s", project, exc_info=True)


def held_until(connection: redis.Redis, *, project: str, now: datetime) -> datetime | None:
    """When ``project`` may send again, or None if it may send now (or Redis cannot say)."""
    try:
        raw = connection.get(KEY.format(project=project))
    except redis.RedisError:
        log.warning("could not read the quota backoff of project %s", project, exc_info=True)
        return None
    if raw is None:
        return None
    until = datetime.fromtimestamp(float(raw), UTC)
    return until if until > now else None
