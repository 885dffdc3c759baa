"""Who events are about: installs, persons, the join at sign-in, and user properties.

An install that has not signed in is an anonymous person whose id is derived from the
install id (no lookup on the hot path). At the first signed-in batch of an install that
still has an anonymous person, that person's events, day roll-ups and properties move
onto the user, and the anonymous person is removed: funnels and retention then follow
one person from first open through sign-up.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_ANONYMOUS_NAMESPACE = uuid.UUID("7d4ac7f8-4a5f-4c39-9d7e-5d8c0b5a3e11")


@functools.lru_cache(maxsize=16384)  # a SHA-1 a call; an install sends many batches
def anonymous_person_id(install_id: str) -> uuid.UUID:
    """The person id of an install's events sent before it signed in."""
    return uuid.uuid5(_ANONYMOUS_NAMESPACE, install_id)


@functools.lru_cache(maxsize=4096)  # an install sends from one address for a while: parse it once
def truncate_ip(address: str | None) -> str | None:
    """The client address with its host part removed (IPv4 /24, IPv6 /48), as a network."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def join_install(session: Session, *, install_id: str, user_id: uuid.UUID) -> bool:
    """Move the install's anonymous history onto ``user_id`` (no commit); False when there is none.

    Deleting the anonymous person first is the claim: of two batches joining at once, the
    second waits on that row and then finds nothing to move.
    """
    anonymous = anonymous_person_id(install_id)
    claimed = session.execute(text(
        "DELETE FROM analytics_persons WHERE person_id = :anon RETURNING properties, first_seen_at, last_seen_at"),
        {"anon": anonymous}).one_or_none()
    if claimed is None:
        return False
    session.execute(text(
        "UPDATE analytics_events SET person_id = :user, user_id = :user WHERE person_id = :anon"),
        {"user": user_id, "anon": anonymous})
    session.execute(text(
        "INSERT INTO analytics_user_days (day, person_id, events, platform, app_version) "
        "SELECT day, :user, events, platform, app_version FROM analytics_user_days WHERE person_id = :anon "
        "ORDER BY day "
        "ON CONFLICT (day, person_id) DO UPDATE SET events = analytics_user_days.events + excluded.events"),
        {"user": user_id, "anon": anonymous})
    session.execute(text("DELETE FROM analytics_user_days WHERE person_id = :anon"), {"anon": anonymous})
    # The anonymous properties were set before sign-up: the user's own values win.
    upsert_person(session, person_id=user_id, is_user=True, first_seen_at=claimed.first_seen_at,
                  last_seen_at=claimed.last_seen_at, set_once=claimed.properties)
    return True


# How a person row absorbs a newer sighting (shared with the write path's single statement).
PERSON_CONFLICT = (
    "ON CONFLICT (person_id) DO UPDATE SET "
    "properties = CAST(:once AS jsonb) || analytics_persons.properties || CAST(:set AS jsonb), "
    "first_seen_at = least(analytics_persons.first_seen_at, excluded.first_seen_at), "
    "last_seen_at = greatest(analytics_persons.last_seen_at, excluded.last_seen_at)")


def upsert_person(session: Session, *, person_id: uuid.UUID, is_user: bool, first_seen_at: datetime,
                  last_seen_at: datetime, set_properties: dict[str, Any] | None = None,
                  set_once: dict[str, Any] | None = None) -> None:
    """Create or widen a person: seen-times stretch, ``set`` overwrites, ``set_once`` only fills gaps."""
    session.execute(text(
        "INSERT INTO analytics_persons (person_id, is_user, properties, first_seen_at, last_seen_at) "
        "VALUES (:person, :is_user, CAST(:once AS jsonb) || CAST(:set AS jsonb), :first, :last) " + PERSON_CONFLICT),
        {"person": person_id, "is_user": is_user, "first": first_seen_at, "last": last_seen_at,
         "set": json.dumps(set_properties or {}), "once": json.dumps(set_once or {})})


# Record an install's batch (shared with the write path's single statement).
INSTALL_UPSERT = (
    "INSERT INTO analytics_installs (install_id, anonymous_person_id, user_id, platform, app_version, "
    "ip_prefix, first_seen_at, last_seen_at, joined_at) "
    "VALUES (:install, :anon, :user, :platform, :version, :ip, :now, :now, "
    "CASE WHEN CAST(:user AS uuid) IS NULL THEN NULL ELSE CAST(:now AS timestamptz) END) "
    "ON CONFLICT (install_id) DO UPDATE SET "
    "user_id = coalesce(excluded.user_id, analytics_installs.user_id), "
    "joined_at = coalesce(analytics_installs.joined_at, excluded.joined_at), "
    "platform = coalesce(excluded.platform, analytics_installs.platform), "
    "app_version = coalesce(excluded.app_version, analytics_installs.app_version), "
    "ip_prefix = coalesce(excluded.ip_prefix, analytics_installs.ip_prefix), "
    "last_seen_at = greatest(analytics_installs.last_seen_at, excluded.last_seen_at)")


def upsert_install(session: Session, *, install_id: str, user_id: uuid.UUID | None, platform: str | None,
                   app_version: str | None, ip_prefix: str | None, now: datetime) -> None:
    """Record that the install sent events now (a signed-in batch ties it to its user)."""
    session.execute(text(INSTALL_UPSERT), {
        "install": install_id, "anon": anonymous_person_id(install_id), "user": user_id, "platform": platform,
        "version": app_version, "ip": ip_prefix, "now": now})
