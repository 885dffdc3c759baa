"""What a transactional ledger row sends: the push of its inbox entry, and the rules it follows.

A transactional send (to a user, to a topic's followers) writes its inbox entries and
their ledger rows in one transaction (``backend.notifications.transactional``); from
then on the engine delivers them exactly like campaign rows. This module is the only
transactional-specific part of delivery: building the push from the entry.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from backend.notifications.delivery.policy import CampaignRules
from backend.notifications.fcm.providers import OutgoingPush
from backend.notifications.models import Notification


def rules_for(notification: Notification, *, attempts: int) -> CampaignRules:
    """The policy settings of one send: its category and priority; its TTL as an expiry."""
    expires_at = None
    # TTL 0 is FCM's "now or never": the first attempt goes (FCM applies it), a retry does not.
    if notification.ttl_seconds is not None and (notification.ttl_seconds > 0 or attempts > 0):
        expires_at = notification.created_at + timedelta(seconds=notification.ttl_seconds)
    return CampaignRules(category=notification.category, priority=notification.priority, respect_quiet_hours=True,
                         expires_at=expires_at, cap_max=None, cap_window=None)


def compose(notification: Notification, *, key: str, token: str, now: datetime) -> OutgoingPush:
    """The push for one device of the entry's user."""
    data = {str(k): str(v) for k, v in (notification.data or {}).items()}
    # The app reports opens and reads with this id (POST /v1/notifications/{id}/opened).
    data["notification_id"] = str(notification.id)
    data["category"] = notification.category
    remaining = None
    if notification.ttl_seconds is not None:
        elapsed = (now - notification.created_at).total_seconds()
        remaining = max(0, int(notification.ttl_seconds - elapsed))
    return OutgoingPush(
        key=key, token=token, title=notification.title, body=notification.body,
        image=notification.image_url, data=data, deep_link=notification.deep_link, ttl_seconds=remaining,
        priority=notification.priority, collapse_key=notification.collapse_key, silent=notification.silent,
        badge=notification.badge, analytics_label=f"tx_{notification.category}", collapse_id=notification.id.hex,
    )
