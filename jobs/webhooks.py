"""Webhook jobs: send one delivery; resend deliveries whose job was lost."""
from __future__ import annotations

import uuid

from backend.extensions import db
from backend.webhooks.delivery import attempt_delivery, purge_old_events, resend_lost


def deliver_webhook(*, delivery_id: str) -> str:
    """Try one delivery now; a failure schedules the next try itself."""
    return attempt_delivery(db.session, delivery_id=uuid.UUID(delivery_id))


def resend_lost_webhooks() -> int:
    """Queue again deliveries overdue by minutes (their job never ran)."""
    return resend_lost(db.session)


def purge_webhook_log() -> int:
    """Forget finished webhook events older than 30 days (deliveries and attempts go with them)."""
    return purge_old_events(db.session)
