"""Media tables: one row per uploaded object, from the upload request to its variants."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base, TimestampMixin, new_uuid

KINDS = ("avatar", "photo", "video")
# uploading → pending → processing → ready | failed; aborted/expired uploads never reach pending.
STATUSES = ("uploading", "pending", "processing", "ready", "failed", "aborted", "expired")
# none: served when ready; quarantined: held until a moderator decides; removed: never served.
MODERATION_STATES = ("none", "quarantined", "approved", "removed")
# private: only the owner gets URLs; users: any signed-in user may (when servable).
VISIBILITIES = ("private", "users")


class Media(TimestampMixin, Base):
    """An uploaded image or video and everything made from it (all under ``key_prefix``)."""

    __tablename__ = "media"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS!r}", name="kind_known"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        CheckConstraint(f"moderation IN {MODERATION_STATES!r}", name="moderation_known"),
        CheckConstraint(f"visibility IN {VISIBILITIES!r}", name="visibility_known"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_percent"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
        # "list mine, newest first" and the quota sum read the owner's rows by this index.
        Index("ix_media_owner_created", "owner_id", "created_at", "id"),
        # The clean-up job finds abandoned uploads and stale processing by status and age.
        Index("ix_media_status_updated", "status", "updated_at",
              postgresql_where=text("status IN ('uploading', 'pending', 'processing')")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="uploading", server_default="uploading")
    moderation: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    visibility: Mapped[str] = mapped_column(String(16), default="private", server_default="private")
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    declared_type: Mapped[str] = mapped_column(String(100))
    detected_type: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    checksum_sha256: Mapped[str | None] = mapped_column(String(64))
    key_prefix: Mapped[str] = mapped_column(String(200))
    original_key: Mapped[str] = mapped_column(String(255))
    upload_id: Mapped[str | None] = mapped_column(String(255))  # multipart upload, when there is one
    part_size: Mapped[int | None] = mapped_column(Integer)
    upload_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column()
    placeholder: Mapped[str | None] = mapped_column(String(100))
    # name → {"key", "content_type", "width", "height", "bytes", ...}; written by the processors.
    variants: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))

    @property
    def is_multipart(self) -> bool:
        return self.upload_id is not None
