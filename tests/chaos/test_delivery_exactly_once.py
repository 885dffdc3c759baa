"""★P3: every device gets each push, and a phone never shows one twice, through double enqueues,
killed workers, a Redis flush and FCM failing; for campaigns and transactional sends alike, with
real ``python -m jobs.worker`` processes and the fake FCM server.

Counting happens at the fake (its control API), the only witness that cannot lie for us: every
device received the push (none missing), and any device that received it twice got two copies
with the same collapse identity (Android notification tag, APNs collapse id, collapse key), which
the phone shows as one notification.
"""
from __future__ import annotations

import ast
import re
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import text

from backend.common.db import utcnow
from backend.common.jobs import get_queue
from backend.extensions import db
from backend.notifications.delivery import reconcile
from backend.notifications.delivery.dispatch import schedule_dispatch, start_lanes
from tests.chaos.conftest import Workers
from tests.delivery.factories import bulk_campaign, bulk_transactional
from tests.fakes.fcm_server import FakeFcmControl, collapse_identity
from tests.waiting import wait_for

pytestmark = pytest.mark.chaos
KINDS = ("campaign", "transactional")


@dataclass
class Send:
    """One push to many devices, made by a campaign or by transactional sends: its ledger rows."""

    kind: str
    campaign_id: uuid.UUID | None = None
    tag: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        if self.campaign_id is not None:
            return "d.campaign_id = :c", {"c": self.campaign_id}
        return "d.notification_id IN (SELECT id FROM notifications WHERE topic = :t)", {"t": self.tag}

    def statuses(self) -> dict[str, int]:
        db.session.rollback()
        where, params = self.where()
        rows = db.session.execute(text(f"SELECT status, count(*) FROM push_deliveries d WHERE {where} "  # noqa: S608
                                       "GROUP BY status"), params).all()
        return dict(rows)  # type: ignore[arg-type]

    def tokens(self) -> dict[str, str]:
        """Device token → ledger status."""
        db.session.rollback()
        where, params = self.where()
        return dict(db.session.execute(text(
            f"SELECT dv.token, d.status FROM push_deliveries d JOIN devices dv ON dv.id = d.device_id "  # noqa: S608
            f"WHERE {where}"), params).all())

    def dispatch(self, *, at: Any = None) -> None:
        schedule_dispatch(db.session, campaign_id=self.campaign_id, due_instants=[at or utcnow()])
        db.session.commit()


def _launch(kind: str, count: int, **fields: Any) -> Send:
    due = fields.pop("due_at", utcnow() - timedelta(seconds=1))
    if kind == "campaign":
        send = Send(kind, campaign_id=bulk_campaign(db.session, count, due_at=due, **fields))
    else:
        send = Send(kind, tag=bulk_transactional(db.session, count, due_at=due, **fields))
    send.dispatch(at=due)
    return send


def _claims_in_flight(send: Send) -> dict[str, int]:
    """Claim token → rows of the send still 'sending' under it."""
    db.session.rollback()
    where, params = send.where()
    return dict(db.session.execute(text(
        f"SELECT d.claim_token::text, count(*) FROM push_deliveries d WHERE {where} "  # noqa: S608
        "AND d.status = 'sending' GROUP BY 1"), params).all())  # type: ignore[arg-type]


def _campaign_status(campaign_id: uuid.UUID) -> tuple[str, str | None]:
    db.session.rollback()
    return tuple(db.session.execute(text("SELECT status, paused_reason FROM campaigns WHERE id = :c"),
                                    {"c": campaign_id}).one())  # type: ignore[return-value]


def _assert_every_device_once_as_seen(fake: FakeFcmControl, send: Send) -> Counter[str]:
    """Every device of the send got it; a device that got two copies got one notification."""
    copies: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for m in fake.messages():
        copies[m["token"]].append(collapse_identity(m["message"]))
    tokens = send.tokens()
    assert set(copies) == set(tokens), "a device never got the push (or a stranger did)"
    for token, identities in copies.items():
        assert all(identities[0]) and len(set(identities)) == 1, f"{token} would show {len(identities)} pushes"
    return Counter({token: len(ids) for token, ids in copies.items()})


# A lane's closing log line (jobs/delivery.py) counts the provider's answers it recorded.
_LANE_ANSWERS = re.compile(r" lane: .*, answers (\{.*\})$", re.MULTILINE)


def _unanswered(workers: Workers) -> int:
    """Requests whose answer never reached their lane ('unknown': the client's timeout ran out
    while the machine was starved), as the workers logged them. FCM may have got each one, so
    each is resent with the same collapse identity: the one way a device may get a second copy
    without a crash. A lost lease or a double claim would give copies nothing here explains."""
    return sum(ast.literal_eval(found.group(1)).get("unknown", 0)
               for index in range(len(workers.procs)) for found in _LANE_ANSWERS.finditer(workers.log(index)))


def _assert_extra_copies_unanswered(workers: Workers, received: Counter[str]) -> None:
    """Every copy beyond the first answers to a request that got no answer (logged once its lane ends)."""
    extra = sum(received.values()) - len(received)
    if extra:
        wait_for(lambda: _unanswered(workers) >= extra, timeout=90,
                 what=f"{extra} extra copies explained by unanswered requests (logged: {_unanswered(workers)})")


def _assert_every_device_got_it(fake: FakeFcmControl, workers: Workers, send: Send, count: int) -> None:
    """All ``count`` devices got the push as one notification, and no copy came twice unexplained."""
    received = _assert_every_device_once_as_seen(fake, send)
    assert len(received) == count
    _assert_extra_copies_unanswered(workers, received)


def _wait_done(send: Send, *, timeout: float, reconcile_every: float | None = None,
               lease_s: float | None = None, watch: Callable[[], None] | None = None) -> None:
    last = [0.0]

    def done() -> bool:
        if reconcile_every is not None and time.monotonic() - last[0] >= reconcile_every:
            reconcile.reconcile(db.session, lease_s=lease_s)
            last[0] = time.monotonic()
        if watch is not None:
            watch()
        left = send.statuses()
        return not any(left.get(s) for s in ("pending", "deferred", "sending"))

    wait_for(done, timeout=timeout, every=0.2, what="every row to leave pending/deferred/sending")


@pytest.mark.parametrize("kind", KINDS)
def test_two_workers_and_duplicate_dispatches_deliver_each_device_once(committed_app, fake_fcm, workers: Workers,
                                                                       kind):
    fake_fcm.configure(latency_ms=40)
    with committed_app.app_context():
        send = _launch(kind, 3000)
        send.dispatch()
        start_lanes(campaign_id=send.campaign_id, lanes=4, tag="duplicate")  # lanes nobody asked for
        workers.start("push")
        workers.start("push")
        _wait_done(send, timeout=120)
        assert send.statuses() == {"sent": 3000}
        _assert_every_device_got_it(fake_fcm, workers, send, 3000)


@pytest.mark.parametrize("kind", KINDS)
def test_worker_and_horse_killed_mid_batch_every_device_gets_it_within_a_minute(committed_app, fake_fcm,
                                                                               workers: Workers, kind):
    # Slow answers hold whole batches at the fake when the kill lands.
    fake_fcm.configure(latency_ms=1500)
    with committed_app.app_context():
        send = _launch(kind, 2000)
        first = workers.start("push")
        wait_for(lambda: fake_fcm.stats()["counters"].get("send_requests", 0) >= 300 and workers.horses(first),
                 timeout=60, what=f"a batch in flight at the fake; {send.statuses()}")
        workers.kill(first)
        killed_at = time.monotonic()
        dead_claims = _claims_in_flight(send)
        in_doubt = sum(dead_claims.values())
        assert in_doubt > 0  # the kill really landed mid-batch
        fake_fcm.configure(latency_ms=40)
        workers.start("push")
        picked_up_in: list[float] = []

        def watch() -> None:
            if not picked_up_in and not _claims_in_flight(send).keys() & dead_claims.keys():
                picked_up_in.append(time.monotonic() - killed_at)

        # The reconciler runs as the scheduler would (every second here): the dead batch's
        # lease runs out and its rows go out again, with the same collapse identity.
        _wait_done(send, timeout=reconcile.LEASE.total_seconds() + 90, reconcile_every=1.0, watch=watch)
        watch()
        # The dead claims are taken back about a minute after the kill, not twenty; how long
        # the rest then takes to send is the machine's speed, bounded by the wait above.
        assert picked_up_in and picked_up_in[0] <= reconcile.LEASE.total_seconds() + 30, picked_up_in
        received = _assert_every_device_once_as_seen(fake_fcm, send)
        assert send.statuses() == {"sent": 2000}
        assert sum(received.values()) - len(received) <= in_doubt  # only rows in flight may come twice
        if send.campaign_id is not None:
            campaign_id = send.campaign_id

            def completed() -> bool:
                reconcile.reconcile(db.session)
                return _campaign_status(campaign_id)[0] == "completed"

            wait_for(completed, timeout=30, every=0.5, what="the campaign to complete")


@pytest.mark.parametrize("kind", KINDS)
def test_redis_flushed_mid_send_reconciler_rebuilds_exactly_once(committed_app, fake_fcm, workers: Workers,
                                                                 redis_conn: redis.Redis, kind):
    fake_fcm.configure(latency_ms=40)
    with committed_app.app_context():
        now = utcnow()
        if kind == "campaign":
            zones = ["Asia/Tokyo", "Europe/Paris", "America/Denver"]
            dues = {"Asia/Tokyo": now - timedelta(seconds=1), "Europe/Paris": now + timedelta(seconds=4),
                    "America/Denver": now + timedelta(seconds=8)}
            send = Send(kind, campaign_id=bulk_campaign(db.session, 3000, due_at=now, zones=zones,
                                                        due_by_zone=dues))
            schedule_dispatch(db.session, campaign_id=send.campaign_id, due_instants=list(dues.values()))
            db.session.commit()
        else:
            send = _launch(kind, 3000)
        workers.start("push")
        wait_for(lambda: len(fake_fcm.messages()) >= 300, timeout=60, what="the first sends")
        redis_conn.flushdb()  # this session's Redis DB only: FLUSHALL would wipe other test sessions
        assert get_queue("push").count == 0
        _wait_done(send, timeout=120, reconcile_every=1.0)
        assert send.statuses() == {"sent": 3000}
        _assert_every_device_got_it(fake_fcm, workers, send, 3000)
        db.session.rollback()
        where, params = send.where()
        never_early = db.session.execute(text(
            f"SELECT count(*) FROM push_deliveries d WHERE {where} AND sent_at < due_at"), params).scalar_one()  # noqa: S608
        assert never_early == 0


@pytest.mark.parametrize("kind", KINDS)
def test_workers_slower_than_their_lease_keep_their_rows_none_sent_twice(committed_app, fake_fcm, workers: Workers,
                                                                         kind):
    # A starved machine, exaggerated: every batch is out twice the lease while the reconciler
    # runs every half second. The lanes renew their leases, so no claim is taken back.
    fake_fcm.configure(latency_ms=6000)
    workers.env["PUSH_LEASE_S"] = "3"
    with committed_app.app_context():
        send = _launch(kind, 1000)
        workers.start("push")
        workers.start("push")
        _wait_done(send, timeout=180, reconcile_every=0.5, lease_s=3)
        assert send.statuses() == {"sent": 1000}
        _assert_every_device_got_it(fake_fcm, workers, send, 1000)
        db.session.rollback()
        where, params = send.where()
        taken_back = db.session.execute(text(
            f"SELECT count(*) FROM push_deliveries d WHERE {where} AND attempts <> 1"), params).scalar_one()  # noqa: S608
        assert taken_back == 0


@pytest.mark.parametrize("kind", KINDS)
def test_random_quota_and_unavailable_answers_all_delivered_none_doubled(committed_app, fake_fcm, workers: Workers,
                                                                         kind):
    fake_fcm.configure(latency_ms=20, error_rate=0.01, retry_after_s=1, seed=7)
    with committed_app.app_context():
        send = _launch(kind, 3000)
        workers.start("push")
        workers.start("push")
        _wait_done(send, timeout=180, reconcile_every=5.0)
        counters = fake_fcm.stats()["counters"]
        assert counters.get("QUOTA_EXCEEDED", 0) > 0 and counters.get("UNAVAILABLE", 0) > 0
        assert send.statuses() == {"sent": 3000}
        _assert_every_device_got_it(fake_fcm, workers, send, 3000)


@pytest.mark.parametrize("kind", KINDS)
def test_a_429_holds_every_lane_of_every_worker_for_its_retry_after(committed_app, fake_fcm, workers: Workers,
                                                                     kind):
    fake_fcm.configure(latency_ms=20, fail_next=1, fail_next_code="QUOTA_EXCEEDED", retry_after_s=4)
    with committed_app.app_context():
        send = _launch(kind, 3000)
        workers.start("push")
        workers.start("push")
        _wait_done(send, timeout=120, reconcile_every=2.0)
        arrivals = sorted(m["received_at"] for m in fake_fcm.messages())
        gaps = [(later - earlier, i + 1) for i, (earlier, later) in enumerate(zip(arrivals, arrivals[1:]))]
        pause, before = max(gaps)
        # Only requests already in flight (two batches per worker) went out after the 429;
        # then nothing, from either worker, until Retry-After had passed.
        assert pause >= 3.0, pause
        assert before <= 2 * 2 * 250, before
        _assert_every_device_got_it(fake_fcm, workers, send, 3000)


def test_fcm_auth_failure_pauses_the_campaign_with_its_reason(committed_app, fake_fcm, workers: Workers):
    with committed_app.app_context():
        fake_fcm.configure(auth_broken=True, expire_tokens=True)
        send = _launch("campaign", 600)
        workers.start("push")
        _status, reason = wait_for(lambda: _campaign_status(send.campaign_id)[0] == "paused"
                                   and _campaign_status(send.campaign_id), timeout=60, what="the campaign to pause")
        assert "FCM authentication failed" in reason
        # Nothing lost, resumable: once the batch still in flight when the campaign paused is
        # recorded (two are in flight at once), every row is back to pending.
        wait_for(lambda: send.statuses() == {"pending": 600}, timeout=30, what="every row pending again")
        assert fake_fcm.messages() == []


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_lets_the_current_batch_finish_then_the_worker_exits(committed_app, fake_fcm, workers: Workers,
                                                                     kind):
    fake_fcm.configure(latency_ms=1500)
    with committed_app.app_context():
        send = _launch(kind, 1500)
        worker = workers.start("push")
        wait_for(lambda: send.statuses().get("sending"), timeout=60, what="a claimed batch")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, workers.log(0)[-3000:]
        left = send.statuses()
        assert not left.get("sending")  # the batch in hand was finished and recorded
        assert left.get("sent", 0) >= 250 and left.get("pending", 0) > 0
        assert len(fake_fcm.messages()) == left["sent"]
        assert get_queue("push").count >= 1  # the rest was handed to a new lane
        fake_fcm.configure(latency_ms=20)
        workers.start("push")
        _wait_done(send, timeout=120)
        _assert_every_device_got_it(fake_fcm, workers, send, 1500)
