"""At most PUSH_MAX_LANES lanes per origin, and one queued dispatch, whatever enqueues them."""
from __future__ import annotations

from datetime import timedelta

from backend.common.db import utcnow
from backend.common.jobs import get_queue
from backend.extensions import db
from backend.notifications.delivery import lanes, reconcile
from backend.notifications.delivery.dispatch import start_lanes
from tests.delivery.factories import make_campaign, make_user, statuses


def _queued(prefix: str) -> list[str]:
    return [job_id for job_id in get_queue("push").job_ids if job_id.startswith(prefix)]


def test_lanes_beyond_the_limit_end_at_once_without_sending(app, db_session, fake_fcm, run_jobs, redis_conn,
                                                            monkeypatch):
    monkeypatch.setitem(app.config, "PUSH_MAX_LANES", 2)
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(10)],
                             due_at=utcnow() - timedelta(seconds=1))
    origin = str(campaign.id)
    busy = lanes.reserve(redis_conn, origin=origin, count=5, max_lanes=2)
    assert len(busy) == 2  # two lanes of the campaign hold both slots
    start_lanes(campaign_id=campaign.id, lanes=3, tag="extra")  # lanes nobody may run now
    run_jobs(("push",))
    assert fake_fcm.messages() == [] and statuses(db.session, campaign.id) == {"pending": 10}
    lanes.release(redis_conn, origin=origin, token=busy[0])
    start_lanes(campaign_id=campaign.id, lanes=1, tag="more")
    run_jobs(("push",))
    assert statuses(db.session, campaign.id) == {"sent": 10}
    assert lanes.active(redis_conn, origin=origin) == 1  # the slot the finished lane held is free again


def test_reconciler_queues_one_dispatch_per_campaign_however_often_it_runs(app, db_session, fake_fcm, run_jobs,
                                                                         redis_conn):
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(3)],
                             due_at=utcnow() - timedelta(minutes=1))
    for second in range(5):  # five reconciler runs while no worker gets to the dispatch
        reconcile.reconcile(db.session, now=utcnow() + timedelta(seconds=second))
    assert len(_queued(f"dispatch-{campaign.id}")) == 1
    run_jobs(("push",))
    assert statuses(db.session, campaign.id) == {"sent": 3}
    reconcile.reconcile(db.session)
    assert _queued(f"dispatch-{campaign.id}") == []  # nothing due: nothing queued
