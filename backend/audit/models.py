"""The audit log table. Append-only in the database: migration 0007 adds triggers that
refuse UPDATE, DELETE and TRUNCATE, so not even a bug or a hand-typed query in the app's
role rewrites history."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base


class AuditEntry(Base):
    """One staff action: the actor, the object, and the values before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        # The console reads newest first, whole or per object or per actor.
        Index("ix_audit_log_object", "object_type", "object_id", "id"),
        Index("ix_audit_log_actor_id", "actor_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    # No foreign key: the log outlives erased accounts; the email is kept as it was then.
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_email: Mapped[str | None] = mapped_column(String(320))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(128))


__all__ = ["AuditEntry"]
