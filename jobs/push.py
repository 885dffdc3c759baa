"""Transactional push delivery jobs (IDs in; the ledger makes every run idempotent)."""
from __future__ import annotations

import uuid

from backend.extensions import db
from backend.notifications.delivery.transactional import deliver, reconcile
from backend.notifications.fcm.providers import get_provider


def deliver_notifications(*, notification_ids: list[str], attempt: int = 1) -> dict:
    """Push these inbox entries to their users' devices; returns counts by outcome."""
    report = deliver(db.session, get_provider(), notification_ids=[uuid.UUID(i) for i in notification_ids],
                     attempt=attempt)
    return {"outcomes": report.outcomes, "retry_at": report.retry_at.isoformat() if report.retry_at else None}


def reconcile_transactional_pushes() -> int:
    """Periodic: find due pushes whose job never ran (lost enqueue, Redis flush) and enqueue them."""
    return reconcile(db.session)
