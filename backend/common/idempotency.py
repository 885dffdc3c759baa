"""``Idempotency-Key`` on creating POSTs: same key and body → the stored answer.

The key, the view's work and the stored answer commit in ONE transaction: the key is
claimed first (a concurrent duplicate's claim waits on the row until this transaction
ends, then replays the answer), the view's own ``commit()`` calls are held
(``held_commits``), and the answer is written before the single commit. So a failure
anywhere (PostgreSQL restarted mid-request, a crash) leaves neither the work nor the
key behind, and the client's retry with the same key does the work exactly once; a
committed key always has its answer. Answers that a retry could change (409, 429, 5xx)
are not stored: the key is released and the client may retry.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Response, current_app, g, request
from flask_smorest import Blueprint
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from backend.common.db import held_commits, utcnow
from backend.common.errors import Conflict, ValidationFailed
from backend.common.models import IdempotencyKey
from backend.common.openapi import answers

HEADER = "Idempotency-Key"
KEY_TTL = timedelta(hours=24)
_REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")
_UNSTORED = {409, 429}

_DOC = Blueprint.doc(parameters=[{
    "in": "header", "name": HEADER, "required": False, "schema": {"type": "string", "maxLength": 255},
    "description": "Retry-safe creation: the same key and body within 24 h returns the first answer.",
}])


def _scope() -> str:
    """Who owns the key: the signed-in principal, else the client address."""
    principal = g.get("principal_id")
    return f"principal:{principal}" if principal else f"addr:{request.remote_addr}"


def _request_hash() -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Make a creating view replay its stored answer for a repeated Idempotency-Key."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if not key:
            return view(*args, **kwargs)
        if len(key) > 255:
            raise ValidationFailed("Idempotency-Key is longer than 255 characters.", code="invalid_idempotency_key")
        from backend.extensions import db

        scope, digest = _scope(), _request_hash()
        claimed = db.session.execute(
            insert(IdempotencyKey)
            .values(scope=scope, key=key, request_hash=digest)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        ).first()
        if claimed is None:
            db.session.rollback()
            return _replay(db, scope, key, digest)
        try:
            with held_commits(db.session):
                response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            db.session.rollback()  # the claim goes with the work: the retry starts afresh
            raise
        if response.status_code in _UNSTORED or response.status_code >= 500:
            _release(db, scope, key)
            return response
        _store(db, scope, key, digest, response)
        db.session.commit()
        return response

    wrapper._apidoc = getattr(view, "_apidoc", {})  # keep flask-smorest's docs
    return _DOC(answers(409, 422)(wrapper))  # a key in flight; a key reused with another body


def _replay(db: Any, scope: str, key: str, digest: str) -> Response:
    record = db.session.scalar(select(IdempotencyKey).where(
        IdempotencyKey.scope == scope, IdempotencyKey.key == key))
    if record is None:  # released between our claim and this read: treat as in flight
        raise Conflict("A request with this Idempotency-Key is in progress.", code="idempotency_in_progress")
    if record.request_hash != digest:
        raise ValidationFailed(
            "This Idempotency-Key was used with a different request.", code="idempotency_key_reused")
    if record.status_code is None:
        raise Conflict("A request with this Idempotency-Key is in progress.", code="idempotency_in_progress")
    response = Response(record.response_body, status=record.status_code, headers=record.response_headers or {})
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _release(db: Any, scope: str, key: str) -> None:
    """Keep what the view did, without the key (a retry may get another answer)."""
    db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))
    db.session.commit()


def _store(db: Any, scope: str, key: str, digest: str, response: Response) -> None:
    """Write the answer beside the claim (or claim again, if the view rolled its claim back)."""
    answer = {"status_code": response.status_code, "response_body": response.get_data(),
              "response_headers": {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}}
    db.session.execute(
        insert(IdempotencyKey).values(scope=scope, key=key, request_hash=digest, **answer)
        .on_conflict_do_update(index_elements=[IdempotencyKey.scope, IdempotencyKey.key], set_=answer)
    )


def purge_expired_keys(session: Any) -> int:
    """Delete keys older than the replay window; returns how many went."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEY_TTL))
    session.commit()
    return result.rowcount
