"""Rows for delivery tests: users with devices, campaigns and their ledger, inserted directly."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from sqlalchemy import select, text

from backend.auth.models import User
from backend.notifications.campaigns.models import Campaign
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.models import Device, QuietHours

MESSAGE = {"default_locale": "en", "locales": {"en": {"title": "Hello", "body": "News for you"},
                                                "fr": {"title": "Bonjour", "body": "Des nouvelles"}},
           "data": {"screen": "home"}, "priority": "high"}


@dataclass
class Recipient:
    user: User
    devices: list[Device] = field(default_factory=list)


def make_user(session: Any, *, zone: str = "UTC", devices: int = 1, token_prefix: str = "tok",
              quiet: tuple[time, time] | None = None, first_name: str | None = None) -> Recipient:
    """A user with ``devices`` devices in ``zone`` (tokens ``<prefix>-<hex>``), optionally quiet hours."""
    user = User(email=f"{uuid.uuid4().hex[:12]}@example.test", first_name=first_name, time_zone=zone)
    session.add(user)
    session.flush()
    made = []
    for _ in range(devices):
        device = Device(user_id=user.id, installation_id=uuid.uuid4().hex, token=f"{token_prefix}-{uuid.uuid4().hex}",
                        platform="android", time_zone=zone, locale="en")
        session.add(device)
        made.append(device)
    if quiet is not None:
        session.add(QuietHours(user_id=user.id, start_local=quiet[0], end_local=quiet[1], time_zone=zone))
    session.flush()
    return Recipient(user, made)


def make_campaign(session: Any, recipients: list[Recipient], *, due_at: datetime, category: str = "promotional",
                  status: str = "running", due_by_zone: dict[str, datetime] | None = None,
                  **fields: Any) -> Campaign:
    """A running campaign whose ledger holds one pending row per device, due at ``due_at`` (or per zone)."""
    campaign = Campaign(name=fields.pop("name", "test campaign"), status=status, category=category,
                        audience={"type": "all"}, message=fields.pop("message", MESSAGE),
                        schedule={"type": "at", "send_at": due_at.isoformat()}, launched_at=due_at, **fields)
    session.add(campaign)
    session.flush()
    for recipient in recipients:
        for device in recipient.devices:
            due = (due_by_zone or {}).get(device.time_zone, due_at)
            session.add(PushDelivery(campaign_id=campaign.id, device_id=device.id, user_id=recipient.user.id,
                                         variant="A", time_zone=device.time_zone, locale=device.locale,
                                         status="pending", due_at=due, next_attempt_at=due))
    session.commit()
    return campaign


def ledger(session: Any, campaign_id: uuid.UUID) -> list[PushDelivery]:
    """The campaign's rows, freshly read."""
    session.expire_all()
    return list(session.scalars(select(PushDelivery).where(PushDelivery.campaign_id == campaign_id)
                                .order_by(PushDelivery.id)))


def statuses(session: Any, campaign_id: uuid.UUID) -> dict[str, int]:
    """Row counts by status."""
    counts: dict[str, int] = {}
    for row in ledger(session, campaign_id):
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def bulk_users(session: Any, count: int, *, token_prefix: str = "tok", zones: list[str] | None = None) -> str:
    """``count`` users with one device each, written in SQL (fast); returns the email tag that marks them."""
    tag = uuid.uuid4().hex[:10]
    zone_list = zones or ["UTC"]
    session.execute(text(
        "INSERT INTO users (id, email, time_zone) "
        "SELECT gen_random_uuid(), 'b' || i || '-' || :tag || '@example.test', "
        "(CAST(:zones AS text[]))[1 + i % cardinality(CAST(:zones AS text[]))] FROM generate_series(1, :n) i"),
        {"tag": tag, "n": count, "zones": zone_list})
    session.execute(text(
        "INSERT INTO devices (id, user_id, installation_id, token, platform, time_zone, locale) "
        "SELECT gen_random_uuid(), u.id, 'inst-' || u.id, :prefix || '-' || u.id, 'android', u.time_zone, 'en' "
        "FROM users u WHERE u.email LIKE :pattern"), {"prefix": token_prefix, "pattern": f"%-{tag}@example.test"})
    return tag


def bulk_campaign(session: Any, count: int, *, due_at: datetime, token_prefix: str = "tok",
                  zones: list[str] | None = None, due_by_zone: dict[str, datetime] | None = None,
                  **fields: Any) -> uuid.UUID:
    """``count`` users with one device each and a running campaign over them, written in SQL (fast)."""
    tag = bulk_users(session, count, token_prefix=token_prefix, zones=zones)
    campaign = Campaign(name=fields.pop("name", f"bulk {tag}"), status=fields.pop("status", "running"),
                        category=fields.pop("category", "promotional"), audience={"type": "all"},
                        message=fields.pop("message", MESSAGE), schedule={"type": "at", "send_at": due_at.isoformat()},
                        launched_at=due_at, **fields)
    session.add(campaign)
    session.flush()
    dues = due_by_zone or {}
    session.execute(text(
        "INSERT INTO push_deliveries (campaign_id, device_id, user_id, variant, time_zone, locale, status, "
        "due_at, next_attempt_at) SELECT :c, d.id, d.user_id, 'A', d.time_zone, d.locale, 'pending', "
        "COALESCE(CAST(CAST(:dues AS jsonb) ->> d.time_zone AS timestamptz), :due), "
        "COALESCE(CAST(CAST(:dues AS jsonb) ->> d.time_zone AS timestamptz), :due) "
        "FROM devices d JOIN users u ON u.id = d.user_id WHERE u.email LIKE :pattern"),
        {"c": campaign.id, "due": due_at, "pattern": f"%-{tag}@example.test",
         "dues": json.dumps({zone: at.isoformat() for zone, at in dues.items()})})
    session.commit()
    return campaign.id


def bulk_transactional(session: Any, count: int, *, due_at: datetime, token_prefix: str = "tok",
                       zones: list[str] | None = None, category: str = "transactional") -> str:
    """``count`` users with one device each and one transactional send to each, with its ledger rows.

    Written in SQL (fast), as ``transactional.send_to_user`` would; the entries carry the
    returned tag as their topic, so a test can find its own rows.
    """
    tag = bulk_users(session, count, token_prefix=token_prefix, zones=zones)
    session.execute(text(
        "INSERT INTO notifications (id, user_id, category, title, body, topic, push_due_at, created_at) "
        "SELECT gen_random_uuid(), u.id, :category, 'Your code', 'is 123456', :tag, :due, now() "
        "FROM users u WHERE u.email LIKE :pattern"),
        {"tag": tag, "due": due_at, "category": category, "pattern": f"%-{tag}@example.test"})
    session.execute(text(
        "INSERT INTO push_deliveries (notification_id, device_id, user_id, time_zone, locale, status, due_at, "
        "next_attempt_at) SELECT n.id, d.id, d.user_id, d.time_zone, d.locale, 'pending', :due, :due "
        "FROM notifications n JOIN devices d ON d.user_id = n.user_id WHERE n.topic = :tag"),
        {"tag": tag, "due": due_at})
    session.commit()
    return tag
