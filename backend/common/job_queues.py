"""What staff see of the job queues: depths, failed jobs with their error, scheduled work.

Read from RQ's own registries (JSON serializer); retry and delete act on one failed
job by id. The state of the work itself lives in PostgreSQL, so deleting a failed job
loses nothing a reconciler would not find again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.serializers import JSONSerializer

from backend.common.errors import NotFound
from backend.common.jobs import QUEUES, get_queue, redis_client


@dataclass(frozen=True)
class QueueDepth:
    """Counts of one queue: waiting, running, failed, scheduled, deferred."""

    name: str
    queued: int
    started: int
    failed: int
    scheduled: int
    deferred: int


@dataclass(frozen=True)
class JobSummary:
    """One job as the console lists it."""

    id: str
    queue: str
    func: str
    kwargs: dict[str, Any]
    status: str
    enqueued_at: datetime | None
    ended_at: datetime | None
    error: str | None
    scheduled_for: datetime | None = None


def queue_depths() -> list[QueueDepth]:
    """Depth of every queue and its registries."""
    out = []
    for name in QUEUES:
        queue = get_queue(name)
        out.append(QueueDepth(name, queue.count, StartedJobRegistry(queue=queue).count,
                              FailedJobRegistry(queue=queue).count, ScheduledJobRegistry(queue=queue).count,
                              DeferredJobRegistry(queue=queue).count))
    return out


def _summary(job: Job, queue: str, scheduled_for: datetime | None = None) -> JobSummary:
    result = job.latest_result()
    return JobSummary(job.id, queue, job.func_name, dict(job.kwargs or {}), str(job.get_status(refresh=False)),
                      job.enqueued_at, job.ended_at, result.exc_string if result else None, scheduled_for)


def _fetch(ids: list[str]) -> list[Job]:
    jobs = Job.fetch_many(ids, connection=redis_client(), serializer=JSONSerializer)
    return [job for job in jobs if job is not None]


def failed_jobs(*, queue: str, offset: int = 0, limit: int = 25) -> list[JobSummary]:
    """Failed jobs of a queue, newest failure first, with the error they ended with."""
    registry = FailedJobRegistry(queue=get_queue(queue))
    ids = registry.get_job_ids(offset, offset + limit - 1, desc=True)
    return [_summary(job, queue) for job in _fetch(ids)]


def scheduled_jobs(*, queue: str, limit: int = 25) -> list[JobSummary]:
    """Jobs waiting for their time (RQ's scheduled registry), soonest first."""
    registry = ScheduledJobRegistry(queue=get_queue(queue))
    ids = registry.get_job_ids(0, limit - 1)
    return [_summary(job, queue, registry.get_scheduled_time(job.id)) for job in _fetch(ids)]


def _failed_job(queue: str, job_id: str) -> tuple[FailedJobRegistry, Job]:
    registry = FailedJobRegistry(queue=get_queue(queue))
    if registry.connection.zscore(registry.key, job_id) is None:  # one lookup, not the whole registry
        raise NotFound("No such failed job.", code="job_not_found")
    jobs = _fetch([job_id])
    if not jobs:
        registry.remove(job_id)
        raise NotFound("That job has expired.", code="job_not_found")
    return registry, jobs[0]


def failed_job(*, queue: str, job_id: str) -> JobSummary:
    """One failed job (``job_not_found`` when it is not in the queue's failed registry)."""
    _, job = _failed_job(queue, job_id)
    return _summary(job, queue)


def retry_failed_job(*, queue: str, job_id: str) -> None:
    """Put a failed job back on its queue."""
    registry, _ = _failed_job(queue, job_id)
    registry.requeue(job_id)


def delete_failed_job(*, queue: str, job_id: str) -> None:
    """Drop a failed job and its data."""
    _, job = _failed_job(queue, job_id)
    job.delete()
