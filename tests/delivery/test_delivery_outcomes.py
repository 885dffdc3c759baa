"""A batch claims due rows, sends them to the fake FCM and records each answer in the ledger."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from backend.common.jobs import get_queue
from backend.extensions import db
from backend.notifications.campaigns.models import Campaign
from backend.notifications.delivery import engine, outcomes
from backend.notifications.delivery.dispatch import dispatch_job_id
from backend.notifications.models import Device, Notification
from tests.delivery.factories import ledger, make_campaign, make_user, statuses

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_send_batch_due_rows_sent_once_with_message_ids_and_one_inbox_entry_per_user(app, db_session, fake_fcm):
    people = [make_user(db.session, devices=2), make_user(db.session)]
    campaign = make_campaign(db.session, people, due_at=T0)
    [report] = engine.run_lane(db.session, campaign_id=campaign.id, now=T0, max_batches=1)
    assert report.sent == 3
    rows = ledger(db.session, campaign.id)
    assert {r.status for r in rows} == {"sent"}
    received = {m["token"]: m for m in fake_fcm.messages()}
    tokens = {d.token for p in people for d in p.devices}
    assert set(received) == tokens and len(fake_fcm.messages()) == 3
    assert {r.fcm_message_id for r in rows} == {m["name"] for m in received.values()}
    assert all(r.attempts == 1 and r.sent_at == T0 and r.claimed_at == T0 for r in rows)
    sample = next(iter(received.values()))["message"]
    assert sample["notification"] == {"title": "Hello", "body": "News for you"}
    assert sample["data"]["campaign_id"] == str(campaign.id) and sample["data"]["screen"] == "home"
    inbox = db.session.execute(select(Notification.user_id, func.count()).where(
        Notification.campaign_id == campaign.id).group_by(Notification.user_id)).all()
    assert sorted(n for _, n in inbox) == [1, 1]


def test_send_batch_run_twice_never_resends_a_sent_row(app, db_session, fake_fcm):
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(5)], due_at=T0)
    engine.run_lane(db.session, campaign_id=campaign.id, now=T0)
    second = engine.run_lane(db.session, campaign_id=campaign.id, now=T0 + timedelta(minutes=5))
    assert [r.claimed for r in second] == [0]
    assert len(fake_fcm.messages()) == 5


def test_send_batch_rows_not_yet_due_are_left_pending(app, db_session, fake_fcm):
    campaign = make_campaign(db.session, [make_user(db.session)], due_at=T0 + timedelta(hours=1))
    [report] = engine.run_lane(db.session, campaign_id=campaign.id, now=T0)
    assert (report.claimed, report.stop) == (0, "idle")
    assert statuses(db.session, campaign.id) == {"pending": 1} and fake_fcm.messages() == []


def test_send_batch_dead_tokens_fail_and_are_pruned_mismatched_ones_flagged(app, db_session, fake_fcm):
    dead, invalid, mismatch, fine = (make_user(db.session, token_prefix=p)
                                     for p in ("unregistered", "invalid", "mismatch", "ok"))
    campaign = make_campaign(db.session, [dead, invalid, mismatch, fine], due_at=T0)
    engine.run_lane(db.session, campaign_id=campaign.id, now=T0)
    by_device = {r.device_id: r for r in ledger(db.session, campaign.id)}
    dead_row = by_device[dead.devices[0].id]
    assert (dead_row.status, dead_row.error_code) == ("failed", "UNREGISTERED")
    assert by_device[invalid.devices[0].id].status == "failed"
    assert by_device[mismatch.devices[0].id].error_code == "SENDER_ID_MISMATCH"
    assert by_device[fine.devices[0].id].status == "sent"
    dead_device, mismatched = db.session.get(Device, dead.devices[0].id), db.session.get(Device, mismatch.devices[0].id)
    assert dead_device.token is None and dead_device.disabled_reason == "unregistered"
    assert mismatched.token is not None and mismatched.disabled_reason == "sender_mismatch"


def test_send_batch_quota_exceeded_reschedules_after_retry_after(app, db_session, fake_fcm):
    fake_fcm.configure(retry_after_s=90)
    throttled, fine = make_user(db.session, token_prefix="quota"), make_user(db.session)
    campaign = make_campaign(db.session, [throttled, fine], due_at=T0)
    [report] = engine.run_lane(db.session, campaign_id=campaign.id, now=T0, max_batches=1)
    row = next(r for r in ledger(db.session, campaign.id) if r.device_id == throttled.devices[0].id)
    assert (row.status, row.error_code, row.claim_token) == ("pending", "QUOTA_EXCEEDED", None)
    assert row.next_attempt_at == T0 + timedelta(seconds=90)
    assert row.attempts == 0  # a 429 is the project's quota, not an attempt of the row's
    scheduled = ScheduledJobRegistry(queue=get_queue("push"))
    job_id = dispatch_job_id(campaign.id, T0 + timedelta(seconds=90))
    assert job_id in scheduled.get_job_ids()
    assert scheduled.get_scheduled_time(job_id) == T0 + timedelta(seconds=90)
    # Not due before Retry-After; sent once the quota frees.
    assert engine.run_lane(db.session, campaign_id=campaign.id, now=T0 + timedelta(seconds=60))[0].claimed == 0
    fake_fcm.reset()
    db.session.execute(Device.__table__.update().where(Device.id == throttled.devices[0].id).values(token="ok-now"))
    db.session.commit()
    engine.run_lane(db.session, campaign_id=campaign.id, now=T0 + timedelta(seconds=91))
    assert statuses(db.session, campaign.id) == {"sent": 2}
    assert [m["token"] for m in fake_fcm.messages()] == ["ok-now"]


def test_send_batch_server_errors_retry_with_backoff_then_fail(app, db_session, fake_fcm):
    user = make_user(db.session, token_prefix="unavailable")
    campaign = make_campaign(db.session, [user], due_at=T0)
    now, waits = T0, []
    for _ in range(engine.MAX_ATTEMPTS):
        engine.run_lane(db.session, campaign_id=campaign.id, now=now, max_batches=1)
        [row] = ledger(db.session, campaign.id)
        if row.status != "pending":
            break
        waits.append(row.next_attempt_at - now)
        now = row.next_attempt_at
    assert (row.status, row.error_code, row.attempts) == ("failed", "UNAVAILABLE", engine.MAX_ATTEMPTS)
    assert len(waits) == engine.MAX_ATTEMPTS - 1
    for attempt, wait in enumerate(waits, start=1):
        ceiling = outcomes.RETRY_BASE * 2 ** (attempt - 1)
        assert ceiling / 2 <= wait <= ceiling  # exponential, with jitter
    # Each engine attempt is itself 3 HTTP tries (the sender's fast retries).
    assert fake_fcm.stats()["counters"]["UNAVAILABLE"] == 3 * engine.MAX_ATTEMPTS


def test_send_batch_auth_failure_pauses_campaign_with_reason_and_leaves_rows(app, db_session, fake_fcm):
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(3)], due_at=T0)
    fake_fcm.configure(auth_broken=True, expire_tokens=True)
    reports = engine.run_lane(db.session, campaign_id=campaign.id, now=T0)
    assert reports[-1].stop == "paused"
    db.session.expire_all()
    paused = db.session.get(Campaign, campaign.id)
    assert paused.status == "paused" and "authentication" in paused.paused_reason
    assert statuses(db.session, campaign.id) == {"pending": 3}
    assert fake_fcm.messages() == []
    # A paused campaign is not touched by later lanes.
    fake_fcm.configure(auth_broken=False)
    assert engine.run_lane(db.session, campaign_id=campaign.id, now=T0)[0].stop == "inactive"


def test_send_batch_third_party_auth_error_pauses_campaign(app, db_session, fake_fcm):
    campaign = make_campaign(db.session, [make_user(db.session, token_prefix="thirdparty")], due_at=T0)
    engine.run_lane(db.session, campaign_id=campaign.id, now=T0)
    db.session.expire_all()
    paused = db.session.get(Campaign, campaign.id)
    assert paused.status == "paused" and "THIRD_PARTY_AUTH_ERROR" in paused.paused_reason


def test_send_batch_batches_of_batch_size_cover_every_row(app, db_session, fake_fcm):
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(25)], due_at=T0)
    reports = engine.run_lane(db.session, campaign_id=campaign.id, now=T0, batch_size=10)
    assert [r.sent for r in reports] == [10, 10, 5, 0]
    assert Counter(m["token"] for m in fake_fcm.messages()).most_common(1)[0][1] == 1
