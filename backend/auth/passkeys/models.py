"""Passkey tables: registered credentials and the single-use challenges of their ceremonies."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base, TimestampMixin, new_uuid


class PasskeyCredential(TimestampMixin, Base):
    """One WebAuthn credential of a user: the public key a phone's Secure Enclave or Keystore signs for."""

    __tablename__ = "passkey_credentials"
    __table_args__ = (
        CheckConstraint("disabled_reason IS NULL OR disabled_reason IN ('clone_suspected')",
                        name="disabled_reason_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The authenticator's ID for the key (at most 1023 bytes by the spec); sign-in looks it up.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key, as the authenticator sent it
    # Highest signature counter seen; synced passkeys always report 0 (no clone check possible).
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    transports: Mapped[list[str]] = mapped_column(ARRAY(String(16)), default=list, server_default=text("'{}'"))
    device_name: Mapped[str | None] = mapped_column(String(100))
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    backed_up: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A credential that signed with a counter going backwards is refused from then on.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(40))


class PasskeyChallenge(Base):
    """A challenge handed to an authenticator; redeemed at most once, before it expires."""

    __tablename__ = "passkey_challenges"
    __table_args__ = (
        CheckConstraint("purpose IN ('register','sign_in')", name="purpose_known"),
        Index("ix_passkey_challenges_expires_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    # SHA-256 of the challenge bytes: the response names its challenge, the lookup is by digest.
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(10))
    # register: the signed-in user; sign_in: the account named by email, or NULL (discoverable).
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))


__all__ = ["PasskeyChallenge", "PasskeyCredential"]
