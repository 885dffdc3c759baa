"""Webhook jobs: send one delivery; resend deliveries whose job was lost."""
from __future__ import annotations

import uuid

from backend.extensions import db
from backend.webhooks.delivery import attempt_delivery, resend_lost


def deliver_webhook(*, delivery_id: str) -> str:
    """Try one delivery now; a failure schedules the next try itself."""
    return attempt_delivery(db.session, delivery_id=uuid.UUID(delivery_id))


def resend_lost_webhooks() -> int:
    """Queue again deliveries overdue by minutes (their job never ran)."""
    return resend_lost(db.session)
