"""Recording and reading the audit log.

An entry commits in the same transaction as the change it describes: ``audited(...)``
takes the "before" snapshot, and a ``before_commit`` hook takes the "after" snapshot and
adds the entry just before the service's own commit. So a change without its entry (or
an entry for a change that rolled back) cannot happen. Actions that are not database
changes (an RQ job retried) use ``record`` and commit it themselves.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, event, select
from sqlalchemy.orm import Session

from backend.audit.models import AuditEntry

_PENDING = "groundwork.audit_pending"
Snapshot = Callable[[], dict[str, Any] | None]


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in staff member, from where."""

    user_id: uuid.UUID | None
    email: str | None
    role: str | None
    ip: str | None = None
    request_id: str | None = None


@dataclass
class _Pending:
    actor: Actor
    action: str
    object_type: str
    object_id: str | None
    snapshot: Snapshot
    before: dict[str, Any] | None
    note: str | None = None
    written: list[AuditEntry] = field(default_factory=list)


def _entry(p: _Pending, after: dict[str, Any] | None) -> AuditEntry:
    a = p.actor
    return AuditEntry(actor_id=a.user_id, actor_email=a.email, actor_role=a.role, action=p.action,
                      object_type=p.object_type, object_id=p.object_id, before=p.before, after=after,
                      note=p.note, ip=a.ip, request_id=a.request_id)


def _write_pending(session: Session) -> None:
    for pending in session.info.pop(_PENDING, []):
        entry = _entry(pending, _jsonable(pending.snapshot()))
        session.add(entry)
        pending.written.append(entry)


def install_audit_hooks(session_class: type[Session]) -> None:
    """Attach the before-commit hook once per session class."""
    if not event.contains(session_class, "before_commit", _write_pending):
        event.listen(session_class, "before_commit", _write_pending)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@contextmanager
def audited(session: Session, *, actor: Actor, action: str, object_type: str, object_id: Any,
            snapshot: Snapshot, note: str | None = None) -> Iterator[None]:
    """Log ``action`` on the object in the same commit as the service call made inside the block."""
    pending = _Pending(actor, action, object_type, None if object_id is None else str(object_id), snapshot,
                       _jsonable(snapshot()), (note or "").strip()[:2000] or None)
    session.info.setdefault(_PENDING, []).append(pending)
    try:
        yield
    except BaseException:
        queue = session.info.get(_PENDING, [])
        if pending in queue:
            queue.remove(pending)
        raise
    if not pending.written:  # the service had nothing to change (no commit): still say who tried what
        session.commit()


def record(session: Session, *, actor: Actor, action: str, object_type: str, object_id: Any,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           note: str | None = None) -> AuditEntry:
    """Log an action that is not a database change here (commits)."""
    entry = _entry(_Pending(actor, action, object_type, None if object_id is None else str(object_id),
                            lambda: None, _jsonable(before), (note or "").strip()[:2000] or None), _jsonable(after))
    session.add(entry)
    session.commit()
    return entry


def entries_query(*, object_type: str | None = None, object_id: str | None = None,
                  actor_id: uuid.UUID | None = None, action: str | None = None) -> Select:
    """Audit entries, filtered by object, actor or action (pages newest first by id)."""
    stmt = select(AuditEntry)
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if actor_id:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return stmt
