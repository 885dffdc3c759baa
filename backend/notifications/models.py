"""Push tables: devices, preferences, topics, the in-app inbox, the outbox (the ledger: delivery.models)."""
from __future__ import annotations

import uuid
from datetime import datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    Time,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.common.db import Base, TimestampMixin, new_uuid

CATEGORIES = ("transactional", "social", "promotional", "re_engagement")
PRIORITIES = ("high", "normal")


class Device(TimestampMixin, Base):
    """One app installation that can receive pushes, refreshed on every app open."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint("platform IN ('ios','android','web')", name="platform_known"),
        CheckConstraint(
            "push_permission IN ('granted','denied','provisional','not_determined')", name="permission_known"
        ),
        # Audience queries filter live devices by zone/platform/locale and last activity.
        Index("ix_devices_audience", "time_zone", "platform", "locale", postgresql_where=text("disabled_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    installation_id: Mapped[str] = mapped_column(String(128), unique=True)
    token: Mapped[str | None] = mapped_column(Text, unique=True)
    platform: Mapped[str] = mapped_column(String(10))
    app_version: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(35), default="en", server_default="en")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    push_permission: Mapped[str] = mapped_column(String(16), default="granted", server_default="granted")
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"), index=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(64))


class NotificationPreference(Base):
    """Whether a user receives pushes of one category (absent row: enabled)."""

    __tablename__ = "notification_preferences"
    __table_args__ = (CheckConstraint(f"category IN {CATEGORIES!r}", name="category_known"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class QuietHours(Base):
    """A user's nightly quiet window in local time; the zone falls back to the user's or device's."""

    __tablename__ = "notification_quiet_hours"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    start_local: Mapped[time] = mapped_column(Time)
    end_local: Mapped[time] = mapped_column(Time)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Topic(Base):
    """A named interest users subscribe to (created on first subscription)."""

    __tablename__ = "topics"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TopicSubscription(Base):
    """One user following one topic."""

    __tablename__ = "topic_subscriptions"

    topic_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    topic: Mapped[Topic] = relationship(lazy="joined")


class Notification(Base):
    """One entry of a user's in-app inbox, and the push sent for it."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(f"category IN {CATEGORIES!r}", name="category_known"),
        CheckConstraint(f"priority IN {PRIORITIES!r}", name="priority_known"),
        # The inbox reads newest first per user, and counts the unread.
        Index("ix_notifications_user_created", "user_id", "created_at", "id"),
        Index("ix_notifications_user_unread", "user_id", postgresql_where=text("read_at IS NULL")),
        Index("ix_notifications_push_due_at", "push_due_at", postgresql_where=text("campaign_id IS NULL")),
        # A campaign's entries, and whether a batch's users have theirs (one probe per user).
        Index("ix_notifications_campaign_user", "campaign_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(String(2000))
    data: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    deep_link: Mapped[str | None] = mapped_column(String(2000))
    image_url: Mapped[str | None] = mapped_column(String(2000))
    # No foreign key: campaigns arrive in a later migration and may be purged independently.
    campaign_id: Mapped[uuid.UUID | None] = mapped_column()
    variant: Mapped[str | None] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(6), default="high", server_default="high")
    ttl_seconds: Mapped[int | None] = mapped_column(Integer)
    collapse_key: Mapped[str | None] = mapped_column(String(64))
    silent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    badge: Mapped[int | None] = mapped_column(Integer)
    # When the push is due (after quiet hours); the reconciler finds due pushes whose job was lost.
    push_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PushOutbox(Base):
    """What the outbox provider would have sent (PUSH_BACKEND=outbox, e.g. `make run`)."""

    __tablename__ = "push_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    token: Mapped[str | None] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
