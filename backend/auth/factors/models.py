"""Sign-in factor tables: social identities, TOTP, recovery codes, email codes, MFA challenges."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base, EmailAddress, TimestampMixin, new_uuid


class SocialIdentity(TimestampMixin, Base):
    """A Google or Apple account linked to one of ours; keyed by (provider, subject)."""

    __tablename__ = "social_identities"
    __table_args__ = (
        CheckConstraint("provider IN ('google','apple')", name="provider_known"),
        Index("uq_social_identities_provider_subject", "provider", "subject", unique=True),
        # One identity per provider per account keeps "unlink google" unambiguous.
        Index("uq_social_identities_user_provider", "user_id", "provider", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    # Last email the provider told us (Apple sends it only on the first sign-in).
    email: Mapped[str | None] = mapped_column(EmailAddress())
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    is_private_email: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TotpCredential(TimestampMixin, Base):
    """A user's TOTP secret (encrypted); enabled once confirmed with a code."""

    __tablename__ = "totp_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Highest time step accepted so far: a code is never accepted twice in its window.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Base):
    """One single-use recovery code, stored as a keyed hash."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))


class EmailCode(Base):
    """A six-digit sign-in code mailed to an address; dies when used, expired or guessed at 5 times."""

    __tablename__ = "email_codes"
    __table_args__ = (Index("ix_email_codes_email_live", "email", postgresql_where=text("consumed_at IS NULL")),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    email: Mapped[str] = mapped_column(EmailAddress())
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))


class MfaChallenge(Base):
    """The pending second step of a sign-in: a short-lived, single-use token (hashed)."""

    __tablename__ = "mfa_challenges"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The session the challenge turns into once the second factor is proven.
    device_name: Mapped[str | None] = mapped_column(String(100))
    platform: Mapped[str | None] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))


__all__ = ["EmailCode", "MfaChallenge", "RecoveryCode", "SocialIdentity", "TotpCredential"]
