"""Analytics tables: the time-partitioned event log, the ID ledger, installs, persons, roll-ups.

A *person* is who an event is about: a signed-in user (person_id = the user's id) or an
install that has not signed in yet (person_id = a UUID derived from the install id). When
an install's first signed-in batch arrives, its anonymous history is moved onto the user.

``analytics_events`` is declared here with its partitioning; its monthly partitions live
in the ``analytics_partitions`` schema and are created and dropped by ``partitions.py``.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.common.db import Base

PARTITION_SCHEMA = "analytics_partitions"


class AnalyticsEvent(Base):
    """One product event, stored in the monthly partition of its (corrected) time."""

    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_occurred_at_brin", "occurred_at", postgresql_using="brin"),
        Index("ix_analytics_events_name_occurred_at", "name", "occurred_at", postgresql_include=["person_id"]),
        Index("ix_analytics_events_person_id_occurred_at", "person_id", "occurred_at"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )
    # No primary key in the database (a partitioned key must contain occurred_at, and the
    # client's event id is made unique by analytics_event_ids instead); the mapper's is this pair.
    __mapper_args__ = {"primary_key": ["occurred_at", "event_id"]}

    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    event_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    person_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    install_id: Mapped[str] = mapped_column(String(128), nullable=False)
    session_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    platform: Mapped[str | None] = mapped_column(String(16), nullable=True)
    app_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    properties: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"), nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AnalyticsEventId(Base):
    """Client event IDs seen recently: a retried batch inserts nothing twice."""

    __tablename__ = "analytics_event_ids"
    __table_args__ = (Index("ix_analytics_event_ids_received_at_brin", "received_at", postgresql_using="brin"),)

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AnalyticsInstall(Base):
    """An app install that sent events; joined to its user at its first signed-in batch."""

    __tablename__ = "analytics_installs"

    install_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    anonymous_person_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=True)
    platform: Mapped[str | None] = mapped_column(String(16), nullable=True)
    app_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AnalyticsPerson(Base):
    """A user or anonymous install as analytics sees it: first activity and user properties."""

    __tablename__ = "analytics_persons"
    __table_args__ = (Index("ix_analytics_persons_first_seen_at", "first_seen_at"),)

    person_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    is_user: Mapped[bool] = mapped_column(nullable=False)
    properties: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"), nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AnalyticsUserDay(Base):
    """Roll-up: one row per person and UTC day with activity (actives and retention read it)."""

    __tablename__ = "analytics_user_days"
    __table_args__ = (Index("ix_analytics_user_days_person_id", "person_id"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    events: Mapped[int] = mapped_column(Integer, nullable=False)
    platform: Mapped[str | None] = mapped_column(String(16), nullable=True)
    app_version: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AnalyticsActiveCount(Base):
    """Cache of distinct active persons per day/week/month, refreshed by a periodic job.

    Computed from ``analytics_user_days``; queries read a period here when its row is
    fresh enough and count the roll-up live otherwise (see ``queries/actives.py``).
    """

    __tablename__ = "analytics_active_counts"

    interval: Mapped[str] = mapped_column(String(5), primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    actives: Mapped[int] = mapped_column(Integer, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AnalyticsRetentionCount(Base):
    """Cache of retention cells: persons first seen in ``cohort`` who were active in ``period``.

    One row per (day or week, active period, cohort); the offset is the distance between
    the two. Refreshed by the same periodic jobs as the active counts.
    """

    __tablename__ = "analytics_retention_counts"

    interval: Mapped[str] = mapped_column(String(5), primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    cohort: Mapped[date] = mapped_column(Date, primary_key=True)
    retained: Mapped[int] = mapped_column(Integer, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
