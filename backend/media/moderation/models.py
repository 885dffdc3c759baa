"""Moderation tables: cases (one open per target), the reports in them, and the action log."""
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
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base, TimestampMixin, new_uuid

TARGETS = ("media", "user")
REASONS = ("spam", "nudity", "violence", "harassment", "hate", "illegal", "copyright", "impersonation", "other")
CASE_STATUSES = ("open", "closed")
DECISIONS = ("dismiss", "remove", "restore", "warn", "ban")
ACTIONS = (*DECISIONS, "note", "quarantine")


class ModerationCase(TimestampMixin, Base):
    """Everything reported about one target, and what staff decided."""

    __tablename__ = "moderation_cases"
    __table_args__ = (
        CheckConstraint(f"target_type IN {TARGETS!r}", name="target_known"),
        CheckConstraint(f"status IN {CASE_STATUSES!r}", name="status_known"),
        CheckConstraint(f"decision IS NULL OR decision IN {DECISIONS!r}", name="decision_known"),
        # One open case per target: a new report joins it instead of opening another.
        Index("uq_moderation_cases_open_target", "target_type", "target_id", unique=True,
              postgresql_where=text("status = 'open'")),
        # The queue: open cases, oldest first.
        Index("ix_moderation_cases_queue", "status", "opened_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[uuid.UUID] = mapped_column()
    # Whose content or account it is: erased with the account.
    subject_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    reason: Mapped[str] = mapped_column(String(32))
    report_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ModerationReport(Base):
    """One user's report in a case."""

    __tablename__ = "moderation_reports"
    __table_args__ = (
        CheckConstraint(f"reason IN {REASONS!r}", name="reason_known"),
        UniqueConstraint("case_id", "reporter_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("moderation_cases.id", ondelete="CASCADE"))
    reporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ModerationAction(Base):
    """What staff did on a case and when: decisions and notes, appended, never edited."""

    __tablename__ = "moderation_actions"
    __table_args__ = (
        CheckConstraint(f"action IN {ACTIONS!r}", name="action_known"),
        Index("ix_moderation_actions_case", "case_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("moderation_cases.id", ondelete="CASCADE"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
