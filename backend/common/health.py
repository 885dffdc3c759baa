"""/healthz (the process answers) and /readyz (its dependencies answer)."""
from __future__ import annotations

import time

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.common.jobs import QUEUES, get_queue, redis_client
from backend.common.storage_check import storage_reachable
from backend.extensions import db

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


def _check_queues() -> tuple[bool, str, dict[str, int]]:
    try:
        depths = {name: get_queue(name).count for name in QUEUES}
    except redis.RedisError as exc:
        return False, exc.__class__.__name__, {}
    limit = current_app.config["QUEUE_DEPTH_READY_MAX"]
    over = [name for name, depth in depths.items() if depth > limit]
    return (not over), (f"queues over {limit}: {', '.join(over)}" if over else ""), depths


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready: PostgreSQL, Redis and storage answer and the queues are not backed up."""
    started = time.perf_counter()
    checks = {}
    for name, check in (("database", _check_database), ("redis", _check_redis),
                        ("storage", lambda: storage_reachable(current_app.config))):
        ok, reason = check()
        checks[name] = {"ok": ok, **({"reason": reason} if reason else {})}
    ok, reason, depths = _check_queues()
    checks["queues"] = {"ok": ok, "depths": depths, **({"reason": reason} if reason else {})}
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks,
            "took_ms": round((time.perf_counter() - started) * 1000, 1)}
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "5"
    return response
