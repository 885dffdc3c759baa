"""The one send-time policy for every push: recipient re-check, quiet hours, caps, throttle, expiry.

Every rule is decided at the moment a row is claimed, from PostgreSQL alone, and every
rule that says "not now" *defers* the row to the first instant it could go (the end of
the quiet hours, the moment the cap window frees, the next throttle slot) instead of
dropping it. Only a deferral that would land after the campaign's expiry ends the row
('expired', or 'capped' when the cap can never free in time). All functions take ``now``
so tests and the reconciler can reason about any instant without mocking the clock.
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.notifications.campaigns.schedule import local_to_utc, zone_or_fallback

# Categories whose messages are wanted whatever the hour (a login code, a receipt).
QUIET_HOURS_EXEMPT_CATEGORIES = frozenset({"transactional"})
QUIET_HOURS_EXEMPT_PRIORITIES = frozenset({"critical"})
# The throttle is enforced over a rolling minute and, to avoid a burst at the start of
# each minute, over rolling slices of a sixth of it.
THROTTLE_WINDOW = timedelta(minutes=1)
THROTTLE_SLICE = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one claimed row: send now, or park it with a status and a time."""

    status: str  # 'sending' | 'deferred' | 'expired' | 'capped' | 'suppressed' | 'failed'
    next_attempt_at: datetime | None = None
    reason: str | None = None


SEND = Verdict("sending")


@dataclass(frozen=True, slots=True)
class Recipient:
    """The facts about one claimed row that the policy reads."""

    user_id: uuid.UUID
    time_zone: str
    device_present: bool  # False: the device was deleted (signed out) since the row was written
    owner: uuid.UUID | None  # who owns the device now
    token: str | None
    device_disabled: bool
    permission_denied: bool
    category_enabled: bool | None  # None: no preference stored (enabled)
    quiet_start: time | None
    quiet_end: time | None
    quiet_zone: str | None


@dataclass(frozen=True, slots=True)
class CampaignRules:
    """The settings of the origin (a campaign, or one transactional send) that the policy applies."""

    category: str
    priority: str
    respect_quiet_hours: bool
    expires_at: datetime | None
    cap_max: int | None
    cap_window: timedelta | None


def quiet_hours_end(start: time, end: time, zone: str, now: datetime) -> datetime | None:
    """When the quiet window around ``now`` ends (UTC), or None if ``now`` is outside it."""
    if start == end:
        return None
    tz = ZoneInfo(zone_or_fallback(zone, "UTC"))
    local = now.astimezone(tz)
    wall = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:  # e.g. 13:00-15:00, the same day
        inside, end_day = start <= wall < end, today
    else:  # e.g. 22:00-07:00, across midnight
        inside = wall >= start or wall < end
        end_day = today if wall < end else today + timedelta(days=1)
    if not inside:
        return None
    ends = _wall_to_utc(end_day, end, tz.key)
    if ends <= now:
        # DST fall-back: the end's wall time occurs twice and its first occurrence has
        # passed while we are inside the repeated hour; the window ends at the second.
        ends = datetime.combine(end_day, end, tzinfo=tz).replace(fold=1).astimezone(UTC)
    return ends if ends > now else None


def _wall_to_utc(day: date, at: time, zone: str) -> datetime:
    # DST-correct: an end inside a spring-forward gap moves forward, an ambiguous one
    # is its first occurrence (the same rules as local-time scheduling).
    return local_to_utc(day, at, zone)


def cap_frees_at(first_sends: Sequence[datetime], *, cap_max: int, window: timedelta) -> datetime | None:
    """When one more message fits under the cap, or None if it fits now.

    ``first_sends`` are the first send instants of *other* campaigns of the category
    within the window; one more fits once all but ``cap_max - 1`` have left it.
    """
    if len(first_sends) < cap_max:
        return None
    ordered = sorted(first_sends)
    return ordered[len(ordered) - cap_max] + window


def decide(recipient: Recipient, rules: CampaignRules, *, now: datetime,
           first_sends: Sequence[datetime] = ()) -> Verdict:
    """The verdict for one row at ``now``: every rule together, the latest deferral wins."""
    if rules.expires_at is not None and now >= rules.expires_at:
        return Verdict("expired", reason="expired")
    # The recipient as they are now, not as when the row was written: nothing of one
    # user's may reach a phone that has since signed out or passed to someone else.
    if not recipient.device_present:
        return Verdict("suppressed", reason="signed_out")
    if recipient.owner != recipient.user_id:
        return Verdict("suppressed", reason="owner_changed")
    if recipient.category_enabled is False:
        return Verdict("suppressed", reason="category_disabled")
    if not recipient.token or recipient.device_disabled:
        return Verdict("suppressed", reason="token_gone")
    if recipient.permission_denied:
        return Verdict("suppressed", reason="permission_denied")
    defer_until: datetime | None = None
    reason = None
    if rules.cap_max is not None and rules.cap_window is not None:
        frees = cap_frees_at(first_sends, cap_max=rules.cap_max, window=rules.cap_window)
        if frees is not None:
            if rules.expires_at is not None and frees >= rules.expires_at:
                return Verdict("capped", reason="frequency_cap")
            defer_until, reason = frees, "frequency_cap"
    if _quiet_hours_apply(recipient, rules):
        # Evaluate quiet hours at the moment the row could otherwise go, so a cap that
        # frees in the middle of the night moves on to the morning.
        at = defer_until or now
        for _ in range(3):  # a cap deferral can land in the next night's window: re-check
            ends = quiet_hours_end(recipient.quiet_start, recipient.quiet_end,  # type: ignore[arg-type]
                                   recipient.quiet_zone or recipient.time_zone, at)
            if ends is None:
                break
            at, reason = ends, "quiet_hours"
        if at != now:
            defer_until = at
    if defer_until is None:
        return SEND
    if rules.expires_at is not None and defer_until >= rules.expires_at:
        return Verdict("capped" if reason == "frequency_cap" else "expired", reason=reason)
    return Verdict("deferred", next_attempt_at=defer_until, reason=reason)


def _quiet_hours_apply(recipient: Recipient, rules: CampaignRules) -> bool:
    if recipient.quiet_start is None or recipient.quiet_end is None or not rules.respect_quiet_hours:
        return False
    return rules.category not in QUIET_HOURS_EXEMPT_CATEGORIES and rules.priority not in QUIET_HOURS_EXEMPT_PRIORITIES


def recent_first_sends(session: Session, *, user_ids: Iterable[uuid.UUID], category: str,
                       exclude_campaign: uuid.UUID, since: datetime) -> dict[uuid.UUID, list[datetime]]:
    """Per user, the first send instant of each other campaign of ``category`` since ``since``.

    Counts rows being sent ('sending') as well as sent ones, so two campaigns racing for
    the same user see each other (the caller holds per-user advisory locks).
    """
    rows = session.execute(
        text(
            "SELECT d.user_id, min(d.claimed_at) FROM push_deliveries d "
            "JOIN campaigns c ON c.id = d.campaign_id "
            "WHERE d.user_id = ANY(CAST(:users AS uuid[])) AND d.status IN ('sent', 'sending') "
            "AND d.claimed_at > :since AND d.campaign_id <> :campaign AND c.category = :category "
            "GROUP BY d.user_id, d.campaign_id"
        ),
        {"users": [str(u) for u in user_ids], "since": since, "campaign": exclude_campaign, "category": category},
    ).all()
    found: dict[uuid.UUID, list[datetime]] = {}
    for user_id, first in rows:
        found.setdefault(user_id, []).append(first)
    return found


def lock_users(session: Session, user_ids: Iterable[uuid.UUID]) -> None:
    """Serialise cap decisions per user across workers (transaction-scoped, in a fixed order)."""
    keys = sorted({str(u) for u in user_ids})
    if keys:
        session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT hashtextextended('gw-user:' || u, 0) AS k FROM unnest(CAST(:users AS text[])) u "
                "ORDER BY k) s"
            ),
            {"users": keys},
        )


@dataclass(frozen=True, slots=True)
class Allowance:
    """How many rows the throttle lets through now, and when more will be allowed."""

    count: int
    next_slot_at: datetime | None


def throttle_allowance(session: Session, *, campaign_id: uuid.UUID, per_minute: int, now: datetime) -> Allowance:
    """Rows this campaign may hand to the provider at ``now``, counted in PostgreSQL.

    The caller holds the campaign's advisory lock, so concurrent lanes cannot both spend
    the same allowance; Redis holds nothing, so a flush cannot cause a burst.
    """
    per_slice = max(1, math.ceil(per_minute * THROTTLE_SLICE / THROTTLE_WINDOW))
    row = session.execute(
        text(
            "SELECT count(*), min(claimed_at), "
            "count(*) FILTER (WHERE claimed_at > :slice_start), "
            "min(claimed_at) FILTER (WHERE claimed_at > :slice_start) "
            "FROM push_deliveries WHERE campaign_id = :campaign "
            "AND status IN ('sending', 'sent', 'failed', 'unknown') AND claimed_at > :window_start"
        ),
        {"campaign": campaign_id, "window_start": now - THROTTLE_WINDOW, "slice_start": now - THROTTLE_SLICE},
    ).one()
    in_window, oldest_in_window, in_slice, oldest_in_slice = row
    room = min(per_minute - in_window, per_slice - in_slice)
    if room > 0:
        return Allowance(room, None)
    slots = []
    if in_window >= per_minute and oldest_in_window is not None:
        slots.append(oldest_in_window + THROTTLE_WINDOW)
    if in_slice >= per_slice and oldest_in_slice is not None:
        slots.append(oldest_in_slice + THROTTLE_SLICE)
    return Allowance(0, max(slots) if slots else now + THROTTLE_SLICE)


def lock_campaign(session: Session, campaign_id: uuid.UUID) -> None:
    """Serialise throttled claims of one campaign (transaction-scoped advisory lock)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"gw-campaign:{campaign_id}"})
