"""The delivery reconciler: the progress of every push rebuilt from PostgreSQL alone.

Runs every 15 s (jobs/periodic.py). Redis holds only *hints* (scheduled dispatches,
queued lanes, the quota backoff); if they vanish (a flush, a lost enqueue, a killed
worker) this finds the work again, for campaigns and transactional sends alike: due rows
get a dispatch now, rows due before the next run get a dispatch at their instant,
'sending' claims whose lease ran out (their lane stopped renewing it) are made due again
(resent with the same collapse identity), and campaigns with nothing left are completed.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import redis
from flask import current_app
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.jobs import enqueue_after_commit, redis_client
from backend.notifications.delivery import lanes
from backend.notifications.delivery.dispatch import origin_of, schedule_dispatch
from backend.notifications.delivery.leases import DEFAULT_LEASE, lease_of
from backend.notifications.delivery.ledger import EXPIRE_LEASES_SQL
from backend.notifications.delivery.outcomes import MAX_ATTEMPTS
from backend.webhooks.services import emit

RECONCILE_EVERY = timedelta(seconds=15)
LEASE = DEFAULT_LEASE  # PUSH_LEASE_S's default; see leases.py
# Dispatches are scheduled precisely for rows due before the run after next.
LOOKAHEAD = RECONCILE_EVERY + timedelta(seconds=10)
# A campaign left 'scheduled' this long after launch lost its materialize job.
MATERIALIZE_GRACE = timedelta(minutes=2)
MATERIALIZE_JOB = "jobs.campaigns.materialize_campaign"


@dataclass
class ReconcileReport:
    """What one reconciler run changed."""

    resent: int = 0  # claims whose lease ran out, due again
    transactional: int = 0  # 1 when transactional rows got a dispatch
    expired: int = 0
    dispatched: int = 0
    scheduled: int = 0
    completed: int = 0
    rematerialized: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain counts (a job's return value)."""
        return asdict(self)


def reconcile(session: Session, *, lease_s: float | None = None, now: datetime | None = None) -> ReconcileReport:
    """One pass over every origin; commits once (dispatches leave after the commit).

    A 'sending' claim neither made nor renewed within the lease (``lease_s``, default
    ``PUSH_LEASE_S``) belongs to a lane that stopped: its rows are made due again.
    """
    now = now or utcnow()
    lease = timedelta(seconds=lease_s) if lease_s is not None else lease_of(current_app)
    report = ReconcileReport()
    connection = redis_client()
    report.resent = session.execute(text(EXPIRE_LEASES_SQL), {
        "cutoff": now - lease, "now": now, "max_attempts": MAX_ATTEMPTS}).rowcount
    tx_due = session.execute(text(
        "SELECT min(next_attempt_at) FROM push_deliveries WHERE campaign_id IS NULL "
        "AND status IN ('pending', 'deferred') AND next_attempt_at <= :horizon"),
        {"horizon": now + LOOKAHEAD}).scalar()
    if tx_due is not None:
        # Overdue: at once (a whole second never lies ahead), unless one is queued already;
        # upcoming: at its instant (one job id per instant).
        if tx_due > now:
            schedule_dispatch(session, campaign_id=None, due_instants=[tx_due], now=now)
            report.transactional = 1
        elif _wants_dispatch(connection, origin_of(None)):
            schedule_dispatch(session, campaign_id=None, due_instants=[now.replace(microsecond=0)], now=now)
            report.transactional = 1
    report.expired = session.execute(text(
        "UPDATE push_deliveries SET status = 'expired', error_code = 'expired' "
        "WHERE campaign_id IN (SELECT id FROM campaigns WHERE status = 'running' AND expires_at <= :now) "
        "AND status IN ('pending', 'deferred')"), {"now": now}).rowcount
    due = session.execute(text(
        "SELECT DISTINCT d.campaign_id FROM push_deliveries d JOIN campaigns c ON c.id = d.campaign_id "
        "WHERE c.status = 'running' AND d.status IN ('pending', 'deferred') AND d.next_attempt_at <= :now"),
        {"now": now}).scalars().all()
    for campaign_id in due:
        if _wants_dispatch(connection, origin_of(campaign_id)):
            schedule_dispatch(session, campaign_id=campaign_id, due_instants=[now.replace(microsecond=0)], now=now)
            report.dispatched += 1
    upcoming = session.execute(text(
        "SELECT DISTINCT d.campaign_id, date_trunc('second', d.next_attempt_at) + interval '1 second' "
        "FROM push_deliveries d JOIN campaigns c ON c.id = d.campaign_id "
        "WHERE c.status = 'running' AND d.status IN ('pending', 'deferred') "
        "AND d.next_attempt_at > :now AND d.next_attempt_at <= :horizon"),
        {"now": now, "horizon": now + LOOKAHEAD}).all()
    for campaign_id, instant in upcoming:
        schedule_dispatch(session, campaign_id=campaign_id, due_instants=[instant], now=now)
    report.scheduled = len(upcoming)
    report.completed = len(_complete(session, now=now))
    stuck = session.execute(text(
        "SELECT id FROM campaigns WHERE status = 'scheduled' AND launched_at < :cutoff"),
        {"cutoff": now - MATERIALIZE_GRACE}).scalars().all()
    for campaign_id in stuck:
        # Materializing is idempotent (ON CONFLICT DO NOTHING), so a duplicate costs nothing.
        enqueue_after_commit(session, MATERIALIZE_JOB, queue="push", job_id=f"materialize-{campaign_id}-again",
                             campaign_id=str(campaign_id))
    report.rematerialized = len(stuck)
    session.commit()
    return report


def _wants_dispatch(connection: redis.Redis, origin: str) -> bool:
    """Whether due rows of ``origin`` need a dispatch now: none of its lanes runs and none is queued.

    Running lanes claim batch after batch until nothing is due, so a dispatch beside them
    would only queue up; a dead lane's slot expires before its rows' lease does.
    """
    return lanes.active(connection, origin=origin) == 0 and lanes.claim_dispatch(connection, origin=origin)


def complete_if_done(session: Session, *, campaign_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Mark a running campaign completed when no row is pending, deferred or sending."""
    done = bool(_complete(session, now=now or utcnow(), campaign_id=campaign_id))
    session.commit()
    return done


def _complete(session: Session, *, now: datetime, campaign_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    done = list(session.execute(text(
        "UPDATE campaigns c SET status = 'completed', completed_at = :now, updated_at = now() "
        "WHERE c.status = 'running' AND (CAST(:campaign AS uuid) IS NULL OR c.id = CAST(:campaign AS uuid)) "
        "AND NOT EXISTS (SELECT 1 FROM push_deliveries d WHERE d.campaign_id = c.id "
        "AND d.status IN ('pending', 'deferred', 'sending')) RETURNING c.id, c.name"),
        {"now": now, "campaign": campaign_id}).all())
    for finished_id, name in done:
        announce_finished(session, campaign_id=finished_id, name=name, completed_at=now)
    return [finished_id for finished_id, _name in done]


def announce_finished(session: Session, *, campaign_id: uuid.UUID, name: str, completed_at: datetime) -> None:
    """``campaign.finished`` to the app's servers (signed webhook), in the completing transaction.

    The status change above happens once (``WHERE status = 'running'``), so the event does too.
    """
    counts = dict(session.execute(text(
        "SELECT status, count(*) FROM push_deliveries WHERE campaign_id = :c GROUP BY status"),
        {"c": campaign_id}).all())
    emit(session, "campaign.finished", {
        "id": str(campaign_id), "name": name, "completed_at": completed_at.isoformat(),
        "recipients": sum(counts.values()), "deliveries": {str(k): int(v) for k, v in sorted(counts.items())}})
