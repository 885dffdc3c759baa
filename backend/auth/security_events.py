"""The account's security event log: what happened to its sign-in methods, for the holder and support.

Events are written in the caller's transaction (they land with the change they describe)
and logged at WARNING for the ones an operator should see at once.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select

from backend.auth.models import SecurityEvent
from backend.common.pagination import Page, paginate
from backend.extensions import db

log = logging.getLogger(__name__)
# Kinds that suggest an attack in progress: also a WARNING log line for operators and alerting.
ALARMING = frozenset({"passkey_clone_suspected", "unproven_claim_voided"})


def record_event(*, user_id: uuid.UUID, kind: str, ip: str | None = None, **details: Any) -> SecurityEvent:
    """Add an event to the user's log (no commit: it lands with the caller's change)."""
    event = SecurityEvent(user_id=user_id, kind=kind, ip=(ip or "")[:45] or None, details=details)
    db.session.add(event)
    if kind in ALARMING:
        log.warning("security event %s for user %s: %s", kind, user_id, details)
    return event


def list_events(*, user_id: uuid.UUID, cursor: str | None, limit: int) -> Page:
    """One page of the user's security events, newest first."""
    return paginate(db.session, select(SecurityEvent).where(SecurityEvent.user_id == user_id),
                    order=(SecurityEvent.created_at, SecurityEvent.id), cursor=cursor, limit=limit)


def export_events(user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every event of the user, oldest first, for the data export."""
    events = db.session.scalars(select(SecurityEvent).where(SecurityEvent.user_id == user_id)
                                .order_by(SecurityEvent.created_at))
    return [{"kind": e.kind, "ip": e.ip, "details": e.details, "at": e.created_at.isoformat()} for e in events]
