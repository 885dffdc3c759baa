"""Push housekeeping jobs, and the transactional job of the engine before the unified ledger."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from backend.extensions import db
from backend.notifications.devices import prune_stale_tokens as prune
from jobs.delivery import send_pushes


def prune_stale_tokens() -> int:
    """Periodic: clear device tokens not refreshed for PUSH_TOKEN_STALE_DAYS (FCM token hygiene)."""
    return prune(db.session, older_than=timedelta(days=current_app.config["PUSH_TOKEN_STALE_DAYS"]))


def deliver_notifications(*, notification_ids: list[str], attempt: int = 1) -> dict:
    """(Queued before the upgrade) Run a transactional lane: every due transactional row goes out."""
    return send_pushes(campaign_id=None)
