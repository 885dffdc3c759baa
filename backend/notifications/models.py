"""Push tables: the device registry (more tables join as the domain grows)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base, TimestampMixin, new_uuid


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
