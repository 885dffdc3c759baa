"""Delivering transactional pushes through the send ledger, so a retried job never sends twice.

One ledger row per (notification, device) is created on the first run; a row is claimed
(status ``sending``, committed) before the provider is called, so a second run of the
same job, a double enqueue or a crashed worker's retry never sends it again. FCM's
answer decides the rest: dead tokens are pruned, 429 reschedules after Retry-After,
5xx and auth failures retry with backoff and jitter up to ``MAX_ATTEMPTS``.
"""
from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.jobs import enqueue_after_commit
from backend.notifications.devices import DEAD_TOKEN, FLAGGED_TOKEN, live_devices, prune_token
from backend.notifications.fcm.providers import Outcome, OutgoingPush, PushProvider, PushResult
from backend.notifications.models import Device, Notification, NotificationDelivery
from backend.notifications.preferences import category_enabled

log = logging.getLogger(__name__)

PUSH_JOB = "jobs.push.deliver_notifications"
MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 1800.0
BATCH = 500
# A claim older than this belongs to a worker that died mid-send: FCM may or may not have
# the message, so it is marked unknown rather than sent again.
STALE_CLAIM = timedelta(minutes=15)
RETRYABLE = frozenset({Outcome.QUOTA_EXCEEDED, Outcome.UNAVAILABLE, Outcome.INTERNAL, Outcome.AUTH_ERROR})


@dataclass
class DeliveryReport:
    """Counts of one job run, by outcome; ``retry_at`` when part of it was rescheduled."""

    outcomes: dict[str, int] = field(default_factory=dict)
    retry_at: datetime | None = None

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def deliver(session: Session, provider: PushProvider, *, notification_ids: list[uuid.UUID], attempt: int = 1
            ) -> DeliveryReport:
    """Send every unsent (notification, device) pair of these notifications once."""
    report = DeliveryReport()
    found = session.scalars(select(Notification).where(Notification.id.in_(notification_ids)))
    notifications = {n.id: n for n in found}
    if not notifications:
        return report
    if attempt == 1:
        _create_ledger(session, list(notifications.values()))
    _settle_before_sending(session, notifications, attempt)
    session.commit()
    claimed = _claim(session, list(notifications))
    session.commit()  # the claim is durable before anything leaves
    retry_after = 0.0
    needs_retry = False
    for start in range(0, len(claimed), BATCH):
        batch = claimed[start:start + BATCH]
        pushes = [_push(notifications[row.notification_id], row, token) for row, token in batch]
        results = provider.send(pushes)
        for (row, _token), result in zip(batch, results, strict=True):
            wait = _record(session, row, result, attempt)
            report.add(row.status if row.status != "deferred" else f"deferred:{result.outcome}")
            if row.status == "deferred":
                needs_retry = True
                retry_after = max(retry_after, wait)
                row.next_attempt_at = utcnow() + timedelta(seconds=wait)
        session.commit()
    if needs_retry:
        report.retry_at = utcnow() + timedelta(seconds=retry_after)
        session.execute(update(NotificationDelivery).where(
            NotificationDelivery.notification_id.in_(list(notifications)), NotificationDelivery.status == "deferred",
        ).values(next_attempt_at=report.retry_at))  # the batch retries together, at its longest wait
        enqueue_after_commit(session, PUSH_JOB, queue="push", at=report.retry_at, retries=3,
                             job_id=f"push-retry-{min(notification_ids)}-{attempt + 1}",
                             notification_ids=[str(i) for i in notification_ids], attempt=attempt + 1)
        session.commit()
    return report


def _create_ledger(session: Session, notifications: list[Notification]) -> None:
    """One pending row per live device of each recipient (existing rows are left alone)."""
    devices = live_devices(session, user_ids=list({n.user_id for n in notifications}))
    by_user: dict[uuid.UUID, list[Device]] = {}
    for device in devices:
        by_user.setdefault(device.user_id, []).append(device)
    rows = [{"notification_id": n.id, "device_id": d.id} for n in notifications for d in by_user.get(n.user_id, [])]
    if rows:
        session.execute(insert(NotificationDelivery).values(rows).on_conflict_do_nothing())


def _settle_before_sending(session: Session, notifications: dict[uuid.UUID, Notification], attempt: int) -> None:
    """Expire pushes past their TTL, suppress categories turned off meanwhile, and close stale claims."""
    now = utcnow()
    waiting = (NotificationDelivery.status.in_(("pending", "deferred")),
               NotificationDelivery.notification_id.in_(list(notifications)))
    for notification in notifications.values():
        ttl = notification.ttl_seconds
        # TTL 0 is FCM's "now or never": the first attempt goes (FCM applies it), a retry does not.
        expired = ttl is not None and (
            attempt > 1 if ttl == 0 else notification.created_at + timedelta(seconds=ttl) < now)
        turned_off = not category_enabled(session, user_id=notification.user_id, category=notification.category)
        if expired or turned_off:
            session.execute(update(NotificationDelivery).where(
                *waiting, NotificationDelivery.notification_id == notification.id
            ).values(status="expired" if expired else "suppressed"))
    unreachable = select(Device.id).where(Device.id == NotificationDelivery.device_id, Device.token.is_not(None),
                                          Device.disabled_at.is_(None))
    session.execute(update(NotificationDelivery).where(*waiting, ~unreachable.exists()).values(
        status="failed", error="device_unavailable"))  # token pruned or moved since the row was made
    session.execute(update(NotificationDelivery).where(
        NotificationDelivery.status == "sending", NotificationDelivery.updated_at < now - STALE_CLAIM,
        NotificationDelivery.notification_id.in_(list(notifications)),
    ).values(status="unknown", error="worker_lost"))


def _claim(session: Session, notification_ids: list[uuid.UUID]) -> list[tuple[NotificationDelivery, str]]:
    """Mark waiting rows ``sending`` (row locks make two runs claim disjoint rows); with tokens."""
    claimable = select(NotificationDelivery.id).join(Device, Device.id == NotificationDelivery.device_id).where(
        NotificationDelivery.notification_id.in_(notification_ids),
        NotificationDelivery.status.in_(("pending", "deferred")),
        and_(Device.token.is_not(None), Device.disabled_at.is_(None)),
    ).with_for_update(of=NotificationDelivery, skip_locked=True)
    ids = list(session.scalars(claimable))
    if not ids:
        return []
    session.execute(update(NotificationDelivery).where(NotificationDelivery.id.in_(ids)).values(
        status="sending", attempts=NotificationDelivery.attempts + 1, updated_at=utcnow()))
    rows = session.execute(select(NotificationDelivery, Device.token).join(
        Device, Device.id == NotificationDelivery.device_id).where(NotificationDelivery.id.in_(ids))).all()
    return [(row, token) for row, token in rows]


def _push(notification: Notification, row: NotificationDelivery, token: str) -> OutgoingPush:
    data = {str(k): str(v) for k, v in (notification.data or {}).items()}
    # The app reports opens and reads with this id (POST /v1/notifications/{id}/opened).
    data["notification_id"] = str(notification.id)
    data["category"] = notification.category
    remaining = None
    if notification.ttl_seconds is not None:
        elapsed = (utcnow() - notification.created_at).total_seconds()
        remaining = max(0, int(notification.ttl_seconds - elapsed))
    return OutgoingPush(
        key=str(row.id), token=token, title=notification.title, body=notification.body,
        image=notification.image_url, data=data, deep_link=notification.deep_link, ttl_seconds=remaining,
        priority=notification.priority, collapse_key=notification.collapse_key, silent=notification.silent,
        badge=notification.badge, analytics_label=f"tx_{notification.category}",
    )


def _record(session: Session, row: NotificationDelivery, result: PushResult, attempt: int) -> float:
    """Store one answer on its ledger row; returns how long to wait before retrying (deferred rows)."""
    row.error, row.detail = (None, None) if result.outcome is Outcome.SENT else (
        str(result.error_code or result.outcome), (result.detail or "")[:1000])
    if result.outcome is Outcome.SENT:
        row.status, row.sent_at, row.provider_message_id = "sent", utcnow(), result.message_id
        return 0.0
    if result.outcome in DEAD_TOKEN or result.outcome in FLAGGED_TOKEN:
        row.status = "failed"
        prune_token(session, device_id=row.device_id, reason=result.outcome)
        return 0.0
    if result.outcome is Outcome.UNKNOWN:
        row.status = "unknown"  # FCM may have it: never risk a second copy
        return 0.0
    if result.outcome in RETRYABLE and attempt < MAX_ATTEMPTS:
        row.status = "deferred"
        if result.outcome is Outcome.QUOTA_EXCEEDED and result.retry_after is not None:
            return result.retry_after
        return random.uniform(0.5, 1.0) * min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    row.status = "failed"
    if result.outcome is Outcome.AUTH_ERROR:
        log.error("push credentials rejected by the provider: %s", result.detail)
    return 0.0


# How late a due push may be before the reconciler assumes its job was lost (a Redis flush,
# an enqueue that failed after commit), and how far back it looks.
RECONCILE_GRACE = timedelta(minutes=2)
RECONCILE_HORIZON = timedelta(hours=24)


def overdue_work(session: Session, *, now: datetime | None = None) -> list[tuple[list[uuid.UUID], int]]:
    """(notification ids, attempt) whose job should have run by now, from PostgreSQL alone."""
    now = now or utcnow()
    due = now - RECONCILE_GRACE
    has_rows = select(NotificationDelivery.id).where(NotificationDelivery.notification_id == Notification.id)
    has_device = select(Device.id).where(Device.user_id == Notification.user_id, Device.token.is_not(None),
                                         Device.disabled_at.is_(None), Device.push_permission != "denied")
    never_started = list(session.scalars(select(Notification.id).where(
        Notification.campaign_id.is_(None), Notification.push_due_at <= due,
        Notification.push_due_at > now - RECONCILE_HORIZON, ~has_rows.exists(), has_device.exists(),
    ).limit(5000)))
    work = [(never_started[i:i + BATCH], 1) for i in range(0, len(never_started), BATCH)]
    stalled = session.execute(select(NotificationDelivery.notification_id, NotificationDelivery.attempts).where(
        NotificationDelivery.status == "deferred", NotificationDelivery.next_attempt_at <= due,
    ).limit(5000)).all()
    by_attempt: dict[int, set[uuid.UUID]] = {}
    for notification_id, attempts in stalled:
        by_attempt.setdefault(attempts + 1, set()).add(notification_id)
    for attempt, ids in sorted(by_attempt.items()):
        ordered = sorted(ids)
        work.extend((ordered[i:i + BATCH], attempt) for i in range(0, len(ordered), BATCH))
    return work


def reconcile(session: Session) -> int:
    """Re-enqueue overdue transactional pushes (the ledger makes a duplicate job harmless)."""
    work = overdue_work(session)
    for ids, attempt in work:
        enqueue_after_commit(session, PUSH_JOB, queue="push", retries=3,
                             job_id=f"push-reconcile-{min(ids)}-{attempt}",
                             notification_ids=[str(i) for i in ids], attempt=attempt)
    session.commit()
    return len(work)
