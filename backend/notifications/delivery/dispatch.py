"""When delivery work runs: dispatch jobs at due instants, and the lanes they start.

Work is grouped by *origin*: one campaign's rows, or the rows of every transactional
send (``campaign_id`` None). A *dispatch* job (``jobs.delivery.dispatch_pushes``) is
scheduled with RQ's ``enqueue_at`` for every distinct instant at which an origin's rows
become due. It starts *lanes* (``jobs.delivery.send_pushes``): jobs any number of
workers share, each claiming batch after batch from the ledger until nothing is due. Job ids are deterministic, so
scheduling the same instant twice (a retry, the reconciler) costs nothing; and nothing
is lost if Redis forgets a job, because the reconciler rebuilds the work from PostgreSQL.
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

from backend.common.db import utcnow
from backend.common.jobs import PendingJob, enqueue_after_commit, send_now

PUSH_QUEUE = "push"
DISPATCH_JOB = "jobs.delivery.dispatch_pushes"
LANE_JOB = "jobs.delivery.send_pushes"
TRANSACTIONAL = "transactional"  # the origin name of transactional rows in job ids
LANE_BATCH = 500


def origin_of(campaign_id: uuid.UUID | str | None) -> str:
    """The origin's name in job ids: the campaign id, or 'transactional'."""
    return str(campaign_id) if campaign_id is not None else TRANSACTIONAL


def dispatch_job_id(campaign_id: uuid.UUID | str | None, instant: datetime) -> str:
    """The one job id of an origin's dispatch at ``instant`` (second resolution)."""
    return f"dispatch-{origin_of(campaign_id)}-{int(instant.timestamp())}"


def schedule_dispatch(session: Session | scoped_session, *, campaign_id: uuid.UUID | str | None,
                      due_instants: Iterable[datetime], now: datetime | None = None) -> list[str]:
    """After ``session`` commits, enqueue one dispatch per distinct instant (past ones at once)."""
    now = now or utcnow()
    ids = []
    seconds = sorted({math.ceil(_aware(at).timestamp()) for at in due_instants})
    for second in seconds:
        instant = datetime.fromtimestamp(second, UTC)
        job_id = dispatch_job_id(campaign_id, instant)
        enqueue_after_commit(session, DISPATCH_JOB, queue=PUSH_QUEUE, job_id=job_id,
                             at=instant if instant > now else None, retries=2,
                             campaign_id=_arg(campaign_id), due_at=instant.isoformat())
        ids.append(job_id)
    return ids


def count_due(session: Session, *, campaign_id: uuid.UUID | str | None, now: datetime) -> int:
    """Rows of the origin waiting to be claimed at ``now``."""
    if campaign_id is None:
        return session.execute(
            text("SELECT count(*) FROM push_deliveries WHERE campaign_id IS NULL "
                 "AND status IN ('pending', 'deferred') AND next_attempt_at <= :now"), {"now": now}).scalar_one()
    return session.execute(
        text("SELECT count(*) FROM push_deliveries WHERE campaign_id = :c "
             "AND status IN ('pending', 'deferred') AND next_attempt_at <= :now"),
        {"c": str(campaign_id), "now": now}).scalar_one()


def lane_count(due: int, *, max_lanes: int, batch_size: int = LANE_BATCH) -> int:
    """How many lanes a dispatch starts for ``due`` rows."""
    return min(max_lanes, math.ceil(due / batch_size))


def start_lanes(*, campaign_id: uuid.UUID | str | None, tag: str, lanes: int = 0, slots: list[str] | None = None,
                connection: redis.Redis | None = None) -> list[str]:
    """Enqueue lane jobs now, one per reserved slot (or ``lanes`` without one); returns their ids."""
    ids = []
    for lane, slot in enumerate(slots or [None] * lanes):
        job_id = f"lane-{origin_of(campaign_id)}-{tag}-{lane}"
        kwargs = {"campaign_id": _arg(campaign_id), "slot": slot}
        send_now(PendingJob(LANE_JOB, PUSH_QUEUE, kwargs, job_id=job_id, retries=1), connection)
        ids.append(job_id)
    return ids


def _arg(campaign_id: uuid.UUID | str | None) -> str | None:
    return str(campaign_id) if campaign_id is not None else None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
