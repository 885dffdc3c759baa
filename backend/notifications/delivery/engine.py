"""The claim-per-batch loop that delivers every push: campaign, transactional or test send.

The ledger (``push_deliveries``) is the only truth, whatever wrote the rows. A lane
claims a small batch of due rows of one origin (a campaign, or every transactional send)
with ``FOR UPDATE SKIP LOCKED``, decides each with the one send-time policy, and commits
the sendable ones as 'sending' with a claim token and a lease *before* the provider is
called; then it sends, classifies each answer with the one classifier and records it.
A crash leaves only the rows in flight 'sending'; when their lease runs out the
reconciler makes them due again and they are resent with the same collapse identity, so
a phone that got both copies shows one notification. While a batch's requests are out the
lane renews its lease (``leases.LeaseKeeper``), so only a lane that stopped renewing loses
its rows. Results are written back in one statement per batch, guarded by the claim token:
a claim the reconciler took back records nothing, and only the rows it did record count.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.common.db import utcnow
from backend.common.jobs import redis_client
from backend.notifications import inbox
from backend.notifications.campaigns.messages import add_inbox_entries
from backend.notifications.campaigns.models import Campaign
from backend.notifications.delivery import backoff
from backend.notifications.delivery.claims import BatchReport, Claimed, claim_campaign, claim_transactional
from backend.notifications.delivery.dispatch import schedule_dispatch
from backend.notifications.delivery.leases import LeaseKeeper, lease_of
from backend.notifications.delivery.ledger import RECORD_SQL
from backend.notifications.delivery.outcomes import MAX_ATTEMPTS, PRUNED, Decision, classify
from backend.notifications.devices import prune_token
from backend.notifications.fcm.payload import SendResult
from backend.notifications.fcm.providers import FcmProvider, Outcome, PushResult, get_provider
from backend.operations.work_metrics import count_push_outcomes

__all__ = ["BATCH_SIZE", "LEASE", "MAX_ATTEMPTS", "BatchReport", "Claimed", "deliver_rows", "run_lane", "send_batch"]

# Rows per claim; PIPELINE_SLOTS batches in flight = the sender's 500 connections, so every
# claimed row is requested at once: a crash mid-batch leaves no claimed row unrequested.
BATCH_SIZE = 250
PIPELINE_SLOTS = 2  # batches in flight at once: one's database work overlaps the other's requests
# The default of PUSH_LEASE_S: how long a claim may stay 'sending' without its lane renewing
# it before the reconciler assumes the lane died and makes the rows due again. A working
# lane renews every third of it; short enough that a crashed batch goes out within a minute.
LEASE = timedelta(seconds=45)

log = logging.getLogger(__name__)


def run_lane(session: Session, *, campaign_id: uuid.UUID | None, now: datetime | None = None,
             batch_size: int = BATCH_SIZE, max_batches: int | None = None, budget_s: float | None = None,
             should_stop: Callable[[], bool] | None = None, app: Flask | None = None,
             lease: timedelta | None = None) -> list[BatchReport]:
    """Send due rows of one origin batch after batch until none is due, the budget ends or a stop.

    ``campaign_id`` None is the transactional origin (every transactional send's rows).
    ``now`` fixes the clock for every decision (tests); by default each batch reads it anew.
    With FCM, ``PIPELINE_SLOTS`` batches are in flight at once, so the database work of one
    overlaps the requests of the other and the connection pool does not idle; while they
    are out the lane renews their ``lease`` (default ``PUSH_LEASE_S``).
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    started = time.monotonic()

    def out_of_time() -> bool:
        return ((budget_s is not None and time.monotonic() - started >= budget_s)
                or (should_stop is not None and should_stop()))

    provider = get_provider(app)
    if isinstance(provider, FcmProvider) and batch_size * PIPELINE_SLOTS <= provider.sender.max_in_flight:
        keeper = LeaseKeeper(session, lease=lease or lease_of(app))
        return _run_pipelined(session, provider, keeper, campaign_id=campaign_id, now=now, batch_size=batch_size,
                              max_batches=max_batches, out_of_time=out_of_time, app=app)
    reports: list[BatchReport] = []
    while True:
        report = send_batch(session, campaign_id=campaign_id, now=now, batch_size=batch_size, app=app)
        reports.append(report)
        if report.stop is not None or len(reports) == max_batches or out_of_time():
            break
    return reports


def send_batch(session: Session, *, campaign_id: uuid.UUID | None, now: datetime | None = None,
               batch_size: int = BATCH_SIZE, app: Flask | None = None) -> BatchReport:
    """Claim up to ``batch_size`` due rows, decide each, send the sendable ones, record results."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    report = BatchReport()
    begun = _begin(session, campaign_id=campaign_id, now=now, batch_size=batch_size, report=report, app=app)
    if begun is None:
        return report
    campaign, token, claimed = begun
    results = get_provider(app).send([c.push for c in claimed])
    _finish(session, campaign, claimed, results, token=token, now=now, report=report, app=app)
    return report


def deliver_rows(session: Session, *, row_ids: list[int], app: Flask | None = None) -> BatchReport:
    """Send these transactional rows now, in the caller's request (a staff test send), through the same
    claim, policy, classifier and record as every push; ``row_outcomes`` tells each row's answer."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    report = BatchReport()
    token = uuid.uuid4()
    claimed = claim_transactional(session, token=token, now=utcnow(), limit=len(row_ids), report=report,
                                  only=row_ids)
    session.commit()  # 'sending' is durable before the provider call, as in every lane
    if claimed:
        results = get_provider(app).send([c.push for c in claimed])
        _finish(session, None, claimed, results, token=token, now=None, report=report, app=app)
    return report


def _begin(session: Session, *, campaign_id: uuid.UUID | None, now: datetime | None, batch_size: int,
           report: BatchReport, app: Flask) -> tuple[Campaign | None, uuid.UUID, list[Claimed]] | None:
    """Claim a batch and commit it as 'sending' (durable before any provider call); None: nothing to send."""
    clock = now or utcnow()
    campaign = None
    if campaign_id is not None:
        campaign = session.get(Campaign, campaign_id, populate_existing=True)
        if campaign is None or campaign.status != "running":
            session.rollback()
            report.stop = "inactive"
            return None
    held = backoff.held_until(redis_client(app), project=get_provider(app).project, now=clock)
    if held is not None:  # the project got a 429: no lane of any worker claims until it ends
        session.rollback()
        report.stop, report.wake_at = "throttled", held
        _schedule(session, campaign_id, held, clock)
        return None
    token = uuid.uuid4()
    if campaign is not None:
        claimed = claim_campaign(session, campaign, token=token, now=clock, limit=batch_size, report=report)
        # Detached as read: the commit below would expire it and recording the batch would
        # reload it (a round trip per batch); the next claim reads the campaign afresh anyway.
        session.expunge(campaign)
    else:
        claimed = claim_transactional(session, token=token, now=clock, limit=batch_size, report=report,
                                      digest_categories=frozenset(app.config["PUSH_DIGEST_CATEGORIES"]))
    session.commit()  # the ledger: 'sending' is durable before any provider call
    if report.wake_at is not None:
        _schedule(session, campaign_id, report.wake_at, clock)
    if not claimed:
        return None
    return campaign, token, claimed


def _finish(session: Session, campaign: Campaign | None, claimed: list[Claimed], results: list[PushResult], *,
            token: uuid.UUID, now: datetime | None, report: BatchReport, app: Flask) -> None:
    """Record a sent batch's results, commit, then announce the new inbox entries."""
    _record(session, campaign, claimed, results, token=token, now=now, report=report, app=app)
    session.commit()
    connection = redis_client(app)
    inbox.announce(connection, report.inbox_events)  # live inbox streams, after the commit
    count_push_outcomes(report.outcomes, connection=connection)  # /metrics' push outcomes, every origin


@dataclass
class _InFlight:
    campaign: Campaign | None
    token: uuid.UUID
    claimed: list[Claimed]
    report: BatchReport
    future: concurrent.futures.Future[list[SendResult]]


def _run_pipelined(session: Session, provider: FcmProvider, keeper: LeaseKeeper, *, campaign_id: uuid.UUID | None,
                   now: datetime | None, batch_size: int, max_batches: int | None,
                   out_of_time: Callable[[], bool], app: Flask) -> list[BatchReport]:
    """The lane with ``PIPELINE_SLOTS`` batches in flight on the sender's own event loop.

    Each batch is claimed and committed just before its requests go out, and the batches in
    flight together never exceed the sender's connection limit, so every claimed row is
    requested at once (a crash leaves no claimed row unrequested) while the database work of
    the next claim and of the last batch's results runs during the other batch's requests.
    ``keeper`` renews the leases of the batches in flight while the lane waits for answers.
    """
    loop = _sender_loop()
    reports: list[BatchReport] = []
    inflight: deque[_InFlight] = deque()
    ended: BatchReport | None = None  # the claim that found nothing to send (idle/throttled/inactive)
    stopped: BatchReport | None = None  # a recorded batch that stopped the lane (paused, quota)
    claims = 0
    claiming = True
    try:
        while True:
            while claiming and len(inflight) < PIPELINE_SLOTS:
                report = BatchReport()
                begun = _begin(session, campaign_id=campaign_id, now=now, batch_size=batch_size, report=report,
                               app=app)
                claims += 1
                if report.stop is not None:
                    ended, claiming = report, False
                if begun is not None:
                    campaign, token, claimed = begun
                    pushes = [c.push for c in claimed]
                    future = asyncio.run_coroutine_threadsafe(
                        provider.send_async(pushes, on_quota=_quota_hold(app, provider.project, now)), loop)
                    keeper.hold(token)
                    inflight.append(_InFlight(campaign, token, claimed, report, future))
                elif report.stop is None:
                    reports.append(report)  # every row of the batch was parked: claim on
                    claiming = not out_of_time()
                if claims == max_batches:
                    claiming = False
            if not inflight:
                break
            done = inflight[0]
            results = _push_results(keeper.wait(done.future))
            inflight.popleft()
            _finish(session, done.campaign, done.claimed, results, token=done.token, now=now, report=done.report,
                    app=app)
            keeper.release(done.token)
            keeper.renew_due()  # the other batch's lease, if recording this one took a while
            if done.report is not ended:
                reports.append(done.report)
            if done.report.stop in ("paused", "throttled"):
                stopped, claiming = done.report, False
            elif claiming and out_of_time():
                claiming = False  # budget or shutdown: finish what is in flight, claim no more
    finally:
        if inflight:  # an error above: still record what went out
            session.rollback()
        for left in inflight:
            try:
                _finish(session, left.campaign, left.claimed, _push_results(keeper.wait(left.future)),
                        token=left.token, now=now, report=left.report, app=app)
            except Exception:  # their lease runs out and the reconciler makes them due again
                session.rollback()
                log.exception("could not record an in-flight batch of origin %s", campaign_id or "transactional")
    if ended is not None:
        reports.append(ended)
    if stopped is not None:  # the lane's reason to stop comes last
        reports.remove(stopped)
        reports.append(stopped)
    return reports


def _quota_hold(app: Flask, project: str, now: datetime | None) -> Callable[[float], None]:
    """Hold every lane of the project the moment a 429 arrives (on the sender's loop), not only
    when the batch is recorded (which holds again, the later instant wins): lanes of other
    workers stop claiming at once. ``now`` is the lane's fixed clock, if any."""
    connection = redis_client(app)

    def hold(retry_after_s: float) -> None:
        at = now or utcnow()
        backoff.hold(connection, project=project, until=at + timedelta(seconds=retry_after_s), now=at)

    return hold


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


def _record(session: Session, campaign: Campaign | None, claimed: list[Claimed], results: list[PushResult], *,
            token: uuid.UUID, now: datetime | None, report: BatchReport, app: Flask) -> None:
    """Write every result back in one statement; prune tokens, back off on 429, pause on auth failure.

    The write is fenced by the claim token: rows whose claim the reconciler took back (their
    lane stopped renewing) are not written, and neither counted, nor pruned, nor given an
    inbox entry here: their new claim does that, once. What concerns the whole project (a
    429's wait, rejected credentials) is acted on whatever the rows' fate.
    """
    at = now or utcnow()
    by_key = {r.key: r for r in results}
    decided: list[tuple[Claimed, PushResult | None, Decision]] = []
    ids, statuses, mids, errs, next_at, refunds = [], [], [], [], [], []
    auth_failure: PushResult | None = None
    quota_until: datetime | None = None
    for row in claimed:
        result = by_key.get(row.push.key)
        decision = classify(result, attempts=row.attempts, at=at)
        decided.append((row, result, decision))
        if result is not None and result.outcome is Outcome.AUTH_ERROR:
            auth_failure = auth_failure or result
        if decision.quota_until is not None:
            quota_until = max(filter(None, (quota_until, decision.quota_until)))
        for row_id in (row.id, *row.riders):  # a digest's rows share its answer
            ids.append(row_id)
            statuses.append(decision.status)
            mids.append(decision.message_id)
            errs.append("digest" if row_id != row.id and decision.status == "sent" else decision.error_code)
            next_at.append(decision.retry_at)
            refunds.append(decision.quota_until is not None)
    recorded = set(session.execute(text(RECORD_SQL), {
        "ids": ids, "statuses": statuses, "mids": mids, "errs": errs, "next_at": next_at, "refunds": refunds,
        "at": at, "token": str(token)}).scalars())
    sent: list[Claimed] = []
    for row, result, decision in decided:
        if row.id not in recorded:
            report.stale += 1  # taken back by the reconciler: resent under a new claim
            continue
        outcome = result.outcome if result else Outcome.UNKNOWN
        report.outcomes[outcome.value] = report.outcomes.get(outcome.value, 0) + 1
        report.row_outcomes[row.id] = outcome.value
        if outcome in PRUNED:
            prune_token(session, device_id=row.device_id, reason=outcome)
        if decision.status == "sent":
            sent.append(row)
        report.wake(decision.retry_at)
    if report.stale:
        log.warning("%d rows of claim %s were taken back before their answers were recorded", report.stale, token)
    report.sent = len(sent)
    if sent and campaign is not None:  # a transactional send wrote its inbox entries itself
        report.inbox_events = add_inbox_entries(session, campaign, sent, at)
    if quota_until is not None:
        backoff.hold(redis_client(app), project=get_provider(app).project, until=quota_until, now=at)
        report.stop = "throttled"
    if auth_failure is not None and campaign is not None:
        code = auth_failure.error_code or auth_failure.outcome.value
        reason = f"FCM authentication failed ({code}): {auth_failure.detail or 'no detail'}"
        session.execute(text("UPDATE campaigns SET status = 'paused', paused_reason = :reason, updated_at = now() "
                             "WHERE id = :c AND status = 'running'"), {"c": campaign.id, "reason": reason[:1000]})
        report.stop = "paused"
    elif auth_failure is not None:
        log.error("push credentials rejected by the provider: %s", auth_failure.detail)
    if report.wake_at is not None and report.stop != "paused":
        schedule_dispatch(session, campaign_id=campaign.id if campaign else None, due_instants=[report.wake_at],
                          now=at)


def _schedule(session: Session, campaign_id: uuid.UUID | None, at: datetime, now: datetime) -> None:
    schedule_dispatch(session, campaign_id=campaign_id, due_instants=[max(at, now)], now=now)
    session.commit()
