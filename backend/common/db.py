"""Declarative base with a constraint naming convention, and column helpers."""
from __future__ import annotations

import select
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import DateTime, Engine, MetaData, String, event, func
from sqlalchemy.exc import DisconnectionError
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


def closed_by_server(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Pool ``checkout`` listener: refuse a pooled connection the server has hung up on.

    A PostgreSQL restart, crash or idle timeout ends a backend by closing its socket (after
    a FATAL message), so an idle pooled connection whose socket is readable, or that
    psycopg2 knows is closed, is dead: raising DisconnectionError makes the pool discard it
    and check out a fresh one. This asks the kernel, not the server, where ``pool_pre_ping``
    spent a ``SELECT 1`` round trip on every checkout (the one-row read of an uncached
    GET /v1/me and every sign-in paid it). A connection that dies while in use still fails
    that request and is invalidated by SQLAlchemy as before.
    """
    if dbapi_connection.closed:
        raise DisconnectionError("the connection is closed")
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    if poller.poll(0):  # an idle connection has nothing to read unless the server hung up
        raise DisconnectionError("the server closed this pooled connection")


def watch_server_hangups(engine: Engine) -> None:
    """Check each checkout with ``closed_by_server`` (instead of a ping round trip)."""
    event.listen(engine, "checkout", closed_by_server)
