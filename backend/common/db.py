"""Declarative base with a constraint naming convention, and column helpers."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import DateTime, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model: shared metadata with named constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_HOLD_COMMITS = "groundwork.hold_commits"


class Session(FlaskSession):
    """Flask-SQLAlchemy's session, whose ``commit()`` a caller may hold (``held_commits``)."""

    def commit(self) -> None:
        if self.info.get(_HOLD_COMMITS):
            self.flush()  # the service's work joins the caller's one transaction
            return
        super().commit()


@contextmanager
def held_commits(session: Session | scoped_session) -> Iterator[Session]:
    """Inside, a service's ``commit()`` only flushes: the caller commits all of it at once.

    Used where the work and a record of it must commit together or not at all (an
    idempotency key and its stored answer). Jobs enqueued after commit wait for the
    caller's real commit, as they should; other things a service does right after its
    commit (a Redis publish, dropping a cache entry) happen before the real commit, a
    moment early, so they must be harmless if it then fails.
    """
    current = session() if isinstance(session, scoped_session) else session
    current.info[_HOLD_COMMITS] = True
    try:
        yield current
    finally:
        current.info.pop(_HOLD_COMMITS, None)


def commits_held(session: Session) -> bool:
    """Whether ``session``'s commits only flush, inside ``held_commits`` (a caller commits the work)."""
    return bool(session.info.get(_HOLD_COMMITS))


def utcnow() -> datetime:
    """Timezone-aware now in UTC; the only clock models use."""
    return datetime.now(UTC)


def new_uuid() -> uuid.UUID:
    """Random UUID primary key (not guessable, safe to expose)."""
    return uuid.uuid4()


class TimestampMixin:
    """``created_at``/``updated_at`` maintained by the database."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class EmailAddress(TypeDecorator):
    """An email address stored lower-cased, so lookups are case-insensitive.

    Plain VARCHAR rather than PostgreSQL's citext: the embedded server (pgserver)
    ships without contrib extensions, and `make run` must work on it.
    """

    impl = String(320)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        return value.strip().lower() if isinstance(value, str) else value
