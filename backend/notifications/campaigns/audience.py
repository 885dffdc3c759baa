"""Campaign audiences: segment filters → one SQLAlchemy Core query over devices ⋈ users.

Users enter as semi/anti-joins (active, properties), so the common audience (zone,
platform, last active) is an index-only scan of ``ix_devices_pushable``.

The same select feeds the dry run (grouped counts), materialization (INSERT … SELECT,
nothing crosses into Python per user) and streaming readers (server-side cursor).
Locale and app-version filters use ``ix_devices_audience`` or read the heap. Variant
and holdout are a deterministic hash of (campaign, user) computed in SQL, so every
device of a user lands in the same arm and a rerun assigns the same arms.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Uuid,
    Values,
    and_,
    case,
    cast,
    column,
    exists,
    func,
    literal,
    or_,
    select,
    values,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.types import UserDefinedType

from backend.auth.models import User
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.models import Device, NotificationPreference, Topic, TopicSubscription

BUCKETS = 10_000  # variant/holdout resolution: 0.01 %
PUSHABLE_PERMISSIONS = ("granted", "provisional")
_VERSION_PREFIX = r"^[0-9]{1,9}(?:\.[0-9]{1,9})*"


class _Bit32(UserDefinedType):
    """PostgreSQL BIT(32): the bridge from a hex digest to an integer."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "BIT(32)"


@dataclass(frozen=True)
class Arm:
    """A variant key and its weight (the holdout is handled separately)."""

    key: str
    weight: int


def parse_version(raw: str) -> list[int]:
    """``2.10.1`` → [2, 10, 1]; raises ValueError when it is not a dotted number."""
    parts = raw.strip().split(".")
    if not raw.strip() or len(parts) > 6 or not all(p.isdigit() and len(p) <= 9 for p in parts):
        raise ValueError(f"not a dotted version: {raw!r}")
    return [int(p) for p in parts]


def _device_version() -> ColumnElement[Any]:
    """The device's app version (``2.10.1-beta``) as an int array that compares numerically."""
    return cast(func.string_to_array(func.substring(Device.app_version, _VERSION_PREFIX), "."), ARRAY(Integer))


def _locale_condition(locales: Sequence[str]) -> ColumnElement[bool]:
    exact = [code for code in locales if "-" in code]
    languages = [code for code in locales if "-" not in code]
    clauses: list[ColumnElement[bool]] = []
    if exact or languages:
        clauses.append(Device.locale.in_([*exact, *languages]))
    clauses.extend(Device.locale.like(f"{language}-%") for language in languages)
    return or_(*clauses)


def eligible_devices(audience: dict[str, Any], *, now: datetime) -> list[ColumnElement[bool]]:
    """WHERE clauses selecting pushable devices of active users matching ``audience``."""
    where: list[ColumnElement[bool]] = [
        Device.token.is_not(None),
        Device.disabled_at.is_(None),
        Device.push_permission.in_(PUSHABLE_PERMISSIONS),
        # Only a few users are not active: an anti-join on their small partial index
        # (ix_users_inactive) instead of joining every audience row to users.
        ~exists().where(User.id == Device.user_id, User.status != "active"),
    ]
    if audience.get("type") == "topic":
        where.append(exists().where(
            TopicSubscription.user_id == Device.user_id,
            TopicSubscription.topic_id == Topic.id,
            Topic.name == audience["topic"],
        ))
    filters = audience.get("filters") or {}
    if filters.get("platforms"):
        where.append(Device.platform.in_(filters["platforms"]))
    if filters.get("locales"):
        where.append(_locale_condition(filters["locales"]))
    if filters.get("time_zones"):
        where.append(Device.time_zone.in_(filters["time_zones"]))
    if filters.get("last_active_within_days"):
        where.append(Device.last_seen_at >= now - timedelta(days=filters["last_active_within_days"]))
    if filters.get("app_version_min"):
        where.append(_device_version() >= literal(parse_version(filters["app_version_min"]), ARRAY(Integer)))
    if filters.get("app_version_max"):
        where.append(_device_version() <= literal(parse_version(filters["app_version_max"]), ARRAY(Integer)))
    properties = filters.get("properties") or {}
    if properties:
        where.append(exists().where(User.id == Device.user_id, User.properties.contains(properties)))
    return where


def variant_of(campaign_id: uuid.UUID, arms: Sequence[Arm], holdout_percent: int) -> ColumnElement[str]:
    """SQL CASE giving each user's arm: 'holdout' for the first holdout share of buckets."""
    bucket = hashed_bucket(campaign_id)
    holdout_edge = holdout_percent * BUCKETS // 100
    whens: list[tuple[ColumnElement[bool], str]] = []
    if holdout_edge:
        whens.append((bucket < holdout_edge, "holdout"))
    total = sum(arm.weight for arm in arms)
    span, edge, running = BUCKETS - holdout_edge, holdout_edge, 0
    for arm in arms[:-1]:
        running += arm.weight
        edge = holdout_edge + span * running // total
        whens.append((bucket < edge, arm.key))
    if not whens:
        return literal(arms[-1].key)
    return case(*whens, else_=literal(arms[-1].key))


def hashed_bucket(campaign_id: uuid.UUID) -> ColumnElement[int]:
    """0..BUCKETS-1 from the first 32 bits of md5(campaign id ‖ user id)."""
    digest = func.md5(literal(str(campaign_id), String) + cast(Device.user_id, String))
    hex32 = literal("x", String) + func.substr(digest, 1, 8)
    return cast(cast(hex32, _Bit32()), BigInteger) % BUCKETS


def opted_out(category: str) -> ColumnElement[bool]:
    """True when the user switched this category off in their preferences."""
    return exists().where(
        NotificationPreference.user_id == Device.user_id,
        NotificationPreference.category == category,
        NotificationPreference.enabled.is_(False),
    )


def audience_select(
    audience: dict[str, Any], *, now: datetime, columns: Sequence[ColumnElement[Any]] | None = None,
) -> Select:
    """SELECT ``columns`` (default: device id, user id, zone, locale, platform) over the audience."""
    cols = columns or (Device.id, Device.user_id, Device.time_zone, Device.locale, Device.platform)
    return (
        select(*cols)
        .select_from(Device)
        .where(and_(*eligible_devices(audience, now=now)))
    )


def stream_audience(
    session: Session, audience: dict[str, Any], *, now: datetime, batch_size: int = 5_000,
) -> Iterator[Sequence[Any]]:
    """Yield the audience in batches through a server-side cursor (memory stays flat).

    Rows are (device_id, user_id, time_zone, locale, platform) with the ids as text: the
    readers pass them on (exports, batch jobs), and parsing 2 UUIDs a row would cost
    more than the query. Core rows, not ORM ones, for the same reason.
    """
    columns = [cast(Device.id, String).label("device_id"), cast(Device.user_id, String).label("user_id"),
               Device.time_zone, Device.locale, Device.platform]
    # Options on the statement, not the connection: Connection.execution_options() changes
    # the session's connection in place, and every later statement would use a cursor.
    stmt = audience_select(audience, now=now, columns=columns).execution_options(
        stream_results=True, yield_per=batch_size)
    yield from session.connection().execute(stmt).partitions(batch_size)


def distinct_zones(session: Session, audience: dict[str, Any], *, now: datetime) -> list[str]:
    """The distinct device zones of the audience (few rows; drives per-zone due times)."""
    stmt = audience_select(audience, now=now, columns=[Device.time_zone]).distinct()
    return list(session.scalars(stmt))


def zone_due_values(dues: dict[str, Any]) -> Values:
    """A VALUES list of (zone, due_at) to join devices on (one row per distinct zone)."""
    rows = [(zone, due.due_at) for zone, due in dues.items()]
    return values(
        column("zone", String), column("due_at", DateTime(timezone=True)), name="zone_due",
    ).data(rows)


def materialize_ledger(
    session: Session, *, campaign_id: uuid.UUID, audience: dict[str, Any], category: str, arms: Sequence[Arm],
    holdout_percent: int, dues: dict[str, Any], now: datetime,
) -> int:
    """INSERT … SELECT the campaign's ledger rows (ON CONFLICT DO NOTHING); returns rows added."""
    if not dues:
        return 0
    zone_due = zone_due_values(dues)
    variant = variant_of(campaign_id, arms, holdout_percent)
    status = case(
        (opted_out(category), literal("suppressed")),
        (variant == "holdout", literal("held_out")),
        else_=literal("pending"),
    )
    source = (
        audience_select(audience, now=now, columns=[
            literal(campaign_id, Uuid).label("campaign_id"), Device.id.label("device_id"), Device.user_id,
            variant.label("variant"), Device.time_zone, Device.locale, status.label("status"),
            zone_due.c.due_at.label("due_at"), zone_due.c.due_at.label("next_attempt_at"),
        ])
        .join(zone_due, zone_due.c.zone == Device.time_zone)
    )
    stmt = (
        pg_insert(PushDelivery)
        .from_select(
            ["campaign_id", "device_id", "user_id", "variant", "time_zone", "locale", "status", "due_at",
             "next_attempt_at"],
            source,
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "device_id"])
    )
    return session.execute(stmt).rowcount
