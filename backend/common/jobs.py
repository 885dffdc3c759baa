"""Background jobs: queues named by purpose, enqueued by dotted path after commit.

``backend`` never imports ``jobs``: a service names the job function by its dotted
path and passes IDs and plain values only. Jobs wait in ``session.info`` until the
transaction commits, so a worker never looks for a row that is not there yet, and a
rolled-back request enqueues nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from flask import Flask, current_app
from rq import Queue, Retry
from rq.serializers import JSONSerializer
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

log = logging.getLogger(__name__)

QUEUES = ("default", "push", "media", "analytics", "periodic")
_PENDING = "groundwork.pending_jobs"


@dataclass(frozen=True)
class PendingJob:
    func: str
    queue: str
    kwargs: dict[str, Any]
    job_id: str | None = None
    at: datetime | None = None
    retries: int = 3
    timeout: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def redis_client(app: Flask | None = None) -> redis.Redis:
    """The app's Redis client (short socket timeouts; created lazily, no I/O)."""
    return (app or current_app).extensions["groundwork.redis"]


def make_redis(url: str, *, socket_timeout: float | None) -> redis.Redis:
    """A Redis client that fails fast instead of hanging a request."""
    return redis.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout or 2.0,
        health_check_interval=30, retry_on_timeout=False,
    )


def get_queue(name: str, connection: redis.Redis | None = None) -> Queue:
    """An RQ queue by purpose, with the JSON serializer (never pickle)."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection or redis_client(), serializer=JSONSerializer)


def enqueue_after_commit(
    session: Session | scoped_session, func: str, *, queue: str = "default", job_id: str | None = None,
    at: datetime | None = None, retries: int = 3, timeout: int | None = None, **kwargs: Any,
) -> None:
    """Send ``func(**kwargs)`` to ``queue`` once ``session`` commits; drop it on rollback."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    if isinstance(session, scoped_session):
        session = session()
    if not session.in_transaction():
        session.begin()  # tie the job to a transaction, so a rollback can drop it
    pending = PendingJob(func, queue, kwargs, job_id, at, retries, timeout)
    session.info.setdefault(_PENDING, []).append(pending)


def send_now(job: PendingJob, connection: redis.Redis | None = None) -> None:
    """Enqueue one job immediately (used after commit and by reconcilers)."""
    queue = get_queue(job.queue, connection)
    options: dict[str, Any] = {
        "job_id": job.job_id,
        "kwargs": job.kwargs,
        "job_timeout": job.timeout or current_app.config["JOB_TIMEOUT_S"],
        "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600,
        "meta": job.meta,
    }
    if job.retries:
        options["retry"] = Retry(max=job.retries, interval=[5, 30, 120][: job.retries])
    if job.at is not None:
        queue.enqueue_at(job.at, job.func, **options)
    else:
        queue.enqueue(job.func, **options)


def _send_pending(session: Session) -> None:
    pending: list[PendingJob] = session.info.pop(_PENDING, [])
    for job in pending:
        try:
            send_now(job)
        except redis.RedisError:
            # The data is committed; the periodic reconcilers find work whose job never
            # arrived (state in PostgreSQL is the source of truth), so log and go on.
            log.exception("could not enqueue %s on %s after commit", job.func, job.queue)


def _drop_pending(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the whole unit of work rolled back, not a savepoint
        session.info.pop(_PENDING, None)


def install_session_hooks(session_class: type[Session]) -> None:
    """Attach the after-commit / after-rollback listeners once per session class."""
    if not event.contains(session_class, "after_commit", _send_pending):
        event.listen(session_class, "after_commit", _send_pending)
        event.listen(session_class, "after_soft_rollback", _drop_pending)
