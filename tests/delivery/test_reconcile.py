"""The reconciler rebuilds campaign work from PostgreSQL alone; jobs run through a real RQ worker."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rq.registry import ScheduledJobRegistry
from sqlalchemy import update

from backend.common.db import utcnow
from backend.common.jobs import get_queue
from backend.extensions import db
from backend.notifications.campaigns.models import Campaign
from backend.notifications.campaigns.schedule import local_to_utc
from backend.notifications.delivery import engine, reconcile
from backend.notifications.delivery.dispatch import dispatch_job_id, schedule_dispatch
from backend.notifications.delivery.models import PushDelivery
from tests.delivery.factories import MESSAGE, ledger, make_campaign, make_user, statuses

LEASE_S = 1200


def test_reconcile_after_a_redis_flush_redispatches_due_work_and_completes(app, db_session, fake_fcm, redis_conn,
                                                                           run_jobs):
    past = utcnow() - timedelta(minutes=5)
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(12)], due_at=past)
    schedule_dispatch(db.session, campaign_id=campaign.id, due_instants=[past])
    db.session.commit()
    redis_conn.flushdb()  # every queued and scheduled job is gone
    assert get_queue("push").count == 0
    report = reconcile.reconcile(db.session, lease_s=LEASE_S)
    assert report.dispatched == 1 and get_queue("push").count == 1
    run_jobs(("push",))
    assert statuses(db.session, campaign.id) == {"sent": 12} and len(fake_fcm.messages()) == 12
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "completed"


def test_reconcile_claims_past_their_lease_are_resent_with_the_same_collapse_identity(
        app, db_session, fake_fcm, run_jobs):
    now = utcnow()
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(4)], due_at=now - timedelta(hours=1))
    stale, fresh, _pending, spent = ledger(db.session, campaign.id)
    lease = reconcile.LEASE.total_seconds()
    db.session.execute(update(PushDelivery).where(PushDelivery.id.in_((stale.id, spent.id))).values(
        status="sending", claimed_at=now - timedelta(seconds=lease + 1), attempts=1))
    db.session.execute(update(PushDelivery).where(PushDelivery.id == spent.id).values(attempts=engine.MAX_ATTEMPTS))
    db.session.execute(update(PushDelivery).where(PushDelivery.id == fresh.id).values(
        status="sending", claimed_at=now - timedelta(seconds=lease - 15)))
    db.session.commit()
    report = reconcile.reconcile(db.session, now=now)
    assert report.resent == 2
    by_id = {r.id: r for r in ledger(db.session, campaign.id)}
    assert (by_id[stale.id].status, by_id[stale.id].error_code) == ("pending", "lease_expired")
    assert by_id[spent.id].status == "unknown"  # out of attempts: given up, not resent forever
    assert by_id[fresh.id].status == "sending"  # its lane may still be recording it
    run_jobs(("push",))
    received = {m["token"]: m["message"] for m in fake_fcm.messages()}
    assert set(received) == {_token(stale), _token(_pending)}
    message = received[_token(stale)]
    assert message["android"]["notification"]["tag"] == campaign.id.hex
    assert message["android"]["collapse_key"] == campaign.id.hex
    assert message["apns"]["headers"]["apns-collapse-id"] == campaign.id.hex
    assert statuses(db.session, campaign.id) == {"unknown": 1, "sending": 1, "sent": 2}


def test_reconcile_schedules_rows_due_before_its_next_run_at_their_instant(app, db_session, fake_fcm):
    now = utcnow().replace(microsecond=0)
    make_campaign(db.session, [make_user(db.session)], due_at=now + timedelta(seconds=20))
    campaign = db.session.query(Campaign).one()
    report = reconcile.reconcile(db.session, lease_s=LEASE_S, now=now)
    assert (report.dispatched, report.scheduled) == (0, 1)
    scheduled = ScheduledJobRegistry(queue=get_queue("push"))
    job_id = dispatch_job_id(campaign.id, now + timedelta(seconds=21))
    assert scheduled.get_job_ids() == [job_id]
    assert scheduled.get_scheduled_time(job_id) == now + timedelta(seconds=21)


def test_reconcile_leaves_paused_campaigns_alone_and_completes_finished_ones(app, db_session, fake_fcm):
    past = utcnow() - timedelta(minutes=1)
    paused = make_campaign(db.session, [make_user(db.session)], due_at=past, status="paused")
    finished = make_campaign(db.session, [make_user(db.session)], due_at=past)
    db.session.execute(update(PushDelivery).where(PushDelivery.campaign_id == finished.id)
                       .values(status="sent", sent_at=past))
    db.session.commit()
    report = reconcile.reconcile(db.session, lease_s=LEASE_S)
    assert (report.dispatched, report.completed) == (0, 1)
    db.session.expire_all()
    assert db.session.get(Campaign, paused.id).status == "paused"
    assert db.session.get(Campaign, finished.id).status == "completed"


def test_dispatch_scheduled_twice_for_an_instant_sends_each_device_once(app, db_session, fake_fcm, run_jobs):
    past = utcnow() - timedelta(seconds=30)
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(7)], due_at=past)
    for _ in range(2):
        schedule_dispatch(db.session, campaign_id=campaign.id, due_instants=[past, past + timedelta(milliseconds=3)])
        db.session.commit()
    reconcile.reconcile(db.session, lease_s=LEASE_S)  # and the reconciler, for good measure
    run_jobs(("push",))
    tokens = [m["token"] for m in fake_fcm.messages()]
    assert len(tokens) == 7 and len(set(tokens)) == 7


def test_local_time_campaign_materialized_by_jobs_sends_each_zone_at_its_dst_correct_instant(
        app, db_session, fake_fcm, run_jobs):
    # 2027-03-14: New York springs forward at 02:00, so 02:30 does not exist there (→ 03:00 EDT).
    zones = ["America/New_York", "Europe/London", "Asia/Kathmandu", "Australia/Lord_Howe", "Not/A_Zone"]
    people = {zone: make_user(db.session, zone=zone) for zone in zones}
    campaign = Campaign(name="local", status="scheduled", category="promotional", audience={"type": "all"},
                        message=MESSAGE, launched_at=utcnow(),
                        schedule={"type": "local", "local_time": "02:30", "date": "2027-03-14",
                                  "fallback_zone": "Europe/Paris"})
    db.session.add(campaign)
    db.session.commit()
    from backend.common.jobs import enqueue_after_commit

    enqueue_after_commit(db.session, "jobs.campaigns.materialize_campaign", queue="push",
                         campaign_id=str(campaign.id))
    db.session.commit()
    run_jobs(("push",))
    day, at = date(2027, 3, 14), time(2, 30)
    expected = {zone: local_to_utc(day, at, zone) for zone in zones[:-1]}
    expected["Not/A_Zone"] = local_to_utc(day, at, "Europe/Paris")
    assert expected["America/New_York"] == datetime(2027, 3, 14, 7, 0, tzinfo=UTC)
    assert expected["Asia/Kathmandu"] == datetime(2027, 3, 13, 20, 45, tzinfo=UTC)
    rows = {r.time_zone: r for r in ledger(db.session, campaign.id)}
    assert {z: r.due_at for z, r in rows.items()} == expected
    scheduled = ScheduledJobRegistry(queue=get_queue("push"))
    assert {scheduled.get_scheduled_time(j) for j in scheduled.get_job_ids()} == set(expected.values())
    # The scheduler fires each instant; a lane running then sends exactly that zone, never early.
    for instant in sorted(set(expected.values())):
        engine.run_lane(db.session, campaign_id=campaign.id, now=instant - timedelta(seconds=1))
        engine.run_lane(db.session, campaign_id=campaign.id, now=instant)
        sent = {r.time_zone for r in ledger(db.session, campaign.id) if r.status == "sent"}
        assert sent == {z for z, due in expected.items() if due <= instant}
    assert sorted(m["token"] for m in fake_fcm.messages()) == sorted(_token(p) for p in people.values())
    local = {z: rows[z].due_at.astimezone(ZoneInfo(z if z != "Not/A_Zone" else "Europe/Paris")) for z in zones}
    assert local["America/New_York"].strftime("%H:%M %Z") == "03:00 EDT"
    assert local["Australia/Lord_Howe"].strftime("%H:%M") == "02:30"


def _token(row_or_person) -> str:
    from backend.notifications.models import Device

    device_id = row_or_person.device_id if hasattr(row_or_person, "device_id") else row_or_person.devices[0].id
    return db.session.get(Device, device_id).token


def test_finished_campaign_is_announced_once_as_a_signed_webhook_event(app, db_session, fake_fcm, run_jobs):
    from sqlalchemy import select

    from backend.webhooks.models import WebhookEvent
    from backend.webhooks.services import create_endpoint

    create_endpoint(db.session, url="https://hooks.example.test/groundwork", event_types=["campaign.finished"])
    due = utcnow() - timedelta(seconds=5)
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(3)], due_at=due)
    schedule_dispatch(db.session, campaign_id=campaign.id, due_instants=[due])
    db.session.commit()
    run_jobs(("push",))
    reconcile.reconcile(db.session)  # again: the campaign is announced once, when it completes
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).status == "completed", statuses(db.session, campaign.id)
    [event] = db.session.scalars(select(WebhookEvent).where(WebhookEvent.type == "campaign.finished")).all()
    assert event.data["id"] == str(campaign.id) and event.data["recipients"] == 3
    assert event.data["deliveries"] == {"sent": 3}
