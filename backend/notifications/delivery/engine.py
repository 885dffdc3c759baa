"""Campaign fan-out: claim due ledger rows, apply the send-time policy, push, record.

The ledger (``campaign_deliveries``) is the only truth. A batch is claimed with
``FOR UPDATE SKIP LOCKED`` and committed as 'sending' with a claim token *before* the
provider is called, so no other worker, retry or re-enqueue can pick those rows again;
a crash leaves them 'sending' and the reconciler later marks them 'unknown' (at most
once: a message that may have reached FCM is never sent twice). Results are written
back in one statement per batch, guarded by the claim token.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.jobs import redis_client
from backend.notifications import inbox
from backend.notifications.campaigns.messages import Composer, add_inbox_entries
from backend.notifications.campaigns.models import Campaign, CampaignVariant
from backend.notifications.delivery import policy
from backend.notifications.delivery.dispatch import schedule_dispatch
from backend.notifications.delivery.ledger import CLAIM_SQL, PARK_SQL, RECORD_SQL
from backend.notifications.devices import prune_token
from backend.notifications.fcm.payload import SendResult
from backend.notifications.fcm.providers import (
    FcmProvider,
    Outcome,
    OutgoingPush,
    PushResult,
    get_provider,
    to_fcm_message,
)

# Rows per claim; PIPELINE_SLOTS batches in flight = the sender's 500 connections, so every
# claimed row is requested at once: a crash mid-batch leaves no claimed row unrequested.
BATCH_SIZE = 250
MAX_ATTEMPTS = 4  # provider calls per row for 500/503 before it is failed
RETRY_BASE = timedelta(seconds=20)
RETRY_CAP = timedelta(minutes=15)
DEFAULT_RETRY_AFTER = timedelta(seconds=60)
PRUNED = frozenset({Outcome.UNREGISTERED, Outcome.INVALID_TOKEN, Outcome.SENDER_MISMATCH})
TRANSIENT = frozenset({Outcome.UNAVAILABLE, Outcome.INTERNAL})
PIPELINE_SLOTS = 2  # batches in flight at once: one's database work overlaps the other's requests

log = logging.getLogger(__name__)



@dataclass
class Claimed:
    """One row claimed for sending."""

    id: int
    device_id: uuid.UUID
    user_id: uuid.UUID
    attempts: int
    push: OutgoingPush


@dataclass
class BatchReport:
    """What one claim → send → record round did."""

    claimed: int = 0  # rows looked at
    sent: int = 0
    parked: dict[str, int] = field(default_factory=dict)  # deferred/expired/capped/... counts
    outcomes: dict[str, int] = field(default_factory=dict)
    stop: str | None = None  # why the lane should stop: 'idle', 'paused', 'throttled', 'inactive'
    wake_at: datetime | None = None  # when rows this round pushed back become due
    inbox_events: list[tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=list)


def run_lane(session: Session, *, campaign_id: uuid.UUID, now: datetime | None = None, batch_size: int = BATCH_SIZE,
             max_batches: int | None = None, budget_s: float | None = None,
             should_stop: Callable[[], bool] | None = None, app: Flask | None = None) -> list[BatchReport]:
    """Send due rows of a campaign batch after batch until none is due, the budget ends or a stop.

    ``now`` fixes the clock for every decision (tests); by default each batch reads it anew.
    With FCM, ``PIPELINE_SLOTS`` batches are in flight at once, so the database work of one
    overlaps the requests of the other and the connection pool does not idle.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    started = time.monotonic()

    def out_of_time() -> bool:
        return ((budget_s is not None and time.monotonic() - started >= budget_s)
                or (should_stop is not None and should_stop()))

    provider = get_provider(app)
    if isinstance(provider, FcmProvider) and batch_size * PIPELINE_SLOTS <= provider.sender.max_in_flight:
        return _run_pipelined(session, provider, campaign_id=campaign_id, now=now, batch_size=batch_size,
                              max_batches=max_batches, out_of_time=out_of_time, app=app)
    reports: list[BatchReport] = []
    while True:
        report = send_batch(session, campaign_id=campaign_id, now=now, batch_size=batch_size, app=app)
        reports.append(report)
        if report.stop is not None or len(reports) == max_batches or out_of_time():
            break
    return reports


def send_batch(session: Session, *, campaign_id: uuid.UUID, now: datetime | None = None,
               batch_size: int = BATCH_SIZE, app: Flask | None = None) -> BatchReport:
    """Claim up to ``batch_size`` due rows, decide each, send the sendable ones, record results."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    report = BatchReport()
    begun = _begin(session, campaign_id=campaign_id, now=now, batch_size=batch_size, report=report)
    if begun is None:
        return report
    campaign, token, claimed = begun
    results = get_provider(app).send([c.push for c in claimed])
    _finish(session, campaign, claimed, results, token=token, now=now, report=report, app=app)
    return report


def _begin(session: Session, *, campaign_id: uuid.UUID, now: datetime | None, batch_size: int,
           report: BatchReport) -> tuple[Campaign, uuid.UUID, list[Claimed]] | None:
    """Claim a batch and commit it as 'sending' (durable before any provider call); None: nothing to send."""
    clock = now or utcnow()
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != "running":
        session.rollback()
        report.stop = "inactive"
        return None
    token = uuid.uuid4()
    claimed = _claim(session, campaign, token=token, now=clock, limit=batch_size, report=report)
    session.commit()  # the ledger: 'sending' is durable before any provider call
    if report.wake_at is not None:
        _schedule(session, campaign_id, report.wake_at, clock)
    if not claimed:
        return None
    return campaign, token, claimed


def _finish(session: Session, campaign: Campaign, claimed: list[Claimed], results: list[PushResult], *,
            token: uuid.UUID, now: datetime | None, report: BatchReport, app: Flask) -> None:
    """Record a sent batch's results, commit, then announce the new inbox entries."""
    _record(session, campaign, claimed, results, token=token, now=now, report=report)
    session.commit()
    inbox.announce(redis_client(app), report.inbox_events)  # live inbox streams, after the commit


@dataclass
class _InFlight:
    campaign: Campaign
    token: uuid.UUID
    claimed: list[Claimed]
    report: BatchReport
    future: concurrent.futures.Future[list[SendResult]]


def _run_pipelined(session: Session, provider: FcmProvider, *, campaign_id: uuid.UUID, now: datetime | None,
                   batch_size: int, max_batches: int | None, out_of_time: Callable[[], bool],
                   app: Flask) -> list[BatchReport]:
    """The lane with ``PIPELINE_SLOTS`` batches in flight on the sender's own event loop.

    Each batch is claimed and committed just before its requests go out, and the batches in
    flight together never exceed the sender's connection limit, so every claimed row is
    requested at once (a crash leaves no claimed row unrequested) while the database work of
    the next claim and of the last batch's results runs during the other batch's requests.
    """
    loop = _sender_loop()
    reports: list[BatchReport] = []
    inflight: deque[_InFlight] = deque()
    ended: BatchReport | None = None  # the claim that found nothing to send (idle/throttled/inactive)
    paused: BatchReport | None = None
    claims = 0
    claiming = True
    try:
        while True:
            while claiming and len(inflight) < PIPELINE_SLOTS:
                report = BatchReport()
                begun = _begin(session, campaign_id=campaign_id, now=now, batch_size=batch_size, report=report)
                claims += 1
                if report.stop is not None:
                    ended, claiming = report, False
                if begun is not None:
                    campaign, token, claimed = begun
                    messages = [to_fcm_message(c.push) for c in claimed]
                    future = asyncio.run_coroutine_threadsafe(provider.sender.send_batch_async(messages), loop)
                    inflight.append(_InFlight(campaign, token, claimed, report, future))
                elif report.stop is None:
                    reports.append(report)  # every row of the batch was parked: claim on
                    claiming = not out_of_time()
                if claims == max_batches:
                    claiming = False
            if not inflight:
                break
            done = inflight.popleft()
            _finish(session, done.campaign, done.claimed, _push_results(done.future.result()), token=done.token,
                    now=now, report=done.report, app=app)
            if done.report is not ended:
                reports.append(done.report)
            if done.report.stop == "paused":
                paused, claiming = done.report, False
            elif claiming and out_of_time():
                claiming = False  # budget or shutdown: finish what is in flight, claim no more
    finally:
        if inflight:  # an error above: still record what went out
            session.rollback()
        for left in inflight:
            try:
                _finish(session, left.campaign, left.claimed, _push_results(left.future.result()),
                        token=left.token, now=now, report=left.report, app=app)
            except Exception:  # the reconciler settles these rows as 'unknown' after their lease
                session.rollback()
                log.exception("could not record an in-flight batch of campaign %s", campaign_id)
    if ended is not None:
        reports.append(ended)
    if paused is not None:  # the lane's reason to stop comes last
        reports.remove(paused)
        reports.append(paused)
    return reports


def _push_results(results: list[SendResult]) -> list[PushResult]:
    return [PushResult(r.key, r.outcome, r.name, r.error_code, r.retry_after, r.detail) for r in results]


_LOOP: tuple[int, asyncio.AbstractEventLoop] | None = None
_LOOP_LOCK = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    """This process's background event loop for FCM sends (a forked work-horse starts its own)."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP[0] != os.getpid() or _LOOP[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="fcm-sender", daemon=True).start()
            _LOOP = (os.getpid(), loop)
        return _LOOP[1]


def _claim(session: Session, campaign: Campaign, *, token: uuid.UUID, now: datetime, limit: int,
           report: BatchReport) -> list[Claimed]:
    """Lock due rows, apply the policy, mark the sendable ones 'sending'; caller commits."""
    if campaign.expires_at is not None and now >= campaign.expires_at:
        expired = session.execute(
            text("UPDATE campaign_deliveries SET status = 'expired', error_code = 'expired' "
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
    rows = session.execute(text(CLAIM_SQL.format(properties=properties)), {
        "campaign": campaign.id, "category": campaign.category, "now": now, "limit": limit}).all()
    report.claimed = len(rows)
    if not rows:
        report.stop = "idle"
        return []
    rules = _rules(campaign)
    users = {row[2] for row in rows}
    policy.lock_users(session, users)
    first_sends: dict[uuid.UUID, list[datetime]] = {}
    if rules.cap_max is not None and rules.cap_window is not None:
        first_sends = policy.recent_first_sends(session, user_ids=users, category=campaign.category,
                                                exclude_campaign=campaign.id, since=now - rules.cap_window)
    ids, statuses, next_at, errs = [], [], [], []
    claimed: list[Claimed] = []
    for (row_id, device_id, user_id, variant, locale, zone, attempts, device_token, disabled, denied,
         enabled, q_start, q_end, q_zone, first_name, display_name, props) in rows:
        recipient = policy.Recipient(user_id, zone, device_token, disabled, denied, enabled, q_start, q_end, q_zone)
        verdict = policy.decide(recipient, rules, now=now, first_sends=first_sends.get(user_id, ()))
        ids.append(row_id)
        statuses.append(verdict.status)
        next_at.append(verdict.next_attempt_at)
        errs.append(verdict.reason)
        if verdict.status == "sending":
            push = composer.push(key=str(row_id), token=device_token, variant=variant, locale=locale, zone=zone,
                                 first_name=first_name, display_name=display_name, properties=props)
            claimed.append(Claimed(row_id, device_id, user_id, attempts + 1, push))
        else:
            report.parked[verdict.status] = report.parked.get(verdict.status, 0) + 1
            if verdict.next_attempt_at is not None:
                report.wake_at = min(filter(None, (report.wake_at, verdict.next_attempt_at)))
    session.execute(text(PARK_SQL), {"ids": ids, "statuses": statuses, "next_at": next_at, "errs": errs,
                                  "token": str(token), "now": now})
    return claimed


def _rules(campaign: Campaign) -> policy.CampaignRules:
    cap = campaign.frequency_cap or {}
    cap_max = cap.get("max")
    window = timedelta(hours=float(cap["window_hours"])) if cap.get("window_hours") else None
    return policy.CampaignRules(
        category=campaign.category, priority=str((campaign.message or {}).get("priority") or "high"),
        respect_quiet_hours=campaign.respect_quiet_hours, expires_at=campaign.expires_at,
        cap_max=int(cap_max) if cap_max is not None and window is not None else None, cap_window=window)


def _record(session: Session, campaign: Campaign, claimed: list[Claimed], results: list[PushResult], *,
            token: uuid.UUID, now: datetime | None, report: BatchReport) -> None:
    """Write every result back in one statement; prune tokens, pause on auth failure, fill the inbox."""
    at = now or utcnow()
    by_key = {r.key: r for r in results}
    ids, statuses, mids, errs, next_at = [], [], [], [], []
    sent: list[Claimed] = []
    auth_failure: PushResult | None = None
    for row in claimed:
        result = by_key.get(row.push.key)
        outcome = result.outcome if result else Outcome.INTERNAL
        report.outcomes[outcome.value] = report.outcomes.get(outcome.value, 0) + 1
        status, mid, err, when = _outcome(row, result, at)
        if outcome is Outcome.AUTH_ERROR:
            auth_failure = auth_failure or result
        if outcome in PRUNED:
            prune_token(session, device_id=row.device_id, reason=outcome)
        if status == "sent":
            sent.append(row)
        if when is not None:
            report.wake_at = min(filter(None, (report.wake_at, when)))
        ids.append(row.id)
        statuses.append(status)
        mids.append(mid)
        errs.append(err)
        next_at.append(when)
    session.execute(text(RECORD_SQL), {"ids": ids, "statuses": statuses, "mids": mids, "errs": errs,
                                    "next_at": next_at, "at": at, "token": str(token)})
    report.sent = len(sent)
    if sent:
        report.inbox_events = add_inbox_entries(session, campaign, sent, at)
    if auth_failure is not None:
        code = auth_failure.error_code or auth_failure.outcome.value
        reason = f"FCM authentication failed ({code}): {auth_failure.detail or 'no detail'}"
        session.execute(text("UPDATE campaigns SET status = 'paused', paused_reason = :reason, updated_at = now() "
                             "WHERE id = :c AND status = 'running'"), {"c": campaign.id, "reason": reason[:1000]})
        report.stop = "paused"
    elif report.wake_at is not None:
        schedule_dispatch(session, campaign_id=campaign.id, due_instants=[report.wake_at], now=at)


def _outcome(row: Claimed, result: PushResult | None,
             at: datetime) -> tuple[str, str | None, str | None, datetime | None]:
    """(status, message id, error code, next attempt) for one provider result."""
    if result is None:
        return "unknown", None, "no_result", None
    outcome = result.outcome
    code = result.error_code or outcome.value
    if outcome is Outcome.SENT:
        return "sent", result.message_id, None, None
    if outcome is Outcome.QUOTA_EXCEEDED:
        wait = timedelta(seconds=result.retry_after) if result.retry_after else DEFAULT_RETRY_AFTER
        return "pending", None, code, at + wait
    if outcome is Outcome.AUTH_ERROR:
        return "pending", None, code, None  # untouched: sent when the campaign is resumed
    if outcome is Outcome.UNKNOWN:
        return "unknown", None, "no_answer", None  # FCM may have it: never resend
    if outcome in TRANSIENT:
        if row.attempts >= MAX_ATTEMPTS:
            return "failed", None, code, None
        backoff = min(RETRY_CAP, RETRY_BASE * 2 ** (row.attempts - 1))
        return "pending", None, code, at + backoff * random.uniform(0.5, 1.0)
    return "failed", None, code, None


def _schedule(session: Session, campaign_id: uuid.UUID, at: datetime, now: datetime) -> None:
    schedule_dispatch(session, campaign_id=campaign_id, due_instants=[max(at, now)], now=now)
    session.commit()
