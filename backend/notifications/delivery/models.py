"""The push ledger: one row per (origin, device), written before any provider call.

Every push has one row here whatever made it: a campaign (``campaign_id``) or a
transactional send or test send (``notification_id``, the inbox entry it delivers).
The row is the only truth about that push; the engine moves it through its statuses.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base

DELIVERY_STATUSES = (
    "pending", "sending", "sent", "failed", "deferred", "capped", "expired",
    "held_out", "suppressed", "cancelled", "unknown",
)
# Rows the engine will still claim; and rows it has not finished with.
WAITING = ("pending", "deferred")
OPEN = ("pending", "deferred", "sending")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class PushDelivery(Base):
    """One push to one device: claimed with a lease, sent, and its answer recorded."""

    __tablename__ = "push_deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "device_id"),
        UniqueConstraint("notification_id", "device_id"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status_known"),
        CheckConstraint("(campaign_id IS NULL) <> (notification_id IS NULL)", name="one_origin"),
        Index("ix_push_deliveries_campaign_id_status", "campaign_id", "status"),
        # Due work is found by time alone (dispatcher and reconciler).
        Index("ix_push_deliveries_due", "next_attempt_at", postgresql_where=text("status IN ('pending', 'deferred')")),
        # A campaign lane claims its campaign's due rows in due order.
        Index(
            "ix_push_deliveries_campaign_due", "campaign_id", "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'deferred')"),
        ),
        # The transactional lane claims due rows of every transactional send in due order.
        Index(
            "ix_push_deliveries_transactional_due", "next_attempt_at",
            postgresql_where=text("campaign_id IS NULL AND status IN ('pending', 'deferred')"),
        ),
        # Frequency caps count a user's recent sends across campaigns.
        Index(
            "ix_push_deliveries_user_claimed", "user_id", "claimed_at",
            postgresql_where=text("status IN ('sent', 'sending')"),
        ),
        Index("ix_push_deliveries_device_id", "device_id"),
        # The reconciler finds claims whose lease ran out (few rows are ever 'sending').
        Index("ix_push_deliveries_sending", "claimed_at", postgresql_where=text("status = 'sending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    notification_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    # SET NULL, not CASCADE: a device signed out after the row was written leaves the row,
    # which the engine then suppresses with its reason (the count stays visible).
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    # The recipient when the row was written: a device now owned by someone else gets nothing.
    user_id: Mapped[uuid.UUID] = mapped_column()
    variant: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claim_token: Mapped[uuid.UUID | None] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The lane holding the claim renews its lease while it works (engine.LeaseKeeper); the
    # reconciler expires a claim only when neither this nor claimed_at is recent.
    renewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fcm_message_id: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))


__all__ = ["DELIVERY_STATUSES", "OPEN", "WAITING", "PushDelivery"]
