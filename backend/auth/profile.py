"""The signed-in user's profile (/v1/me): read through a Redis cache, update an allow-list.

The cached profile is dropped with the rest of the user's cached state (``forget_state``)
by every service that changes the user, so a read never serves a stale profile after a
write; with Redis unreachable reads go to PostgreSQL.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from flask import Response, current_app, g

from backend.auth.deletion import deletion_due_at
from backend.auth.models import User
from backend.auth.principal import forget_state, me_key
from backend.auth.schemas import MeReadSchema, validate_properties
from backend.common.errors import NotFound, ValidationFailed
from backend.common.jobs import redis_client
from backend.extensions import db

log = logging.getLogger(__name__)
_SCHEMA = MeReadSchema()
WRITABLE = ("display_name", "first_name", "locale", "time_zone")


def profile_of(user: User) -> dict[str, Any]:
    """The JSON-ready profile of ``user``."""
    due = deletion_due_at(user)
    return {
        "id": str(user.id), "email": user.email, "email_verified": user.email_verified_at is not None,
        "role": user.role, "status": user.status, "is_anonymous": user.is_anonymous,
        "has_password": user.password_hash is not None, "display_name": user.display_name,
        "first_name": user.first_name, "locale": user.locale, "time_zone": user.time_zone,
        "properties": user.properties or {}, "created_at": user.created_at.isoformat(),
        "deletion_scheduled_for": due.isoformat() if due else None,
    }


def profile_response(*, user_id: uuid.UUID) -> Response:
    """GET /v1/me's answer: the profile's JSON body as cached, else built from PostgreSQL (then cached).

    The cache holds the body itself (the schema's dump, serialised as every answer is), so
    a hit is served as stored: no parse, no schema dump, no serialisation per request.
    """
    ttl = current_app.config["AUTH_STATE_CACHE_TTL_S"]
    if ttl > 0:
        try:
            # The principal loader fetched it with the session state (one Redis round trip);
            # read Redis here only when the loader did not look (then "cached_profile" is absent).
            cached = g.pop("cached_profile") if "cached_profile" in g else redis_client().get(me_key(user_id))
            if cached is not None:
                return current_app.response_class(cached, mimetype="application/json")
        except redis.RedisError as exc:
            log.warning("profile cache unreachable: %s", exc)
            ttl = 0
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.", code="account_not_found")
    response = current_app.json.response(_SCHEMA.dump(profile_of(user)))
    db.session.rollback()  # read-only: end the transaction before the cache write
    if ttl > 0:
        try:
            redis_client().set(me_key(user_id), response.get_data(), ex=ttl)
        except redis.RedisError as exc:
            log.warning("could not cache profile: %s", exc)
    return response


def update_profile(*, user_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply allow-listed changes; ``properties`` merge and a null value removes a key (commits)."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.", code="account_not_found")
    forget_state(users=[user.id])
    for name in WRITABLE:
        if name in changes:
            if name in ("locale", "time_zone") and changes[name] is None:
                continue
            setattr(user, name, changes[name])
    if "properties" in changes:
        merged = dict(user.properties or {})
        for key, value in changes["properties"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        try:
            validate_properties(merged)
        except Exception as exc:
            db.session.rollback()
            raise ValidationFailed(str(getattr(exc, "messages", exc)), code="properties_too_large",
                                   details={"fields": {"properties": getattr(exc, "messages", [str(exc)])}}) from exc
        user.properties = merged
    db.session.commit()
    forget_state(users=[user.id], strict=False)
    return profile_of(user)
