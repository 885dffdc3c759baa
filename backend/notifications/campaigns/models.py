"""Campaign tables: the campaign and its A/B variants (its ledger rows are in delivery.models)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.auth.models import User
from backend.common.db import Base, TimestampMixin, new_uuid
from backend.notifications.models import Device, Notification

CAMPAIGN_STATUSES = ("draft", "scheduled", "running", "paused", "completed", "cancelled")
CATEGORIES = ("transactional", "social", "promotional", "re_engagement")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Campaign(TimestampMixin, Base):
    """A push campaign built by marketers: audience, message, variants, schedule and limits."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="status_known"),
        CheckConstraint(_in("category", CATEGORIES), name="category_known"),
        CheckConstraint("holdout_percent BETWEEN 0 AND 50", name="holdout_range"),
        CheckConstraint("throttle_per_minute IS NULL OR throttle_per_minute >= 1", name="throttle_positive"),
        # The campaign list pages newest first.
        Index("ix_campaigns_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft", server_default="draft", index=True)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(20), default="promotional", server_default="promotional")
    audience: Mapped[dict] = mapped_column(JSONB)
    message: Mapped[dict] = mapped_column(JSONB)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    schedule: Mapped[dict] = mapped_column(JSONB)
    throttle_per_minute: Mapped[int | None] = mapped_column(Integer)
    frequency_cap: Mapped[dict | None] = mapped_column(JSONB)
    respect_quiet_hours: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stats_cache: Mapped[dict | None] = mapped_column(JSONB)
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CampaignVariant(Base):
    """One A/B arm of a campaign: a weight and a partial override of the message."""

    __tablename__ = "campaign_variants"
    __table_args__ = (
        UniqueConstraint("campaign_id", "key"),
        CheckConstraint("weight > 0", name="weight_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(16))
    weight: Mapped[int] = mapped_column(Integer, default=1)
    message_override: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))


# Indexes on other domains' tables that exist for the audience query (backend.notifications.
# audience); created by migration 0006. Pushable devices by (zone, platform, last seen),
# covering what the ledger needs, so the usual segment is an index-only scan; and the
# few non-active users, so excluding them is an anti-join on a tiny index.
PUSHABLE_DEVICE = "disabled_at IS NULL AND token IS NOT NULL AND push_permission IN ('granted', 'provisional')"
ix_devices_pushable = Index(
    "ix_devices_pushable", Device.time_zone, Device.platform, Device.last_seen_at,
    postgresql_include=["locale", "user_id", "id"], postgresql_where=text(PUSHABLE_DEVICE),
)
ix_users_inactive = Index("ix_users_inactive", User.id, postgresql_where=text("status <> 'active'"))
# Campaign stats join the ledger to the openers of the campaign. Without this index a
# planner with stale statistics (a fresh campaign) nested-looped over every notification
# of the campaign per ledger row: 98 s at 100k recipients, 0.15 s with it.
ix_notifications_campaign_openers = Index(
    "ix_notifications_campaign_openers", Notification.campaign_id, Notification.user_id,
    postgresql_where=text("opened_at IS NOT NULL"),
)

__all__ = ["Campaign", "CampaignVariant"]
