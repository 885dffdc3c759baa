"""Transactional sends through the one delivery engine to the local FCM server, counted on the FCM side."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from backend.common.db import utcnow
from backend.common.jobs import get_queue
from backend.extensions import db
from backend.notifications.delivery import engine, reconcile
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.devices import DeviceInfo, register_device
from backend.notifications.models import Device
from backend.notifications.preferences import QuietWindow, set_preferences, set_quiet_hours
from backend.notifications.topics import subscribe
from backend.notifications.transactional import PushContent, send_to_topic, send_to_user
from jobs.push import deliver_notifications


def device(user, token: str | None, installation: str | None = None, platform: str = "android", **info) -> Device:
    return register_device(db.session, user_id=user.id, installation_id=installation or f"inst-{token}",
                           info=DeviceInfo(token=token, platform=platform, **info))


def ledger(notification_id) -> dict[str, str]:
    db.session.expire_all()
    rows = db.session.execute(select(Device.installation_id, PushDelivery.status).join(
        Device, Device.id == PushDelivery.device_id).where(
        PushDelivery.notification_id == notification_id)).all()
    return dict(rows)


def time_passes(redis_conn) -> None:
    """Every waiting row is due now and the quota backoff is over (as if its wait had passed)."""
    db.session.execute(update(PushDelivery).where(PushDelivery.status.in_(("pending", "deferred")))
                       .values(next_attempt_at=utcnow()))
    db.session.commit()
    for key in redis_conn.scan_iter("groundwork:push:quota-backoff:*"):
        redis_conn.delete(key)


def test_send_to_user_reaches_every_live_device_once(app, db_session, run_jobs, fake_fcm, new_user):
    user = new_user()
    device(user, "phone-token", platform="ios")
    device(user, "tablet-token")
    device(user, None, installation="inst-no-token")
    device(user, "denied-token", push_permission="denied")
    device(new_user(), "someone-else")
    summary = send_to_user(db.session, user_id=user.id, content=PushContent(
        title="Receipt", body="Paid 12 EUR", data={"order": "7"}, deep_link="myapp://orders/7",
        ttl_seconds=600, collapse_key="order-7"))
    assert summary.status == "queued" and summary.queued == 1
    run_jobs(("push",))
    received = {m["token"]: m["message"] for m in fake_fcm.messages()}
    assert set(received) == {"phone-token", "tablet-token"}
    message = received["phone-token"]
    assert message["notification"] == {"title": "Receipt", "body": "Paid 12 EUR"}
    assert message["data"] == {"order": "7", "notification_id": str(summary.notification_ids[0]),
                               "category": "transactional", "deep_link": "myapp://orders/7"}
    assert message["android"]["collapse_key"] == "order-7"
    assert message["android"]["notification"] == {"tag": "order-7"}  # the sender's collapse key is the identity
    assert 590 <= int(message["android"]["ttl"].removesuffix("s")) <= 600
    assert message["fcm_options"] == {"analytics_label": "tx_transactional"}
    assert ledger(summary.notification_ids[0]) == {"inst-phone-token": "sent", "inst-tablet-token": "sent"}


def test_rerun_of_same_job_sends_nothing_twice(app, db_session, run_jobs, fake_fcm, new_user):
    user = new_user()
    device(user, "once-token")
    summary = send_to_user(db.session, user_id=user.id, content=PushContent(title="Hi"))
    ids = [str(i) for i in summary.notification_ids]
    run_jobs(("push",))
    again = deliver_notifications(notification_ids=ids)
    get_queue("push").enqueue("jobs.push.deliver_notifications", kwargs={"notification_ids": ids})
    run_jobs(("push",))
    assert again["sent"] == 0
    assert [m["token"] for m in fake_fcm.messages()] == ["once-token"]


def test_dead_tokens_are_pruned_and_mismatch_flagged(app, db_session, run_jobs, fake_fcm, new_user):
    user = new_user()
    gone = device(user, "unregistered-abc")
    bad = device(user, "invalid-abc")
    other = device(user, "mismatch-abc")
    good = device(user, "fine-abc")
    summary = send_to_user(db.session, user_id=user.id, content=PushContent(title="Hi"))
    run_jobs(("push",))
    assert [m["token"] for m in fake_fcm.messages()] == ["fine-abc"]
    for pruned, reason in ((gone, "unregistered"), (bad, "invalid_token")):
        db.session.refresh(pruned)
        assert (pruned.token, pruned.disabled_reason) == (None, reason)
    db.session.refresh(other)
    assert (other.token, other.disabled_reason) == ("mismatch-abc", "sender_mismatch")
    db.session.refresh(good)
    assert good.disabled_at is None
    assert ledger(summary.notification_ids[0]) == {
        "inst-unregistered-abc": "failed", "inst-invalid-abc": "failed", "inst-mismatch-abc": "failed",
        "inst-fine-abc": "sent"}
    send_to_user(db.session, user_id=user.id, content=PushContent(title="Again"))
    run_jobs(("push",))
    assert [m["token"] for m in fake_fcm.messages()] == ["fine-abc", "fine-abc"]


def test_quota_exceeded_reschedules_after_retry_after_without_resending_sent(
        app, db_session, run_jobs, fake_fcm, new_user, redis_conn):
    user = new_user()
    device(user, "a-token")
    device(user, "b-token")
    fake_fcm.configure(fail_next=1, fail_next_code="QUOTA_EXCEEDED", retry_after_s=120)
    summary = send_to_user(db.session, user_id=user.id, content=PushContent(title="Hi"))
    before = datetime.now(UTC)
    run_jobs(("push",))
    assert len(fake_fcm.messages()) == 1
    statuses = sorted(ledger(summary.notification_ids[0]).values())
    assert statuses == ["pending", "sent"]
    registry = ScheduledJobRegistry(queue=get_queue("push"))
    [job_id] = registry.get_job_ids()
    when = registry.get_scheduled_time(job_id)
    assert before + timedelta(seconds=115) <= when <= datetime.now(UTC) + timedelta(seconds=125)
    # Time passes: the scheduler moves the dispatch to its queue, the worker runs it.
    time_passes(redis_conn)
    job = get_queue("push").fetch_job(job_id)
    registry.remove(job)
    get_queue("push").enqueue_job(job)
    run_jobs(("push",))
    assert sorted(m["token"] for m in fake_fcm.messages()) == ["a-token", "b-token"]
    assert set(ledger(summary.notification_ids[0]).values()) == {"sent"}


def test_server_errors_retry_with_backoff_then_fail(app, db_session, run_jobs, fake_fcm, new_user):
    user = new_user()
    device(user, "internal-token")
    summary = send_to_user(db.session, user_id=user.id, content=PushContent(title="Hi"))
    run_jobs(("push",))
    first = ScheduledJobRegistry(queue=get_queue("push"))
    [job_id] = first.get_job_ids()
    delay = (first.get_scheduled_time(job_id) - datetime.now(UTC)).total_seconds()
    assert 8 <= delay <= 21  # 20 s base, jittered down to half
    later = utcnow()
    for _ in range(engine.MAX_ATTEMPTS - 1):
        later += timedelta(hours=1)
        engine.run_lane(db.session, campaign_id=None, now=later)
    assert ledger(summary.notification_ids[0]) == {"inst-internal-token": "failed"}
    assert len(fake_fcm.messages()) == 0


def test_disabled_category_is_suppressed(app, db_session, run_jobs, fake_fcm, new_user):
    user = new_user()
    device(user, "promo-token")
    set_preferences(db.session, user_id=user.id, categories={"promotional": False})
    db.session.commit()
    summary = send_to_user(db.session, user_id=user.id, content=PushContent(category="promotional", title="Sale"))
    assert (summary.status, summary.suppressed, summary.notification_ids) == ("suppressed", 1, [])
    tx = send_to_user(db.session, user_id=user.id, content=PushContent(title="Receipt"))
    run_jobs(("push",))
    assert tx.status == "queued"
    assert [m["message"]["notification"]["title"] for m in fake_fcm.messages()] == ["Receipt"]


def test_quiet_hours_defer_non_transactional_until_local_morning(app, db_session, run_jobs, fake_fcm, new_user):
    user = new_user()
    device(user, "night-token", time_zone="Pacific/Chatham")  # UTC+12:45/+13:45
    now_local = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Chatham"))
    start = (now_local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now_local + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    set_quiet_hours(db.session, user_id=user.id, start=start, end=end, time_zone=None)
    db.session.commit()
    social = send_to_user(db.session, user_id=user.id, content=PushContent(category="social", title="New follower"))
    urgent = send_to_user(db.session, user_id=user.id, content=PushContent(title="Your code is 123456"))
    run_jobs(("push",))
    assert social.status == "deferred" and urgent.status == "queued"
    assert [m["message"]["notification"]["title"] for m in fake_fcm.messages()] == ["Your code is 123456"]
    expected = datetime.combine(now_local.date() + timedelta(days=1 if end < now_local.time() else 0), end,
                                tzinfo=now_local.tzinfo)
    assert abs((social.deliver_at - expected).total_seconds()) < 1
    [job_id] = ScheduledJobRegistry(queue=get_queue("push")).get_job_ids()
    when = ScheduledJobRegistry(queue=get_queue("push")).get_scheduled_time(job_id)
    assert abs((when - expected).total_seconds()) < 1


def test_quiet_window_wraps_midnight(app, db_session):
    window = QuietWindow(time(22), time(7), "America/New_York")
    tz = ZoneInfo("America/New_York")
    assert window.contains(datetime(2026, 1, 5, 23, 30, tzinfo=tz))
    assert window.contains(datetime(2026, 1, 6, 6, 59, tzinfo=tz))
    assert not window.contains(datetime(2026, 1, 6, 7, 0, tzinfo=tz))
    assert window.ends_after(datetime(2026, 1, 5, 23, 30, tzinfo=tz)) == datetime(2026, 1, 6, 7, 0, tzinfo=tz)
    spring = QuietWindow(time(1), time(2, 30), "America/New_York")  # 02:30 does not exist on 8 March 2026
    end = spring.ends_after(datetime(2026, 3, 8, 1, 30, tzinfo=tz))
    # The delivery policy's one rule: an end inside the gap is the gap's end, 03:00 EDT.
    assert end.astimezone(UTC) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


def test_send_to_topic_reaches_followers_only(app, db_session, run_jobs, fake_fcm, new_user):
    fan, other_fan, stranger = new_user(), new_user(), new_user()
    device(fan, "fan-token")
    device(other_fan, "fan2-token")
    device(stranger, "stranger-token")
    subscribe(db.session, user_id=fan.id, name="sports.scores")
    subscribe(db.session, user_id=other_fan.id, name="sports.scores")
    set_preferences(db.session, user_id=other_fan.id, categories={"social": False})
    db.session.commit()
    summary = send_to_topic(db.session, name="sports.scores", content=PushContent(category="social", title="Goal!"))
    assert (summary.recipients, summary.queued, summary.suppressed) == (2, 1, 1)
    run_jobs(("push",))
    assert [m["token"] for m in fake_fcm.messages()] == ["fan-token"]
    assert send_to_topic(db.session, name="nobody.follows", content=PushContent(title="x")).recipients == 0


def test_reconciler_finds_pushes_whose_job_was_lost(app, db_session, run_jobs, fake_fcm, new_user, redis_conn):
    user = new_user()
    device(user, "lost-token")
    send_to_user(db.session, user_id=user.id, content=PushContent(title="Lost job"))
    redis_conn.flushdb()  # Redis loses the queued dispatch
    assert get_queue("push").count == 0
    assert reconcile.reconcile(db.session).transactional == 1
    run_jobs(("push",))
    assert [m["token"] for m in fake_fcm.messages()] == ["lost-token"]
    assert reconcile.reconcile(db.session).transactional == 0  # delivered: nothing left to find


def test_reconciler_redispatches_stalled_retries_once_they_are_due(
        app, db_session, run_jobs, fake_fcm, new_user, redis_conn):
    user = new_user()
    device(user, "retry-token")
    fake_fcm.configure(fail_next=1, fail_next_code="QUOTA_EXCEEDED", retry_after_s=600)
    summary = send_to_user(db.session, user_id=user.id, content=PushContent(title="Retry me"))
    run_jobs(("push",))
    redis_conn.flushdb()  # the scheduled retry and the quota backoff are lost
    assert reconcile.reconcile(db.session).transactional == 0  # not due yet
    time_passes(redis_conn)
    assert reconcile.reconcile(db.session).transactional == 1
    run_jobs(("push",))
    assert ledger(summary.notification_ids[0]) == {"inst-retry-token": "sent"}


def test_expired_ttl_is_not_sent_on_retry(app, db_session, run_jobs, fake_fcm, new_user):
    user = new_user()
    device(user, "ttl-token")
    summary = send_to_user(db.session, user_id=user.id, content=PushContent(title="Flash", ttl_seconds=0))
    fake_fcm.configure(fail_next=3, fail_next_code="UNAVAILABLE")  # outlasts the sender's quick retries
    run_jobs(("push",))
    assert ledger(summary.notification_ids[0]) == {"inst-ttl-token": "pending"}
    engine.run_lane(db.session, campaign_id=None, now=utcnow() + timedelta(hours=1))
    assert ledger(summary.notification_ids[0]) == {"inst-ttl-token": "expired"}
    assert fake_fcm.messages() == []


def test_concurrent_runs_of_one_job_send_each_device_once(committed_app, fake_fcm):
    import threading

    from backend.auth.models import User

    app = committed_app
    with app.app_context():
        user = User(email="racer@example.test")
        db.session.add(user)
        db.session.commit()
        for i in range(20):
            device(user, f"race-token-{i:02d}")
        summary = send_to_user(db.session, user_id=user.id, content=PushContent(title="Once"))
        ids = [str(i) for i in summary.notification_ids]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                barrier.wait()
                deliver_notifications(notification_ids=ids)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    tokens = [m["token"] for m in fake_fcm.messages()]
    assert sorted(tokens) == [f"race-token-{i:02d}" for i in range(20)]
