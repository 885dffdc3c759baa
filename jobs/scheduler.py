"""``python -m jobs.scheduler``: enqueues the periodic table, once per slot.

Each run of a periodic job is claimed with SET NX on a key made of its name and time
slot, so two schedulers (a deploy overlap, a restart) never enqueue the same run twice.
"""
from __future__ import annotations

import logging
import signal
import time
from datetime import UTC, datetime
from types import FrameType

import redis
from flask import Flask

from backend.common.jobs import PendingJob, redis_client, send_now
from jobs.periodic import PERIODIC, Periodic

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0


def slot_of(entry: Periodic, now: datetime) -> int:
    """The index of the interval ``now`` falls in (deterministic across processes)."""
    return int(now.timestamp() // entry.every.total_seconds())


def enqueue_due(app: Flask, now: datetime | None = None) -> list[str]:
    """Enqueue every periodic job whose current slot has not run; returns their job IDs."""
    now = now or datetime.now(UTC)
    sent = []
    connection = redis_client(app)
    for entry in PERIODIC:
        slot = slot_of(entry, now)
        job_id = f"periodic-{entry.name}-{slot}"
        ttl = int(entry.every.total_seconds() * 2) + 60
        if connection.set(f"groundwork:periodic:{job_id}", "1", nx=True, ex=ttl):
            send_now(PendingJob(entry.func, entry.queue, {}, job_id=job_id, retries=0), connection)
            sent.append(job_id)
    return sent


def run(app: Flask) -> None:
    """Tick until SIGTERM/SIGINT; a Redis outage is logged and retried, not fatal."""
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started with %d periodic jobs", len(PERIODIC))
    with app.app_context():
        while not stopping:
            try:
                for job_id in enqueue_due(app):
                    log.info("enqueued %s", job_id)
            except redis.RedisError:
                log.exception("scheduler tick failed; retrying")
            time.sleep(TICK_SECONDS)
    log.info("scheduler stopped")


def main() -> None:
    """Entry point of the scheduler role."""
    from backend.app import create_app

    run(create_app())


if __name__ == "__main__":
    main()
