"""Account tables."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, text
from sqlalchemy.dialects.postgresql import CITEXT, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base, TimestampMixin, new_uuid


class User(TimestampMixin, Base):
    """An account: a person (email, social, passwordless), an anonymous device, or staff."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user','moderator','marketer','analyst','admin')", name="role_known"),
        CheckConstraint("status IN ('active','suspended','pending_deletion')", name="status_known"),
        Index("uq_users_email", "email", unique=True, postgresql_where=text("email IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    email: Mapped[str | None] = mapped_column(CITEXT())
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_anonymous: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    role: Mapped[str] = mapped_column(String(20), default="user", server_default="user")
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    display_name: Mapped[str | None] = mapped_column(String(100))
    first_name: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(35), default="en", server_default="en")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    properties: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    deletion_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped on password change, suspension and "sign out everywhere": tokens carrying
    # an older value stop working on their next request.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_ip: Mapped[str | None] = mapped_column(String(45))
    suspended_reason: Mapped[str | None] = mapped_column(String(500))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), server_default=None)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


__all__ = ["User"]
