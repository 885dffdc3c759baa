"""The blocking work of a stream, run in the stream server's thread pool under an app context."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask

from backend.auth.principal import check_live_state, live_states, principal_from_token
from backend.common.errors import Unauthorized
from backend.extensions import db
from backend.notifications.inbox import entries_after, entry_event, newest_entry, recent_entries
from backend.notifications.models import Notification
from backend.streams.tickets import redeem_ticket

# Entries replayed after a Last-Event-ID at most; an app away for longer reads the inbox
# list (GET /v1/notifications/inbox) instead. The heartbeat poll only looks back minutes,
# so the replay must not stop short of what was missed.
REPLAY_MAX = 1000


@dataclass(frozen=True)
class Holder:
    """Who holds a stream: the claims its session is re-checked with at every heartbeat."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    token_version: int

    @property
    def claims(self) -> dict[str, Any]:
        return {"sub": self.user_id, "sid": self.session_id, "ver": self.token_version}


@dataclass
class Replay:
    """What a new stream sends first, and where its catch-up polls start."""

    events: list[dict[str, Any]] = field(default_factory=list)
    anchor: tuple[datetime, str] | None = None


def parse_event_id(raw: str | None) -> uuid.UUID | None:
    """The entry id a client last saw (anything else: start fresh)."""
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def holder_from_token(app: Flask, *, token: str) -> Holder:
    """Verify a bearer access token exactly as the API does (raises Unauthorized)."""
    with app.app_context():
        try:
            principal = principal_from_token(token)
        finally:
            db.session.remove()
    claims = principal.claims
    return Holder(user_id=claims["sub"], session_id=claims["sid"], token_version=claims["ver"])


def holder_from_ticket(app: Flask, *, ticket: str) -> Holder:
    """Redeem a browser stream ticket (single use) and check the session it was minted by is still live."""
    with app.app_context():
        try:
            claims = redeem_ticket(ticket)
            states = live_states([(claims["sub"], claims["sid"])])
            check_live_state(claims, *states[(claims["sub"], claims["sid"])])
        finally:
            db.session.remove()
    return Holder(user_id=claims["sub"], session_id=claims["sid"], token_version=claims["ver"])


def replay(app: Flask, *, user_id: uuid.UUID, last_event_id: uuid.UUID | None) -> Replay:
    """Entries after the client's Last-Event-ID (none without one), and the newest entry as anchor."""
    with app.app_context():
        try:
            if last_event_id is not None:
                backlog = entries_after(db.session, user_id=user_id, after_id=last_event_id, limit=REPLAY_MAX)
                if backlog:
                    return Replay([entry_event(n) for n in backlog], _position(backlog[-1]))
            newest = newest_entry(db.session, user_id=user_id)
            return Replay([], _position(newest) if newest is not None else None)
        finally:
            db.session.remove()


def _position(notification: Notification) -> tuple[datetime, str]:
    return notification.created_at, str(notification.id)


@dataclass
class Sweep:
    """One heartbeat's findings: why each revoked holder must stop, and recent entries by user."""

    revoked: dict[Holder, Any]
    recent: dict[uuid.UUID, list[tuple[tuple[datetime, str], dict[str, Any]]]]


def sweep(app: Flask, *, holders: list[Holder], window_s: float) -> Sweep:
    """Re-check every holder's session and user, and read the holders' entries of the last window."""
    with app.app_context():
        try:
            states = live_states((h.user_id, h.session_id) for h in holders)
            revoked: dict[Holder, Any] = {}
            for holder in holders:
                try:
                    check_live_state(holder.claims, *states[(holder.user_id, holder.session_id)])
                except Unauthorized as ended:
                    revoked[holder] = ended
            recent: dict[uuid.UUID, list] = {}
            users = list({h.user_id for h in holders if h not in revoked})
            for n in recent_entries(db.session, user_ids=users, window_s=window_s):
                recent.setdefault(n.user_id, []).append((_position(n), entry_event(n)))
            return Sweep(revoked, recent)
        finally:
            db.session.remove()
