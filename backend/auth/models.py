"""Account tables."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, column, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base, EmailAddress, TimestampMixin, new_uuid, utcnow


class User(TimestampMixin, Base):
    """An account: a person (email, social, passwordless), an anonymous device, or staff."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user','moderator','marketer','analyst','admin')", name="role_known"),
        CheckConstraint("status IN ('active','suspended','pending_deletion')", name="status_known"),
        Index("uq_users_email", "email", unique=True, postgresql_where=text("email IS NOT NULL")),
        # The staff console lists users newest first and searches them by email or name prefix.
        Index("ix_users_created_at_id", "created_at", "id"),
        Index("ix_users_email_prefix", "email", postgresql_ops={"email": "varchar_pattern_ops"}),
        Index("ix_users_display_name_prefix", func.lower(column("display_name")).label("display_name_lower"),
              postgresql_ops={"display_name_lower": "varchar_pattern_ops"}),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    email: Mapped[str | None] = mapped_column(EmailAddress())
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


class Session(Base):
    """One signed-in device: the family of its rotating refresh tokens."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_name: Mapped[str | None] = mapped_column(String(100))
    platform: Mapped[str | None] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    # Idle expiry: pushed forward on every refresh.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The error code a client gets afterwards: session_revoked, password_changed, ...
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class RefreshToken(Base):
    """One refresh token of a session, stored as a SHA-256 digest; used once, then replaced."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replaced_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("refresh_tokens.id", ondelete="SET NULL"))


class OneTimeToken(Base):
    """A single-use secret sent by email (verify, reset, email change), stored as a digest."""

    __tablename__ = "one_time_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email','reset_password','change_email')", name="purpose_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The address the token was sent to (for change_email: the new one).
    email: Mapped[str] = mapped_column(EmailAddress())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxMail(Base):
    """A mail the outbox backend kept instead of sending (``make run``, the console)."""

    __tablename__ = "mail_outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class SecurityEvent(Base):
    """Something the account holder (and support) should know happened to an account; append-only."""

    __tablename__ = "security_events"
    __table_args__ = (Index("ix_security_events_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # passkey_added, passkey_removed, passkey_clone_suspected, unproven_claim_voided, ...
    kind: Mapped[str] = mapped_column(String(40))
    ip: Mapped[str | None] = mapped_column(String(45))
    details: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


__all__ = ["OneTimeToken", "OutboxMail", "RefreshToken", "SecurityEvent", "Session", "User"]
