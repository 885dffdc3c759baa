"""★P3: each (campaign, device) reaches FCM exactly once through double enqueues, killed workers,
a Redis flush and FCM failing, with real ``python -m jobs.worker`` processes and the fake FCM server.
Counting happens at the fake (its control API), the only witness that cannot lie for us.
"""
from __future__ import annotations

import signal
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import text

from backend.common.db import utcnow
from backend.common.jobs import get_queue
from backend.extensions import db
from backend.notifications.delivery import reconcile
from backend.notifications.delivery.dispatch import schedule_dispatch, start_lanes
from tests.chaos.conftest import Workers
from tests.delivery.factories import bulk_campaign
from tests.fakes.fcm_server import FakeFcmControl
from tests.waiting import wait_for

pytestmark = pytest.mark.chaos
LEASE_S = 1200


def _statuses(campaign_id: uuid.UUID) -> dict[str, int]:
    db.session.rollback()
    rows = db.session.execute(text("SELECT status, count(*) FROM campaign_deliveries WHERE campaign_id = :c "
                                   "GROUP BY status"), {"c": campaign_id}).all()
    return dict(rows)  # type: ignore[arg-type]


def _campaign_status(campaign_id: uuid.UUID) -> tuple[str, str | None]:
    db.session.rollback()
    return tuple(db.session.execute(text("SELECT status, paused_reason FROM campaigns WHERE id = :c"),
                                    {"c": campaign_id}).one())  # type: ignore[return-value]


def _tokens(campaign_id: uuid.UUID) -> dict[str, str]:
    """Device token → ledger status."""
    db.session.rollback()
    return dict(db.session.execute(text("SELECT dv.token, d.status FROM campaign_deliveries d JOIN devices dv "
                                        "ON dv.id = d.device_id WHERE d.campaign_id = :c"), {"c": campaign_id}).all())


def _received(fake: FakeFcmControl) -> Counter[str]:
    return Counter(m["token"] for m in fake.messages())


def _launch(app: Flask, count: int, **fields: Any) -> uuid.UUID:
    due = fields.pop("due_at", utcnow() - timedelta(seconds=1))
    campaign_id = bulk_campaign(db.session, count, due_at=due, **fields)
    schedule_dispatch(db.session, campaign_id=campaign_id, due_instants=[due])
    db.session.commit()
    return campaign_id


def _wait_done(campaign_id: uuid.UUID, *, timeout: float, reconcile_every: float | None = None) -> None:
    last = [0.0]

    def done() -> bool:
        import time

        if reconcile_every is not None and time.monotonic() - last[0] >= reconcile_every:
            reconcile.reconcile(db.session, lease_s=LEASE_S)
            last[0] = time.monotonic()
        left = _statuses(campaign_id)
        return not any(left.get(s) for s in ("pending", "deferred", "sending"))

    wait_for(done, timeout=timeout, every=0.2, what="every row to leave pending/deferred/sending")


def test_two_workers_and_duplicate_dispatches_deliver_each_device_once(committed_app, fake_fcm, workers: Workers):
    fake_fcm.configure(latency_ms=40)
    with committed_app.app_context():
        campaign_id = _launch(committed_app, 3000)
        schedule_dispatch(db.session, campaign_id=campaign_id, due_instants=[utcnow() - timedelta(seconds=1)])
        db.session.commit()
        start_lanes(campaign_id=campaign_id, lanes=4, tag="duplicate")  # lanes nobody asked for
        workers.start("push")
        workers.start("push")
        _wait_done(campaign_id, timeout=120)
        received = _received(fake_fcm)
        assert _statuses(campaign_id) == {"sent": 3000}
        assert len(received) == 3000 and set(received.values()) == {1}
        assert set(received) == set(_tokens(campaign_id))


def test_worker_and_horse_killed_mid_batch_no_device_twice_none_lost(committed_app, fake_fcm, workers: Workers):
    # Slow answers hold a whole batch at the fake when the kill lands.
    fake_fcm.configure(latency_ms=1500)
    with committed_app.app_context():
        campaign_id = _launch(committed_app, 2000)
        first = workers.start("push")
        wait_for(lambda: fake_fcm.stats()["counters"].get("send_requests", 0) >= 500 and workers.horses(first),
                 timeout=60, what=f"a batch in flight at the fake; {_statuses(campaign_id)}")
        workers.kill(first)
        claimed_at_kill = _statuses(campaign_id).get("sending", 0)
        assert claimed_at_kill > 0  # the kill really landed mid-batch
        fake_fcm.configure(latency_ms=40)
        workers.start("push")
        # Rows still due go out through the reconciler; the dead batch stays 'sending' until its lease ends.
        def rest_sent() -> bool:
            reconcile.reconcile(db.session, lease_s=LEASE_S)
            left = _statuses(campaign_id)
            # Done when only the dead batch is still 'sending' (the live worker's batches are recorded).
            return not left.get("pending") and left.get("sending") == claimed_at_kill

        wait_for(rest_sent, timeout=120, every=1.0, what="the rest to be sent")
        later = utcnow() + timedelta(seconds=LEASE_S + 1)
        report = reconcile.reconcile(db.session, lease_s=LEASE_S, now=later)
        assert report.unknown == claimed_at_kill
        received = _received(fake_fcm)
        ledger = _tokens(campaign_id)
        assert set(received.values()) == {1}  # nothing was sent twice
        statuses = Counter(ledger.values())
        assert set(statuses) <= {"sent", "unknown"} and statuses["unknown"] == claimed_at_kill
        assert all(received[token] == 1 for token, status in ledger.items() if status == "sent")
        # The killed batch had reached the fake: those devices got it once and were not resent.
        assert all(received[token] == 1 for token, status in ledger.items() if status == "unknown")
        assert len(received) == 2000
        assert _campaign_status(campaign_id)[0] == "completed"


def test_redis_flushed_mid_campaign_reconciler_rebuilds_exactly_once(committed_app, fake_fcm, workers: Workers,
                                                                     redis_conn: redis.Redis):
    fake_fcm.configure(latency_ms=40)
    with committed_app.app_context():
        now = utcnow()
        zones = ["Asia/Tokyo", "Europe/Paris", "America/Denver"]
        dues = {"Asia/Tokyo": now - timedelta(seconds=1), "Europe/Paris": now + timedelta(seconds=4),
                "America/Denver": now + timedelta(seconds=8)}
        campaign_id = bulk_campaign(db.session, 3000, due_at=now, zones=zones, due_by_zone=dues)
        schedule_dispatch(db.session, campaign_id=campaign_id, due_instants=list(dues.values()))
        db.session.commit()
        workers.start("push")
        wait_for(lambda: len(fake_fcm.messages()) >= 300, timeout=60, what="the first sends")
        redis_conn.flushdb()  # this session's Redis DB only: FLUSHALL would wipe other test sessions
        assert get_queue("push").count == 0
        _wait_done(campaign_id, timeout=120, reconcile_every=1.0)
        received = _received(fake_fcm)
        assert _statuses(campaign_id) == {"sent": 3000}
        assert len(received) == 3000 and set(received.values()) == {1}
        db.session.rollback()
        never_early = db.session.execute(text(
            "SELECT count(*) FROM campaign_deliveries WHERE campaign_id = :c AND sent_at < due_at"),
            {"c": campaign_id}).scalar_one()
        assert never_early == 0


def test_random_quota_and_unavailable_answers_all_delivered_none_doubled(committed_app, fake_fcm, workers: Workers):
    fake_fcm.configure(latency_ms=20, error_rate=0.01, retry_after_s=1, seed=7)
    with committed_app.app_context():
        campaign_id = _launch(committed_app, 3000)
        workers.start("push")
        workers.start("push")
        _wait_done(campaign_id, timeout=180, reconcile_every=5.0)
        counters = fake_fcm.stats()["counters"]
        assert counters.get("QUOTA_EXCEEDED", 0) > 0 and counters.get("UNAVAILABLE", 0) > 0
        received = _received(fake_fcm)
        assert _statuses(campaign_id) == {"sent": 3000}
        assert len(received) == 3000 and set(received.values()) == {1}


def test_fcm_auth_failure_pauses_the_campaign_with_its_reason(committed_app, fake_fcm, workers: Workers):
    with committed_app.app_context():
        fake_fcm.configure(auth_broken=True, expire_tokens=True)
        campaign_id = _launch(committed_app, 600)
        workers.start("push")
        _status, reason = wait_for(lambda: _campaign_status(campaign_id)[0] == "paused"
                                   and _campaign_status(campaign_id), timeout=60, what="the campaign to pause")
        assert "FCM authentication failed" in reason
        # Nothing lost, resumable: once the batch still in flight when the campaign paused is
        # recorded (two are in flight at once), every row is back to pending.
        wait_for(lambda: _statuses(campaign_id) == {"pending": 600}, timeout=30, what="every row pending again")
        assert fake_fcm.messages() == []


def test_sigterm_lets_the_current_batch_finish_then_the_worker_exits(committed_app, fake_fcm, workers: Workers):
    fake_fcm.configure(latency_ms=1500)
    with committed_app.app_context():
        campaign_id = _launch(committed_app, 1500)
        worker = workers.start("push")
        wait_for(lambda: _statuses(campaign_id).get("sending"), timeout=60, what="a claimed batch")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, workers.log(0)[-3000:]
        left = _statuses(campaign_id)
        assert not left.get("sending")  # the batch in hand was finished and recorded
        assert left.get("sent", 0) >= 500 and left.get("pending", 0) > 0
        assert len(fake_fcm.messages()) == left["sent"]
        assert get_queue("push").count >= 1  # the rest was handed to a new lane
        fake_fcm.configure(latency_ms=20)
        workers.start("push")
        _wait_done(campaign_id, timeout=120)
        received = _received(fake_fcm)
        assert len(received) == 1500 and set(received.values()) == {1}
