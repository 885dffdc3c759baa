"""Campaign delivery jobs on the "push" queue: dispatch, lanes, and the reconciler.

All three are idempotent: their state is the ledger in PostgreSQL, so running one twice
(a double enqueue, an RQ retry, the reconciler) only finds less work.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime

import redis
from flask import current_app
from rq import Worker, get_current_job

from backend.common.db import utcnow
from backend.common.jobs import PendingJob, get_queue, redis_client, send_now
from backend.extensions import db
from backend.notifications.delivery import dispatch, engine, reconcile

log = logging.getLogger(__name__)

# A lane hands its work to a fresh job after this long, so a warm shutdown (SIGTERM)
# waits for one batch or so, and no job comes near its timeout.
LANE_BUDGET_S = 20.0


def dispatch_campaign(*, campaign_id: str, due_at: str | None = None) -> int:
    """Start as many lanes as the due rows need (the first runs here); returns lanes started."""
    now = utcnow()
    due = dispatch.count_due(db.session, campaign_id=campaign_id, now=now)
    db.session.rollback()
    lanes = min(dispatch.lane_count(due), _push_workers())
    if lanes == 0:
        return 0
    tag = f"{int(datetime.fromisoformat(due_at).timestamp())}" if due_at else f"{int(now.timestamp())}"
    if lanes > 1:
        dispatch.start_lanes(campaign_id=campaign_id, lanes=lanes - 1, tag=tag)
    send_campaign_batch(campaign_id=campaign_id)
    return lanes


def send_campaign_batch(*, campaign_id: str) -> dict[str, int]:
    """One lane: claim → send → record, batch after batch, until idle, stopped or out of budget."""
    reports = engine.run_lane(db.session, campaign_id=uuid.UUID(campaign_id), budget_s=LANE_BUDGET_S,
                                should_stop=_shutdown_requested)
    last = reports[-1]
    if last.stop is None:
        # Budget spent or a warm shutdown: hand the rest to a new job (any worker).
        send_now(PendingJob(dispatch.LANE_JOB, dispatch.PUSH_QUEUE, {"campaign_id": campaign_id},
                            job_id=f"lane-{campaign_id}-more-{uuid.uuid4().hex[:12]}", retries=1))
    elif last.stop == "idle":
        reconcile.complete_if_done(db.session, campaign_id=uuid.UUID(campaign_id))
    totals = {"batches": len(reports), "sent": sum(r.sent for r in reports)}
    log.info("campaign %s lane: %s", campaign_id, totals)
    return totals


def reconcile_deliveries() -> dict[str, int]:
    """Periodic: rebuild due work from PostgreSQL, expire stale claims, complete campaigns."""
    lease = 2 * current_app.config["JOB_TIMEOUT_S"]
    return reconcile.reconcile(db.session, lease_s=lease).as_dict()


def _push_workers() -> int:
    """Workers listening on the push queue (at least 1: this one).

    A worker runs one lane at a time, so lanes beyond the workers only queue up and, once
    the first lane has sent everything, each costs a fork to find nothing due. A lane that
    runs out of budget hands over to a new job, which a worker started later can take.
    """
    try:
        return max(1, Worker.count(queue=get_queue(dispatch.PUSH_QUEUE)))
    except redis.RedisError:
        log.warning("could not count the push workers", exc_info=True)
        return dispatch.MAX_LANES


def _shutdown_requested() -> bool:
    """True once our worker got SIGTERM (RQ records it in the worker's hash for the horse to see)."""
    job = get_current_job()
    if job is None or not job.worker_name:
        return False
    try:
        return bool(redis_client().hget(f"rq:worker:{job.worker_name}", "shutdown_requested_date"))
    except redis.RedisError:  # a Redis hiccup must not stop a lane that is working fine
        log.warning("could not read the worker's shutdown flag", exc_info=True)
        return False
