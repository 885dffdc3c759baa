"""Claiming a batch: lock due rows of one origin, decide each with the policy, mark the sendable.

Two origins, one shape: a campaign's rows (composed from the campaign message, its
variant and the recipient) and the transactional rows of every send (composed from
their inbox entry). Both read the recipient as it is now and go through ``policy.decide``;
the caller commits, so 'sending' is durable before any provider call.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.notifications.campaigns.messages import Composer
from backend.notifications.campaigns.models import Campaign, CampaignVariant
from backend.notifications.delivery import digest, policy, transactional
from backend.notifications.delivery.ledger import CLAIM_CAMPAIGN_SQL, CLAIM_TRANSACTIONAL_SQL, PARK_SQL
from backend.notifications.fcm.providers import OutgoingPush
from backend.notifications.models import Notification


@dataclass
class Claimed:
    """One row claimed for sending."""

    id: int
    device_id: uuid.UUID
    user_id: uuid.UUID
    attempts: int
    push: OutgoingPush
    riders: list[int] = field(default_factory=list)  # rows this push stands for too (a digest)


@dataclass
class BatchReport:
    """What one claim → send → record round did."""

    claimed: int = 0  # rows looked at
    sent: int = 0
    parked: dict[str, int] = field(default_factory=dict)  # deferred/expired/capped/suppressed/... counts
    outcomes: dict[str, int] = field(default_factory=dict)
    stop: str | None = None  # why the lane should stop: 'idle', 'paused', 'throttled', 'inactive'
    wake_at: datetime | None = None  # when rows this round pushed back become due
    inbox_events: list[tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=list)
    row_outcomes: dict[int, str] = field(default_factory=dict)  # the provider's answer per row sent
    stale: int = 0  # rows sent whose claim was taken back before the answer came (not recorded)

    def wake(self, at: datetime | None) -> None:
        """Remember the earliest instant a parked row becomes due."""
        if at is not None:
            self.wake_at = min(filter(None, (self.wake_at, at)))


class _Parker:
    """Collects the verdicts of the claimed rows the policy holds back and writes them in one statement.

    The claim marked every row 'sending'; a batch whose rows all go out writes nothing here.
    """

    def __init__(self, report: BatchReport) -> None:
        self.report = report
        self.ids: list[int] = []
        self.statuses: list[str] = []
        self.next_at: list[datetime | None] = []
        self.errs: list[str | None] = []
        self.was_claimed: list[datetime | None] = []
        self.was_renewed: list[datetime | None] = []

    def add(self, row_id: int, verdict: policy.Verdict, was_claimed: datetime | None,
            was_renewed: datetime | None) -> None:
        if verdict.status == "sending":
            return
        self.ids.append(row_id)
        self.statuses.append(verdict.status)
        self.next_at.append(verdict.next_attempt_at)
        self.errs.append(verdict.reason)
        self.was_claimed.append(was_claimed)
        self.was_renewed.append(was_renewed)
        self.report.parked[verdict.status] = self.report.parked.get(verdict.status, 0) + 1
        self.report.wake(verdict.next_attempt_at)

    def write(self, session: Session, *, token: uuid.UUID) -> None:
        if self.ids:
            session.execute(text(PARK_SQL), {
                "ids": self.ids, "statuses": self.statuses, "next_at": self.next_at, "errs": self.errs,
                "was_claimed": self.was_claimed, "was_renewed": self.was_renewed, "token": str(token)})


def claim_campaign(session: Session, campaign: Campaign, *, token: uuid.UUID, now: datetime, limit: int,
                   report: BatchReport) -> list[Claimed]:
    """Lock due rows of a campaign, apply the policy, mark the sendable ones 'sending'; caller commits."""
    if campaign.expires_at is not None and now >= campaign.expires_at:
        expired = session.execute(
            text("UPDATE push_deliveries SET status = 'expired', error_code = 'expired' "
                 "WHERE campaign_id = :c AND status IN ('pending', 'deferred')"), {"c": campaign.id}).rowcount
        report.parked["expired"] = expired
        report.stop = "idle"
        return []
    if campaign.throttle_per_minute:
        policy.lock_campaign(session, campaign.id)
        allowance = policy.throttle_allowance(session, campaign_id=campaign.id,
                                              per_minute=campaign.throttle_per_minute, now=now)
        if allowance.count <= 0:
            report.stop, report.wake_at = "throttled", allowance.next_slot_at
            return []
        limit = min(limit, allowance.count)
    composer = Composer(campaign, session.scalars(
        select(CampaignVariant).where(CampaignVariant.campaign_id == campaign.id)))
    properties = "u.properties" if composer.personal else "NULL"
    rows = session.execute(text(CLAIM_CAMPAIGN_SQL.format(properties=properties)), {
        "campaign": campaign.id, "category": campaign.category, "now": now, "limit": limit,
        "token": str(token)}).all()
    report.claimed = len(rows)
    if not rows:
        report.stop = "idle"
        return []
    rules = campaign_rules(campaign)
    first_sends: dict[uuid.UUID, list[datetime]] = {}
    if rules.cap_max is not None and rules.cap_window is not None:
        # Only a cap reads other campaigns' sends: serialise those decisions per user.
        users = {row[2] for row in rows}
        policy.lock_users(session, users)
        first_sends = policy.recent_first_sends(session, user_ids=users, category=campaign.category,
                                                exclude_campaign=campaign.id, since=now - rules.cap_window)
    parker = _Parker(report)
    claimed: list[Claimed] = []
    for (row_id, device_id, user_id, variant, locale, zone, attempts, device_token, disabled, denied, owner,
         enabled, q_start, q_end, q_zone, first_name, display_name, props, was_claimed, was_renewed) in rows:
        recipient = policy.Recipient(user_id, zone, device_id is not None and owner is not None, owner,
                                     device_token, bool(disabled), bool(denied), enabled, q_start, q_end, q_zone)
        verdict = policy.decide(recipient, rules, now=now, first_sends=first_sends.get(user_id, ()))
        parker.add(row_id, verdict, was_claimed, was_renewed)
        if verdict.status == "sending":
            push = composer.push(key=str(row_id), token=device_token, variant=variant or "A", locale=locale,
                                 zone=zone, first_name=first_name, display_name=display_name, properties=props)
            claimed.append(Claimed(row_id, device_id, user_id, attempts + 1, push))
    parker.write(session, token=token)
    return claimed


def claim_transactional(session: Session, *, token: uuid.UUID, now: datetime, limit: int, report: BatchReport,
                        digest_categories: frozenset[str] = frozenset(), only: list[int] | None = None
                        ) -> list[Claimed]:
    """Lock due transactional rows (any send), apply the policy, mark the sendable ones; caller commits.

    Held rows of a device in ``digest_categories`` go out as one summary push (``digest``);
    ``only`` restricts the claim to those rows (a test send, delivered in its request).
    """
    rows = session.execute(text(CLAIM_TRANSACTIONAL_SQL), {"now": now, "limit": limit, "only": only,
                                                          "token": str(token)}).all()
    report.claimed = len(rows)
    if not rows:
        report.stop = "idle"
        return []
    entries = {n.id: n for n in session.scalars(
        select(Notification).where(Notification.id.in_({row[3] for row in rows})))}
    parker = _Parker(report)
    sendable: list[tuple[int, uuid.UUID, uuid.UUID, int, str, Notification]] = []
    held: list[digest.Held] = []
    for (row_id, device_id, user_id, notification_id, _locale, zone, attempts, device_token, disabled, denied,
         owner, enabled, q_start, q_end, q_zone, last_reason, was_claimed, was_renewed) in rows:
        entry = entries[notification_id]
        recipient = policy.Recipient(user_id, zone, device_id is not None and owner is not None, owner,
                                     device_token, bool(disabled), bool(denied), enabled, q_start, q_end, q_zone)
        verdict = policy.decide(recipient, transactional.rules_for(entry, attempts=attempts), now=now)
        parker.add(row_id, verdict, was_claimed, was_renewed)
        if verdict.status == "sending":
            sendable.append((row_id, device_id, user_id, attempts, device_token, entry))
            if entry.category in digest_categories and last_reason in digest.HELD:
                held.append(digest.Held(row_id, device_id, device_token, entry))
    parker.write(session, token=token)
    folded = digest.fold(held, now=now)
    riding = {rider for _push, riders in folded.values() for rider in riders}
    claimed: list[Claimed] = []
    for row_id, device_id, user_id, attempts, device_token, entry in sendable:
        if row_id in riding:
            continue  # sent as part of its device's summary
        if row_id in folded:
            push, riders = folded[row_id]
            claimed.append(Claimed(row_id, device_id, user_id, attempts + 1, push, riders))
        else:
            push = transactional.compose(entry, key=str(row_id), token=device_token, now=now)
            claimed.append(Claimed(row_id, device_id, user_id, attempts + 1, push))
    return claimed


def campaign_rules(campaign: Campaign) -> policy.CampaignRules:
    """The policy settings of a campaign: category, priority, quiet hours, expiry and cap."""
    cap = campaign.frequency_cap or {}
    cap_max = cap.get("max")
    window = timedelta(hours=float(cap["window_hours"])) if cap.get("window_hours") else None
    return policy.CampaignRules(
        category=campaign.category, priority=str((campaign.message or {}).get("priority") or "high"),
        respect_quiet_hours=campaign.respect_quiet_hours, expires_at=campaign.expires_at,
        cap_max=int(cap_max) if cap_max is not None and window is not None else None, cap_window=window)
