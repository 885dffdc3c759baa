"""A lane keeps the rows it is sending: while FCM takes longer than the lease it renews it, so
the reconciler never hands those rows to another claim (they would go out twice). A lane that
stops renewing (it died) loses its rows within a lease, and its late answers record nothing.

The lease here is one second, so "slower than the lease" is a fake FCM answering after a few.
"""
from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from backend.common.db import utcnow
from backend.extensions import db
from backend.notifications.campaigns.models import Campaign
from backend.notifications.delivery import engine, reconcile
from backend.notifications.delivery.claims import BatchReport, claim_campaign
from backend.notifications.fcm.providers import Outcome, PushResult
from tests.delivery.factories import bulk_campaign, statuses
from tests.waiting import wait_for

LEASE = timedelta(seconds=1)


def _received(fake_fcm: Any) -> Counter[str]:
    return Counter(m["token"] for m in fake_fcm.messages())


def _inbox_entries(campaign_id: uuid.UUID) -> int:
    db.session.rollback()
    return db.session.execute(text("SELECT count(*) FROM notifications WHERE campaign_id = :c"),
                              {"c": campaign_id}).scalar_one()


def test_a_lane_slower_than_its_lease_keeps_its_rows_while_the_reconciler_runs(committed_app, fake_fcm,
                                                                              redis_conn):
    fake_fcm.configure(latency_ms=3000)  # every batch is out three leases
    with committed_app.app_context():
        campaign_id = bulk_campaign(db.session, 600, due_at=utcnow() - timedelta(seconds=1))
        lane: dict[str, Any] = {}

        def run() -> None:
            with committed_app.app_context():
                try:
                    lane["reports"] = engine.run_lane(db.session, campaign_id=campaign_id, lease=LEASE)
                finally:
                    db.session.remove()

        thread = threading.Thread(target=run, name="slow-lane")
        thread.start()
        taken_back = []

        def lane_done() -> bool:
            taken_back.append(reconcile.reconcile(db.session, lease_s=LEASE.total_seconds()).resent)
            return not thread.is_alive()

        wait_for(lane_done, timeout=120, every=0.1, what="the slow lane to send every row")
        thread.join()
        assert len(taken_back) > 10 and sum(taken_back) == 0  # the reconciler ran all along, took nothing
        received = _received(fake_fcm)
        assert len(received) == 600 and set(received.values()) == {1}
        assert statuses(db.session, campaign_id) == {"sent": 600}
        reports = lane["reports"]
        assert sum(r.sent for r in reports) == 600 and sum(r.stale for r in reports) == 0
        assert _inbox_entries(campaign_id) == 600


def test_a_lane_that_stopped_renewing_loses_its_rows_and_its_late_answers_record_nothing(committed_app, fake_fcm,
                                                                                          redis_conn):
    with committed_app.app_context():
        campaign_id = bulk_campaign(db.session, 40, due_at=utcnow() - timedelta(seconds=1))
        campaign = db.session.get(Campaign, campaign_id)
        token = uuid.uuid4()
        dead = claim_campaign(db.session, campaign, token=token, now=utcnow(), limit=100, report=BatchReport())
        db.session.commit()  # claimed 'sending'; then its lane stops: nobody renews the lease
        assert len(dead) == 40 and statuses(db.session, campaign_id) == {"sending": 40}
        wait_for(lambda: reconcile.reconcile(db.session, lease_s=LEASE.total_seconds()).resent == 40,
                 timeout=30, every=0.2, what="the dead claim's lease to run out")
        assert statuses(db.session, campaign_id) == {"pending": 40}
        reports = engine.run_lane(db.session, campaign_id=campaign_id, lease=LEASE)
        assert sum(r.sent for r in reports) == 40
        # The dead lane wakes up with answers for its old claim: fenced by its token.
        late = BatchReport()
        answers = [PushResult(c.push.key, Outcome.SENT, f"projects/x/messages/late-{c.id}") for c in dead]
        engine._finish(db.session, campaign, dead, answers, token=token, now=None, report=late, app=committed_app)
        assert (late.sent, late.stale, late.outcomes, late.inbox_events) == (0, 40, {}, [])
        received = _received(fake_fcm)
        assert len(received) == 40 and set(received.values()) == {1}
        db.session.rollback()
        rows = db.session.execute(text("SELECT status, fcm_message_id, attempts FROM push_deliveries "
                                       "WHERE campaign_id = :c"), {"c": campaign_id}).all()
        assert {status for status, _mid, _attempts in rows} == {"sent"}
        assert not any("late-" in (mid or "") for _status, mid, _attempts in rows)
        assert {attempts for _status, _mid, attempts in rows} == {2}  # the lost claim counts as an attempt
        assert _inbox_entries(campaign_id) == 40
