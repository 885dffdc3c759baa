"""Browser stream tickets: how an EventSource, which cannot send an Authorization header, signs in.

A ticket is minted by an authenticated API call and carried in the stream URL's query
string in place of the access token (a URL ends up in logs and histories; a ticket there
is worth nothing a moment later). It is:
- short-lived: ``STREAM_TICKET_TTL_S`` (30 s) in Redis, enough to open one stream;
- single-purpose: only the stream server accepts it, only for the inbox stream; it is
  not a JWT and the API's bearer check never looks it up;
- single-use: redeeming deletes it atomically (GETDEL), so a replayed URL gets 401.
Only its SHA-256 is stored. It binds the session that minted it: the stream server
re-checks that session when redeeming and at every heartbeat, like a bearer stream's.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from typing import Any

import redis
from flask import current_app

from backend.common.errors import ServiceUnavailable, Unauthorized
from backend.common.jobs import redis_client

PURPOSE = "inbox_stream"


def _key(ticket: str) -> str:
    return "groundwork:stream-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


def mint_ticket(*, user_id: uuid.UUID, session_id: uuid.UUID, token_version: int) -> dict[str, Any]:
    """A new single-use ticket for the caller's session; the raw value is returned once, never stored."""
    ttl = current_app.config["STREAM_TICKET_TTL_S"]
    ticket = secrets.token_urlsafe(32)
    holder = {"purpose": PURPOSE, "sub": str(user_id), "sid": str(session_id), "ver": token_version}
    try:
        redis_client().set(_key(ticket), json.dumps(holder), ex=ttl)
    except redis.RedisError as exc:
        raise ServiceUnavailable("Stream tickets cannot be issued right now; retry shortly.",
                                 code="ticket_unavailable") from exc
    return {"ticket": ticket, "expires_in": ttl}


def redeem_ticket(ticket: str) -> dict[str, Any]:
    """The claims (sub, sid, ver) a ticket was minted for; it is gone afterwards. Unauthorized if unknown."""
    try:
        raw = redis_client().getdel(_key(ticket)) if 16 <= len(ticket) <= 128 else None
    except redis.RedisError as exc:
        raise ServiceUnavailable("Stream tickets cannot be checked right now; retry shortly.",
                                 code="ticket_unavailable") from exc
    holder = json.loads(raw) if raw else None
    if not holder or holder.get("purpose") != PURPOSE:
        raise Unauthorized("The stream ticket is unknown, used or expired; ask for a new one.", code="ticket_invalid")
    return {"sub": uuid.UUID(holder["sub"]), "sid": uuid.UUID(holder["sid"]), "ver": holder["ver"]}
