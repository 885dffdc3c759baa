"""The write path: a checked batch goes into PostgreSQL before the client hears "accepted".

Invariant: every event counted in ``accepted`` is committed in ``analytics_events`` (and
its day roll-up) when the answer leaves; nothing waits in Redis or in a worker. One
statement does the work: the install is recorded, the batch's columns are unnested, the
client event IDs are claimed in ``analytics_event_ids`` (a unique key), and only the
claimed rows are inserted and rolled up, so a retried batch counts once.

An anonymous batch (the common case) sends that one statement on a connection in
autocommit: one round trip, atomic, committed when it returns. A signed-in batch first
moves the install's anonymous history onto the user, so it runs in a transaction.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import psycopg2
import psycopg2.errors
from flask import current_app
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.dialects.postgresql import psycopg2 as psycopg2_dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, scoped_session

from backend.analytics import identity, partitions
from backend.analytics.batches import CheckedBatch, Limits, check_batch, encode_properties
from backend.common.db import commits_held, watch_server_hangups
from backend.common.errors import ValidationFailed
from backend.operations.metrics import ANALYTICS_EVENTS_INGESTED

_WRITE = text("""
WITH install AS (
    """ + identity.INSTALL_UPSERT + """
    RETURNING 1 AS recorded
), batch AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:times AS timestamptz[]), CAST(:names AS text[]),
                         CAST(:sessions AS text[]), CAST(:platforms AS text[]), CAST(:versions AS text[]),
                         CAST(:props AS jsonb[]))
        AS b(event_id, occurred_at, name, session_id, platform, app_version, properties)
), claimed AS (
    INSERT INTO analytics_event_ids (event_id, received_at)
    SELECT event_id, :now FROM batch, install ORDER BY event_id  -- the install row is locked first
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), stored AS (
    INSERT INTO analytics_events (occurred_at, event_id, name, person_id, user_id, install_id, session_id,
                                  platform, app_version, properties, received_at)
    SELECT b.occurred_at, b.event_id, b.name, :person, :user, :install, b.session_id, b.platform,
           b.app_version, b.properties, :now
    FROM batch b JOIN claimed USING (event_id)
    RETURNING occurred_at, platform, app_version
), days AS (
    INSERT INTO analytics_user_days (day, person_id, events, platform, app_version)
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, :person, count(*), max(platform), max(app_version)
    FROM stored GROUP BY 1 ORDER BY 1
    ON CONFLICT (day, person_id) DO UPDATE SET
        events = analytics_user_days.events + excluded.events,
        platform = coalesce(excluded.platform, analytics_user_days.platform),
        app_version = coalesce(excluded.app_version, analytics_user_days.app_version)
), person AS (
    INSERT INTO analytics_persons (person_id, is_user, properties, first_seen_at, last_seen_at)
    SELECT :person, :is_user, CAST(:once AS jsonb) || CAST(:set AS jsonb), min(occurred_at), max(occurred_at)
    FROM stored HAVING count(*) > 0
    """ + identity.PERSON_CONFLICT + """
)
SELECT count(*) AS stored FROM stored
""")  # noqa: S608 - INSTALL_UPSERT and PERSON_CONFLICT are constants


@dataclass(frozen=True)
class Batch:
    """A parsed ingest request."""

    install_id: str
    events: list[Any]
    sent_at: datetime | None = None
    platform: str | None = None
    app_version: str | None = None
    set_properties: dict[str, Any] = field(default_factory=dict)
    set_once: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    """What the client is told: counts, and the events refused or clamped (by index)."""

    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]
    clamped: list[int]


def limits_from(config: dict[str, Any]) -> Limits:
    """The ingest limits of an app's config."""
    return Limits(max_future=timedelta(seconds=config["ANALYTICS_MAX_FUTURE_S"]),
                  max_age=timedelta(days=config["ANALYTICS_MAX_EVENT_AGE_DAYS"]),
                  max_properties_bytes=config["ANALYTICS_MAX_PROPERTIES_BYTES"])


_WRITER = "groundwork.analytics_writer"


class _MissingPartition(Exception):
    """A row fell in a month whose partition the process believed existed."""


def _unscoped(session: Session | scoped_session) -> Session:
    return session() if isinstance(session, scoped_session) else session


def _autocommit_writer(session: Session) -> Engine | None:
    """The engine anonymous batches write through, or None where the session must do it.

    Its connections stay in autocommit (the app's engine switches the isolation level per
    request); like the app's, a checkout asks the kernel whether the server hung up, and
    a connection found dead while writing is replaced and the batch retried once below. None when the session
    joins a caller's transaction (held commits, the tests' outer transaction) or has
    begun one.
    """
    current = _unscoped(session)
    bind = current.get_bind()
    if current.in_transaction() or commits_held(current) or not isinstance(bind, Engine):
        return None
    writer = current_app.extensions.get(_WRITER)
    if writer is None or writer.url != bind.url:
        options = {**current_app.config["SQLALCHEMY_ENGINE_OPTIONS"], "pool_pre_ping": False}
        writer = create_engine(bind.url, isolation_level="AUTOCOMMIT", **options)
        watch_server_hangups(writer)
        current_app.extensions[_WRITER] = writer
    return writer


# The writer's connections prepare the statement once each (PostgreSQL then skips parsing
# and planning it per batch, and replans by itself after partitions change), and pass
# the columns as array literals, which it reads with array_in instead of parsing 350
# ARRAY[...] elements as SQL: 30-40% less PostgreSQL CPU per batch.
#
# Two forms are prepared. Fresh IDs (nearly every batch) are claimed by a plain INSERT: a
# speculative ON CONFLICT insertion per row cost ~10% more PostgreSQL CPU per batch. An ID
# already claimed makes that statement fail whole (autocommit: nothing of it stays), and
# the batch is then sent again through the ON CONFLICT form, which counts the claimed IDs
# as duplicates. Both lock in the same order (install row, IDs in order, roll-up rows).
_POSITIONAL = _WRITE.compile(dialect=psycopg2_dialect.dialect(paramstyle="numeric_dollar"))
_CLAIM_ANY = "ON CONFLICT (event_id) DO NOTHING\n    RETURNING event_id"
_PREPARED = {"groundwork_analytics_write": _POSITIONAL.string,
             "groundwork_analytics_write_fresh": _POSITIONAL.string.replace(_CLAIM_ANY, "RETURNING event_id")}
_PREPARE = [f"PREPARE {name} AS {sql}" for name, sql in _PREPARED.items()]
_ARGUMENTS = " (" + ", ".join(f"%({name})s" for name in _POSITIONAL.positiontup) + ")"
_EXECUTE_ANY = "EXECUTE groundwork_analytics_write" + _ARGUMENTS
_EXECUTE_FRESH = "EXECUTE groundwork_analytics_write_fresh" + _ARGUMENTS
assert _PREPARED["groundwork_analytics_write_fresh"] != _POSITIONAL.string
_PREPARED_KEY = "groundwork.analytics_prepared"
_CHECK_VIOLATION = "23514"  # no partition holds one of the rows


_CONTROL = re.compile(r"[\x00-\x1f]")


def array_literal(values: list[str | None]) -> str:
    """A PostgreSQL array literal of text values (each quoted, None as NULL).

    Text without control characters (every checked column: names and short texts refuse
    them, properties are JSON text) is quoted alike by JSON and by array literals (a
    backslash before each " and \\), and an unquoted null is NULL in both: orjson writes
    it. Other text goes through the general quoting.
    """
    if not _CONTROL.search("".join(filter(None, values))):
        try:
            return "{" + orjson.dumps(values).decode()[1:-1] + "}"
        except TypeError:  # a lone surrogate (the API refuses them earlier): the general quoting tells PostgreSQL
            pass
    return "{" + ",".join("NULL" if value is None else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for value in values) + "}"


def write_params(checked: CheckedBatch, *, batch: Batch, person_id: uuid.UUID, user_id: uuid.UUID | None,
                 ip_prefix: str | None, now: datetime) -> dict[str, Any]:
    """The write statement's parameters for a checked batch."""
    return {"ids": checked.event_ids, "times": checked.times, "names": checked.names,
            "sessions": checked.session_ids, "platforms": checked.platforms, "versions": checked.app_versions,
            "props": checked.properties, "person": person_id, "user": user_id, "install": batch.install_id,
            "now": now, "is_user": user_id is not None, "set": json.dumps(batch.set_properties),
            "once": json.dumps(batch.set_once), "anon": identity.anonymous_person_id(batch.install_id),
            "platform": batch.platform, "version": batch.app_version, "ip": ip_prefix}


def store_autocommit(connection: Any, info: dict[str, Any], params: dict[str, Any]) -> int:
    """Run the write statement alone on an autocommit psycopg2 connection; returns the events stored.

    Atomic, and committed when it returns: this is the whole write path of an anonymous
    batch (IDs claimed, events, roll-ups, install and person), one round trip in the
    common case. ``info`` lives as long as the connection (it remembers the PREPAREs).
    """
    arguments = {**params, "ids": "{" + ",".join(params["ids"]) + "}", "times": "{" + ",".join(params["times"]) + "}",
                 "names": array_literal(params["names"]), "sessions": array_literal(params["sessions"]),
                 "platforms": array_literal(params["platforms"]), "versions": array_literal(params["versions"]),
                 "props": array_literal(params["props"])}
    with connection.cursor() as cursor:
        if not info.get(_PREPARED_KEY):
            for statement in _PREPARE:
                cursor.execute(statement)
            info[_PREPARED_KEY] = True
        try:
            cursor.execute(_EXECUTE_FRESH, arguments)
        except psycopg2.errors.UniqueViolation:
            cursor.execute(_EXECUTE_ANY, arguments)  # some IDs were claimed before: they count as duplicates
        return cursor.fetchone()[0]


def _execute_autocommit(writer: Engine, params: dict[str, Any]) -> int:
    """``store_autocommit`` on a pooled writer connection, once more on a fresh one if it was dead."""
    for attempt in (1, 2):
        pooled = writer.raw_connection()
        try:
            return store_autocommit(pooled.dbapi_connection, pooled.info, params)
        except psycopg2.Error as exc:
            if exc.pgcode == _CHECK_VIOLATION:
                raise _MissingPartition from exc
            dead = bool(pooled.dbapi_connection.closed)
            if dead:
                pooled.invalidate(exc)
            # A connection that died idle (PostgreSQL restarted): the statement never ran
            # or ran whole, and a rerun counts what it stored as duplicates, never twice.
            if attempt == 2 or not dead:
                raise DBAPIError.instance(_EXECUTE_FRESH, None, exc, psycopg2.Error,
                                          connection_invalidated=dead) from exc
        finally:
            pooled.close()
    raise AssertionError("unreachable")


def _write(session: Session, checked: CheckedBatch, *, batch: Batch, person_id: uuid.UUID,
           user_id: uuid.UUID | None, ip_prefix: str | None, now: datetime) -> int:
    writer = _autocommit_writer(session) if user_id is None else None
    partitions.ensure_months(session, {date(int(t[:4]), int(t[5:7]), 1) for t in {t[:7] for t in checked.times}})
    if writer is not None and _unscoped(session).in_transaction():
        session.commit()  # the partition check (and a month it created) is done before the write
    params = write_params(checked, batch=batch, person_id=person_id, user_id=user_id, ip_prefix=ip_prefix, now=now)
    if writer is not None:
        return _execute_autocommit(writer, params)
    try:
        return session.execute(_WRITE, params).scalar_one()
    except IntegrityError as exc:
        if getattr(exc.orig, "pgcode", None) == _CHECK_VIOLATION:
            raise _MissingPartition from exc
        raise


def ingest_batch(session: Session, *, batch: Batch, user_id: uuid.UUID | None, client_ip: str | None,
                 limits: Limits, now: datetime) -> IngestResult:
    """Check, deduplicate and store a batch, with its roll-ups and user properties (commits)."""
    try:
        return _ingest(session, batch=batch, user_id=user_id, client_ip=client_ip, limits=limits, now=now)
    except _MissingPartition:
        # The month cache was stale (a partition dropped or rolled back): redo it all once.
        session.rollback()
        partitions.forget_months()
        return _ingest(session, batch=batch, user_id=user_id, client_ip=client_ip, limits=limits, now=now)


def _ingest(session: Session, *, batch: Batch, user_id: uuid.UUID | None, client_ip: str | None,
            limits: Limits, now: datetime) -> IngestResult:
    for key, values in (("set", batch.set_properties), ("set_once", batch.set_once)):
        encoded = encode_properties(values)
        if encoded is None or len(encoded.encode()) > limits.max_properties_bytes:
            raise ValidationFailed("User properties are a JSON object of limited size, without NUL characters "
                                   "or non-finite numbers.", details={"fields": {f"user_properties.{key}": [
                                       f"at most {limits.max_properties_bytes} bytes of JSON, no NUL, no NaN"]}})
    checked = check_batch(batch.events, sent_at=batch.sent_at, received_at=now, limits=limits,
                          platform=batch.platform, app_version=batch.app_version)
    person_id = user_id if user_id is not None else identity.anonymous_person_id(batch.install_id)
    ip_prefix = identity.truncate_ip(client_ip)
    if user_id is not None:
        identity.join_install(session, install_id=batch.install_id, user_id=user_id)
    stored = 0
    if checked.event_ids:
        stored = _write(session, checked, batch=batch, person_id=person_id, user_id=user_id, ip_prefix=ip_prefix,
                        now=now)
    else:
        identity.upsert_install(session, install_id=batch.install_id, user_id=user_id, platform=batch.platform,
                                app_version=batch.app_version, ip_prefix=ip_prefix, now=now)
    if not stored and (batch.set_properties or batch.set_once):
        identity.upsert_person(session, person_id=person_id, is_user=user_id is not None, first_seen_at=now,
                               last_seen_at=now, set_properties=batch.set_properties, set_once=batch.set_once)
    if _unscoped(session).in_transaction():  # an anonymous batch's writer has committed on its own
        session.commit()
    ANALYTICS_EVENTS_INGESTED.inc(stored)
    return IngestResult(accepted=stored, duplicates=len(checked.event_ids) - stored,
                        rejected=checked.rejected, clamped=checked.clamped)
