"""Send-time policy: quiet hours, frequency caps, throttle and expiry, alone and together (★P1, ★P2)."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.extensions import db
from backend.notifications.delivery import engine, policy
from tests.delivery.factories import ledger, make_campaign, make_user, statuses

PARIS = ZoneInfo("Europe/Paris")
NIGHT = (time(22, 0), time(7, 0))


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


def test_quiet_hours_defer_to_their_end_then_send(app, db_session, fake_fcm):
    sleeper = make_user(db.session, zone="Europe/Paris", quiet=NIGHT)
    awake = make_user(db.session, zone="Europe/Paris")
    at_night = paris(2026, 6, 10, 23, 30)
    campaign = make_campaign(db.session, [sleeper, awake], due_at=at_night)
    engine.run_lane(db.session, campaign_id=campaign.id, now=at_night)
    rows = {r.user_id: r for r in ledger(db.session, campaign.id)}
    deferred = rows[sleeper.user.id]
    assert (deferred.status, deferred.error_code) == ("deferred", "quiet_hours")
    assert deferred.next_attempt_at == paris(2026, 6, 11, 7, 0)
    assert rows[awake.user.id].status == "sent" and len(fake_fcm.messages()) == 1
    assert engine.run_lane(db.session, campaign_id=campaign.id, now=paris(2026, 6, 11, 6, 59))[0].claimed == 0
    engine.run_lane(db.session, campaign_id=campaign.id, now=paris(2026, 6, 11, 7, 0))
    assert statuses(db.session, campaign.id) == {"sent": 2}
    assert [m["token"] for m in fake_fcm.messages()][-1] == sleeper.devices[0].token


def test_quiet_hours_end_on_a_dst_day_is_the_local_wall_time(app, db_session, fake_fcm):
    # Night of 28→29 March 2026: Paris moves from +01:00 to +02:00 at 02:00.
    sleeper = make_user(db.session, zone="Europe/Paris", quiet=NIGHT)
    campaign = make_campaign(db.session, [sleeper], due_at=paris(2026, 3, 28, 23, 0))
    engine.run_lane(db.session, campaign_id=campaign.id, now=paris(2026, 3, 28, 23, 0))
    [row] = ledger(db.session, campaign.id)
    assert row.next_attempt_at == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 07:00 CEST


def test_quiet_hours_do_not_hold_transactional_campaigns(app, db_session, fake_fcm):
    sleeper = make_user(db.session, zone="Europe/Paris", quiet=NIGHT)
    at_night = paris(2026, 6, 10, 23, 30)
    campaign = make_campaign(db.session, [sleeper], due_at=at_night, category="transactional")
    engine.run_lane(db.session, campaign_id=campaign.id, now=at_night)
    assert statuses(db.session, campaign.id) == {"sent": 1}


def test_quiet_hours_ignored_when_campaign_opts_out(app, db_session, fake_fcm):
    sleeper = make_user(db.session, zone="Europe/Paris", quiet=NIGHT)
    at_night = paris(2026, 6, 10, 23, 30)
    campaign = make_campaign(db.session, [sleeper], due_at=at_night, respect_quiet_hours=False)
    engine.run_lane(db.session, campaign_id=campaign.id, now=at_night)
    assert statuses(db.session, campaign.id) == {"sent": 1}


def test_quiet_hours_ending_after_expiry_expire_the_row(app, db_session, fake_fcm):
    sleeper = make_user(db.session, zone="Europe/Paris", quiet=NIGHT)
    at_night = paris(2026, 6, 10, 23, 30)
    campaign = make_campaign(db.session, [sleeper], due_at=at_night, expires_at=paris(2026, 6, 11, 6, 0))
    engine.run_lane(db.session, campaign_id=campaign.id, now=at_night)
    [row] = ledger(db.session, campaign.id)
    assert (row.status, row.error_code) == ("expired", "quiet_hours") and fake_fcm.messages() == []


def test_frequency_cap_defers_until_the_window_frees_then_sends(app, db_session, fake_fcm):
    user = make_user(db.session)
    t0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    first = make_campaign(db.session, [user], due_at=t0, name="first")
    engine.run_lane(db.session, campaign_id=first.id, now=t0)
    cap = {"max": 1, "window_hours": 24}
    second = make_campaign(db.session, [user], due_at=t0 + timedelta(hours=2), frequency_cap=cap, name="second")
    other_category = make_campaign(db.session, [user], due_at=t0 + timedelta(hours=2), frequency_cap=cap,
                                   category="social", name="social")
    engine.run_lane(db.session, campaign_id=second.id, now=t0 + timedelta(hours=2))
    engine.run_lane(db.session, campaign_id=other_category.id, now=t0 + timedelta(hours=2))
    [row] = ledger(db.session, second.id)
    assert (row.status, row.error_code) == ("deferred", "frequency_cap")
    assert row.next_attempt_at == t0 + timedelta(hours=24)
    assert statuses(db.session, other_category.id) == {"sent": 1}  # caps count per category
    engine.run_lane(db.session, campaign_id=second.id, now=t0 + timedelta(hours=24))
    assert statuses(db.session, second.id) == {"sent": 1}


def test_frequency_cap_that_cannot_free_before_expiry_marks_capped(app, db_session, fake_fcm):
    user = make_user(db.session)
    t0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    engine.run_lane(db.session, campaign_id=make_campaign(db.session, [user], due_at=t0).id, now=t0)
    capped = make_campaign(db.session, [user], due_at=t0 + timedelta(hours=1), expires_at=t0 + timedelta(hours=12),
                           frequency_cap={"max": 1, "window_hours": 24})
    engine.run_lane(db.session, campaign_id=capped.id, now=t0 + timedelta(hours=1))
    [row] = ledger(db.session, capped.id)
    assert (row.status, row.error_code) == ("capped", "frequency_cap")


def test_frequency_cap_counts_a_user_once_per_campaign_across_devices(app, db_session, fake_fcm):
    user = make_user(db.session, devices=3)
    t0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    campaign = make_campaign(db.session, [user], due_at=t0, frequency_cap={"max": 1, "window_hours": 24})
    engine.run_lane(db.session, campaign_id=campaign.id, now=t0, batch_size=1)
    assert statuses(db.session, campaign.id) == {"sent": 3}


def test_throttle_never_exceeds_the_rate_in_any_minute_and_sends_everything(app, db_session, fake_fcm):
    t0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(150)], due_at=t0,
                             throttle_per_minute=60)
    now, wakes = t0, 0
    while statuses(db.session, campaign.id).get("pending") and wakes < 40:
        reports = engine.run_lane(db.session, campaign_id=campaign.id, now=now)
        assert reports[-1].stop == "throttled" or not statuses(db.session, campaign.id).get("pending")
        now = reports[-1].wake_at or now + timedelta(seconds=1)
        wakes += 1
    sent_at = sorted(r.sent_at for r in ledger(db.session, campaign.id))
    assert len(sent_at) == 150 and len(fake_fcm.messages()) == 150
    for i, start in enumerate(sent_at):
        in_minute = sum(1 for s in sent_at[i:] if s < start + timedelta(minutes=1))
        assert in_minute <= 60
    # Smooth, not a burst each minute: no more than a sixth of the rate in any 10 s.
    assert max(sum(1 for s in sent_at if start <= s < start + timedelta(seconds=10)) for start in sent_at) <= 10
    assert sent_at[-1] - sent_at[0] < timedelta(minutes=3)


def test_throttle_allowance_comes_from_postgres_after_a_redis_flush(app, db_session, fake_fcm, redis_conn):
    t0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(30)], due_at=t0,
                             throttle_per_minute=12)
    engine.run_lane(db.session, campaign_id=campaign.id, now=t0)
    redis_conn.flushdb()
    engine.run_lane(db.session, campaign_id=campaign.id, now=t0 + timedelta(seconds=5))
    assert statuses(db.session, campaign.id)["sent"] == 2  # ceil(12/6) per 10 s, flush or not


def test_expired_campaign_rows_expire_instead_of_sending(app, db_session, fake_fcm):
    t0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    campaign = make_campaign(db.session, [make_user(db.session) for _ in range(3)], due_at=t0,
                             expires_at=t0 + timedelta(hours=1))
    engine.run_lane(db.session, campaign_id=campaign.id, now=t0 + timedelta(hours=1))
    assert statuses(db.session, campaign.id) == {"expired": 3} and fake_fcm.messages() == []


def test_local_time_campaign_honours_quiet_hours_cap_and_throttle_together(app, db_session, fake_fcm):
    """★P1: 21:30 local in three zones, throttled, capped, some users asleep early: all rules at once."""
    zones = {"Asia/Kolkata": 21.5, "Europe/Paris": 21.5, "America/St_Johns": 21.5}
    people = []
    for zone in zones:
        people += [make_user(db.session, zone=zone) for _ in range(4)]
        people.append(make_user(db.session, zone=zone, quiet=(time(21, 0), time(8, 0))))
    day = datetime(2026, 6, 10)
    due = {z: datetime(day.year, day.month, day.day, 21, 30, tzinfo=ZoneInfo(z)).astimezone(UTC) for z in zones}
    already = people[0]  # got a promotional push this morning: capped at 1 per 24 h
    earlier = make_campaign(db.session, [already], due_at=min(due.values()) - timedelta(hours=10), name="earlier")
    engine.run_lane(db.session, campaign_id=earlier.id, now=min(due.values()) - timedelta(hours=10))
    campaign = make_campaign(db.session, people, due_at=min(due.values()), due_by_zone=due, throttle_per_minute=6,
                             frequency_cap={"max": 1, "window_hours": 24},
                             expires_at=max(due.values()) + timedelta(days=2))
    now = min(due.values())
    for _ in range(200):
        if not (set(statuses(db.session, campaign.id)) & {"pending", "deferred"}):
            break
        reports = engine.run_lane(db.session, campaign_id=campaign.id, now=now)
        pending = [r.next_attempt_at for r in ledger(db.session, campaign.id)
                   if r.status in ("pending", "deferred")]
        later = [t for t in (reports[-1].wake_at, *pending) if t is not None and t > now]
        now = min(later) if later else now + timedelta(seconds=1)
    rows = {r.user_id: r for r in ledger(db.session, campaign.id)}
    assert {r.status for r in rows.values()} == {"sent"}
    for person in people:
        row = rows[person.user.id]
        local = row.sent_at.astimezone(ZoneInfo(row.time_zone))
        assert row.sent_at >= due[row.time_zone]  # never early
        if person in people[4::5]:  # asleep from 21:00: the next morning, from 08:00
            assert local.date() == datetime(2026, 6, 11).date() and time(8, 0) <= local.time() < time(9, 0)
        else:
            assert local.time() >= time(21, 30) or local.date() > datetime(2026, 6, 10).date()
    assert rows[already.user.id].sent_at >= earlier.launched_at + timedelta(hours=24)
    sent = sorted(r.sent_at for r in rows.values())
    assert all(sum(1 for s in sent if a <= s < a + timedelta(minutes=1)) <= 6 for a in sent)


def test_policy_quiet_hours_end_handles_windows_within_a_day():
    noon = datetime(2026, 6, 10, 12, 30, tzinfo=UTC)
    assert policy.quiet_hours_end(time(12, 0), time(14, 0), "UTC", noon) == noon.replace(hour=14, minute=0)
    assert policy.quiet_hours_end(time(13, 0), time(14, 0), "UTC", noon) is None
    assert policy.quiet_hours_end(time(9, 0), time(9, 0), "UTC", noon) is None
    assert policy.quiet_hours_end(time(12, 0), time(14, 0), "Not/AZone", noon) == noon.replace(hour=14, minute=0)


def test_quiet_hours_ending_inside_the_repeated_fall_back_hour_end_at_its_second_occurrence():
    """New York, 2026-11-01: 01:00-02:00 happens twice. At the second 01:15 (06:15Z) a
    22:00-01:30 window ends at the second 01:30 (06:30Z), not the first one (05:30Z), which
    has passed: a deferral into the past would make the lane reclaim the row forever."""
    user_id = uuid.uuid4()
    recipient = policy.Recipient(
        user_id=user_id, time_zone="America/New_York", device_present=True, owner=user_id, token="t",
        device_disabled=False, permission_denied=False, category_enabled=None, quiet_start=time(22, 0),
        quiet_end=time(1, 30),
        quiet_zone="America/New_York")
    rules = policy.CampaignRules(category="promotional", priority="normal", respect_quiet_hours=True,
                                 expires_at=None, cap_max=None, cap_window=None)
    now = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)
    verdict = policy.decide(recipient, rules, now=now)
    assert verdict.status == "deferred"
    assert verdict.next_attempt_at == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    first_pass = datetime(2026, 11, 1, 5, 15, tzinfo=UTC)  # the first 01:15 (EDT): ends at the first 01:30
    assert policy.decide(recipient, rules, now=first_pass).next_attempt_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
