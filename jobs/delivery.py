"""Delivery jobs on the "push" queue: dispatch, lanes, and the reconciler, for every origin.

An origin is one campaign (``campaign_id``) or every transactional send (no ``campaign_id``).

All three are idempotent: their state is the ledger in PostgreSQL, so running one twice
(a double enqueue, an RQ retry, the reconciler) only finds less work.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

import redis
from flask import current_app
from rq import Worker, get_current_job

from backend.common.db import utcnow
from backend.common.jobs import PendingJob, get_queue, redis_client, send_now
from backend.extensions import db
from backend.notifications.delivery import dispatch, engine, lanes, reconcile

log = logging.getLogger(__name__)

# A lane hands its work to a fresh job after this long, so no job comes near its timeout
# and workers started later get a share (a warm shutdown stops a lane after its current
# batch whatever the budget). Not much shorter: every job is a fresh work-horse, which
# opens a fresh pool of FCM connections and fetches an OAuth token.
LANE_BUDGET_S = 60.0
SLOT_CHECK_S = 1.0  # how often a running lane renews its slot and looks for a warm shutdown


def dispatch_pushes(*, campaign_id: str | None = None, due_at: str | None = None) -> int:
    """Start as many lanes as the origin's due rows need and free slots allow (the first runs here)."""
    now = utcnow()
    origin = dispatch.origin_of(campaign_id)
    connection = redis_client()
    lanes.dispatch_started(connection, origin=origin)
    due = dispatch.count_due(db.session, campaign_id=campaign_id, now=now)
    db.session.rollback()
    wanted = min(dispatch.lane_count(due, max_lanes=_max_lanes()), _push_workers())
    if wanted == 0:
        return 0
    slots = lanes.reserve(connection, origin=origin, count=wanted, max_lanes=_max_lanes())
    if not slots:
        return 0  # the origin runs as many lanes as it may: they claim these rows too
    tag = f"{int(datetime.fromisoformat(due_at).timestamp())}" if due_at else f"{int(now.timestamp())}"
    if len(slots) > 1:
        dispatch.start_lanes(campaign_id=campaign_id, slots=slots[1:], tag=tag)
    send_pushes(campaign_id=campaign_id, slot=slots[0])
    return len(slots)


def send_pushes(*, campaign_id: str | None = None, slot: str | None = None) -> dict[str, int]:
    """One lane: claim → send → record, batch after batch, until idle, stopped or out of budget.

    The lane holds one of the origin's slots (``slot``, reserved when it was enqueued; a
    lane enqueued without one takes a free one or ends at once), renewed after every batch.
    """
    origin = uuid.UUID(campaign_id) if campaign_id else None
    name = dispatch.origin_of(campaign_id)
    connection = redis_client()
    slot = slot or next(iter(lanes.reserve(connection, origin=name, count=1, ttl=lanes.RUNNING_TTL,
                                            max_lanes=_max_lanes())), None)
    if slot is None:
        return {"batches": 0, "sent": 0}  # as many lanes as allowed run already
    # Running now: from here a killed lane's slot frees within RUNNING_TTL, before its rows' lease.
    lost = [not lanes.renew(connection, origin=name, token=slot, max_lanes=_max_lanes())]
    if lost[0]:
        return {"batches": 0, "sent": 0}

    checked = [time.monotonic()]

    def should_stop() -> bool:
        # Asked after every batch (several a second): Redis is asked at most once a second,
        # far inside the slot's RUNNING_TTL, and a warm shutdown waits at most that long.
        now = time.monotonic()
        if now - checked[0] < SLOT_CHECK_S:
            return False
        checked[0] = now
        if not lanes.renew(connection, origin=name, token=slot, max_lanes=_max_lanes()):
            lost[0] = True  # the slot expired and others took every one: leave the rows to them
            return True
        return _shutdown_requested()

    handed_over = False
    try:
        reports = engine.run_lane(db.session, campaign_id=origin, budget_s=LANE_BUDGET_S, should_stop=should_stop)
        last = reports[-1]
        if last.stop is None and not lost[0]:
            # Budget spent or a warm shutdown: hand the rest, and the slot, to a new job (any worker).
            lanes.renew(connection, origin=name, token=slot, ttl=lanes.QUEUED_TTL, max_lanes=_max_lanes())
            send_now(PendingJob(dispatch.LANE_JOB, dispatch.PUSH_QUEUE, {"campaign_id": campaign_id, "slot": slot},
                                job_id=f"lane-{name}-more-{uuid.uuid4().hex[:12]}", retries=1))
            handed_over = True
        elif last.stop == "idle" and origin is not None:
            reconcile.complete_if_done(db.session, campaign_id=origin)
    finally:
        if not handed_over:
            lanes.release(connection, origin=name, token=slot)
    totals = {"batches": len(reports), "sent": sum(r.sent for r in reports), "stale": sum(r.stale for r in reports)}
    outcomes: dict[str, int] = {}
    for report in reports:
        for outcome, n in report.outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    # The provider's answers too: an 'unknown' (no answer) is resent later, so it explains a
    # device that got two copies (with one collapse identity) without any lost lease.
    log.info("%s lane: %s, answers %s", name, totals, outcomes)
    return totals


# Jobs enqueued under the names of the campaign-only engine still run after an upgrade.
dispatch_campaign = dispatch_pushes
send_campaign_batch = send_pushes


def reconcile_deliveries() -> dict[str, int]:
    """Periodic: rebuild due work from PostgreSQL, expire stale claims, complete campaigns."""
    return reconcile.reconcile(db.session).as_dict()


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
        return _max_lanes()


def _max_lanes() -> int:
    return int(current_app.config["PUSH_MAX_LANES"])


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
