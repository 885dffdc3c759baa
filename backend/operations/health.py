"""/healthz (the process answers) and /readyz (this pod can serve).

Readiness checks only what a request needs from this pod: PostgreSQL, Redis and the
object store. Queue depth and age are metrics (``/metrics``) and alerts, not readiness:
a backlog would otherwise take every web pod out of the load balancer at once.
"""
from __future__ import annotations

import time

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.common.jobs import redis_client
from backend.extensions import db
from backend.operations.storage_check import storage_reachable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Alive: no dependency is touched."""
    return jsonify(status="ok")


def _check_database() -> tuple[bool, str]:
    try:
        db.session.execute(text("SELECT 1"))
        return True, ""
    except SQLAlchemyError as exc:
        db.session.rollback()
        return False, exc.__class__.__name__
    finally:
        db.session.remove()


def _check_redis() -> tuple[bool, str]:
    try:
        redis_client().ping()
        return True, ""
    except redis.RedisError as exc:
        return False, exc.__class__.__name__


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready: PostgreSQL, Redis and storage answer."""
    started = time.perf_counter()
    checks = {}
    for name, check in (("database", _check_database), ("redis", _check_redis),
                        ("storage", lambda: storage_reachable(current_app.config))):
        ok, reason = check()
        checks[name] = {"ok": ok, **({"reason": reason} if reason else {})}
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks,
            "took_ms": round((time.perf_counter() - started) * 1000, 1)}
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "5"
    return response
