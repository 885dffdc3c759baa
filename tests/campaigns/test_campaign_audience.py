"""Dry runs per zone/variant/locale, filters, and materialization of the send ledger."""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text

from backend.common.db import utcnow
from backend.extensions import db
from backend.notifications.campaigns.audience import stream_audience
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.models import NotificationPreference, Topic, TopicSubscription
from jobs.campaigns import materialize_campaign
from tests.campaigns.conftest import future

ZONES = (
    "America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney", "Asia/Kathmandu",
    "Pacific/Chatham", "Asia/Kolkata", "UTC", "Australia/Lord_Howe", "Asia/Tokyo", "Mars/Base",
)


def _next_day_where(zone: str, wall: time, *, exists: bool | None = None, ambiguous: bool = False) -> date:
    """The first date from the day after tomorrow on which ``wall`` is missing (or ambiguous) in ``zone``."""
    tz, day = ZoneInfo(zone), utcnow().date() + timedelta(days=2)
    for _ in range(800):
        local = datetime.combine(day, wall)
        first, second = local.replace(tzinfo=tz, fold=0), local.replace(tzinfo=tz, fold=1)
        missing = first.astimezone(ZoneInfo("UTC")).astimezone(tz).replace(tzinfo=None) != local
        double = not missing and first.utcoffset() != second.utcoffset()
        if (ambiguous and double) or (not ambiguous and missing):
            return day
        day += timedelta(days=1)
    raise AssertionError("no transition found")


def _dry_run(client, headers, campaign_id: str) -> dict:
    response = client.post(f"/v1/campaigns/{campaign_id}/dry-run", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_dry_run_local_time_across_zones_moves_dst_gap_forward(client, create_campaign, marketer_headers, populate):
    gap_day = _next_day_where("America/New_York", time(2, 30))
    populate(33, zones=ZONES)
    campaign = create_campaign(schedule={"type": "local", "local_time": "02:30", "date": gap_day.isoformat(),
                                         "fallback_zone": "Europe/Paris"})
    result = _dry_run(client, marketer_headers, campaign["id"])
    zones = {row["time_zone"]: row for row in result["by_time_zone"]}
    assert set(zones) == set(ZONES) and len(zones) >= 10
    assert result["total"] == {"devices": 33, "users": 33}
    assert all(row["devices"] == 3 for row in zones.values())
    new_york = zones["America/New_York"]
    assert new_york["due_local"] == f"{gap_day}T03:00:00-04:00"  # 02:30 does not exist: 03:00 EDT
    assert new_york["due_at"] == f"{gap_day}T07:00:00+00:00"
    assert zones["America/Los_Angeles"]["due_local"] == f"{gap_day}T03:00:00-07:00"
    assert zones["Asia/Kathmandu"]["due_local"] == f"{gap_day}T02:30:00+05:45"
    assert zones["Asia/Kolkata"]["due_local"] == f"{gap_day}T02:30:00+05:30"
    assert zones["UTC"]["due_at"] == f"{gap_day}T02:30:00+00:00"
    assert zones["Pacific/Chatham"]["due_local"].startswith(f"{gap_day}T02:30:00+1")
    assert zones["Pacific/Chatham"]["due_local"][-6:] in ("+12:45", "+13:45")
    assert zones["Australia/Lord_Howe"]["due_local"][-6:] in ("+10:30", "+11:00")
    assert zones["Mars/Base"]["effective_time_zone"] == "Europe/Paris"
    assert zones["Mars/Base"]["due_local"].startswith(f"{gap_day}T02:30:00+01:00")
    # Listed in send order: the earliest zones (east of the date line) first.
    assert [row["due_at"] for row in result["by_time_zone"]] == sorted(row["due_at"] for row in result["by_time_zone"])


def test_dry_run_ambiguous_local_time_fires_once_at_first_occurrence(client, create_campaign, marketer_headers,
                                                                     populate):
    overlap_day = _next_day_where("America/New_York", time(1, 30), ambiguous=True)
    populate(2, zones=("America/New_York",))
    campaign = create_campaign(schedule={"type": "local", "local_time": "01:30", "date": overlap_day.isoformat()})
    (row,) = _dry_run(client, marketer_headers, campaign["id"])["by_time_zone"]
    assert row["due_local"] == f"{overlap_day}T01:30:00-04:00"  # EDT: the first of the two 01:30s
    assert row["due_at"] == f"{overlap_day}T05:30:00+00:00"


def test_dry_run_lord_howe_half_hour_gap_moves_forward(client, create_campaign, marketer_headers, populate):
    gap_day = _next_day_where("Australia/Lord_Howe", time(2, 15))
    populate(1, zones=("Australia/Lord_Howe",))
    campaign = create_campaign(schedule={"type": "local", "local_time": "02:15", "date": gap_day.isoformat()})
    (row,) = _dry_run(client, marketer_headers, campaign["id"])["by_time_zone"]
    assert row["due_local"] == f"{gap_day}T02:30:00+11:00"


def test_dry_run_variant_split_is_near_weights_and_deterministic(client, create_campaign, marketer_headers, populate):
    populate(2000)
    campaign = create_campaign(variants=[{"key": "A", "weight": 1}, {"key": "B", "weight": 3}], holdout_percent=10)
    first = _dry_run(client, marketer_headers, campaign["id"])
    second = _dry_run(client, marketer_headers, campaign["id"])
    assert first["by_variant"] == second["by_variant"]
    counts = {row["variant"]: row["users"] for row in first["by_variant"]}
    assert sum(counts.values()) == 2000
    # Expected 200 / 450 / 1350; 4 binomial standard deviations either side.
    assert abs(counts["holdout"] - 200) <= 4 * (2000 * 0.1 * 0.9) ** 0.5
    assert abs(counts["A"] - 450) <= 4 * (2000 * 0.225 * 0.775) ** 0.5
    assert abs(counts["B"] - 1350) <= 4 * (2000 * 0.675 * 0.325) ** 0.5


def test_dry_run_samples_render_defaults_and_names_per_locale(client, create_campaign, marketer_headers, populate):
    populate(2, locales=("fr-CA", "en-GB"))
    campaign = create_campaign()
    result = _dry_run(client, marketer_headers, campaign["id"])
    samples = {(s["variant"], s["locale"]): s for s in result["samples"]}
    assert samples[("A", "en")]["title"] == "Hi there"
    assert samples[("A", "en")]["title_with_name"] == "Hi Alex"
    assert samples[("A", "fr")]["title"] == "Bonjour à vous"
    assert {row["locale"]: row["renders_as"] for row in result["by_locale"]} == {"fr-CA": "fr", "en-GB": "en"}


def test_dry_run_filters_select_only_matching_devices(client, create_campaign, marketer_headers, populate):
    stale = utcnow() - timedelta(days=60)
    populate(4, platforms=("ios",), app_version="2.10.0", properties={"plan": "pro"})  # match
    populate(3, platforms=("android",), app_version="2.10.0", properties={"plan": "pro"})  # platform
    populate(2, platforms=("ios",), app_version="2.9.9", properties={"plan": "pro"})  # version
    populate(2, platforms=("ios",), app_version="2.10.0", properties={"plan": "free"})  # property
    populate(2, platforms=("ios",), app_version="2.10.0", properties={"plan": "pro"}, last_seen_at=stale)
    populate(2, platforms=("ios",), app_version="2.10.0", properties={"plan": "pro"}, permission="denied")
    populate(2, platforms=("ios",), app_version="2.10.0", properties={"plan": "pro"}, status="suspended")
    campaign = create_campaign(audience={"type": "segment", "filters": {
        "platforms": ["ios"], "app_version_min": "2.10", "last_active_within_days": 30,
        "properties": {"plan": "pro"}}})
    assert _dry_run(client, marketer_headers, campaign["id"])["total"] == {"devices": 4, "users": 4}


def test_dry_run_topic_audience_and_opt_outs(client, create_campaign, marketer_headers, populate):
    followers = populate(5)
    populate(3)  # not following
    topic = Topic(name="deals")
    db.session.add(topic)
    db.session.flush()
    db.session.execute(insert(TopicSubscription), [{"topic_id": topic.id, "user_id": uid} for uid in followers])
    db.session.add(NotificationPreference(user_id=followers[0], category="promotional", enabled=False))
    db.session.commit()
    campaign = create_campaign(audience={"type": "topic", "topic": "deals"})
    result = _dry_run(client, marketer_headers, campaign["id"])
    assert result["total"] == {"devices": 4, "users": 4}
    assert result["suppressed"] == {"devices": 1, "users": 1}


def _ledger(campaign_id: str) -> list:
    return db.session.execute(
        select(PushDelivery.id, PushDelivery.device_id, PushDelivery.user_id, PushDelivery.variant,
               PushDelivery.status, PushDelivery.due_at)
        .where(PushDelivery.campaign_id == uuid.UUID(campaign_id)).order_by(PushDelivery.id)).all()


def test_materialize_matches_dry_run_and_keeps_a_user_in_one_arm(client, create_campaign, marketer_headers,
                                                                 populate, run_jobs):
    populate(300, devices_per_user=2, zones=("Asia/Kathmandu", "Pacific/Chatham", "UTC"))
    campaign = create_campaign(variants=[{"key": "A", "weight": 1}, {"key": "B", "weight": 1}], holdout_percent=20,
                               schedule={"type": "at", "send_at": future(hours=2)})
    dry_run = _dry_run(client, marketer_headers, campaign["id"])
    preview = {row["variant"]: row["devices"] for row in dry_run["by_variant"]}
    assert client.post(f"/v1/campaigns/{campaign['id']}/launch", json={}, headers=marketer_headers).status_code == 200
    run_jobs(("push",))
    rows = _ledger(campaign["id"])
    assert len(rows) == 600
    by_variant: dict[str, int] = {}
    for row in rows:
        by_variant[row.variant] = by_variant.get(row.variant, 0) + 1
    assert by_variant == preview
    assert {row.status for row in rows if row.variant == "holdout"} == {"held_out"}
    assert {row.status for row in rows if row.variant != "holdout"} == {"pending"}
    arms_per_user = db.session.execute(text(
        "SELECT max(n) FROM (SELECT count(DISTINCT variant) n FROM push_deliveries "
        "WHERE campaign_id = :c GROUP BY user_id) s"), {"c": campaign["id"]}).scalar()
    assert arms_per_user == 1
    read = client.get(f"/v1/campaigns/{campaign['id']}", headers=marketer_headers).get_json()
    assert read["status"] == "running"


def test_materialize_twice_leaves_the_same_rows(client, create_campaign, marketer_headers, populate, run_jobs):
    populate(50, zones=("Europe/London", "Australia/Sydney"))
    campaign = create_campaign(schedule={"type": "local", "local_time": "10:00"})
    client.post(f"/v1/campaigns/{campaign['id']}/launch", json={}, headers=marketer_headers)
    run_jobs(("push",))
    before = _ledger(campaign["id"])
    populate(5, zones=("Europe/London",))  # registered after launch: the audience stays frozen
    assert materialize_campaign(campaign_id=campaign["id"]) == 0
    assert _ledger(campaign["id"]) == before and len(before) == 50
    dues = {row.due_at for row in before}
    assert len(dues) == 2  # one instant per zone


def test_materialize_records_opt_outs_as_suppressed(client, create_campaign, marketer_headers, populate, run_jobs):
    users = populate(4)
    db.session.add(NotificationPreference(user_id=users[0], category="promotional", enabled=False))
    db.session.commit()
    campaign = create_campaign(schedule={"type": "at", "send_at": future(hours=1)})
    client.post(f"/v1/campaigns/{campaign['id']}/launch", json={}, headers=marketer_headers)
    run_jobs(("push",))
    statuses = {row.user_id: row.status for row in _ledger(campaign["id"])}
    assert statuses[users[0]] == "suppressed"
    assert sorted(statuses.values()) == ["pending", "pending", "pending", "suppressed"]


def test_launch_with_empty_audience_completes(client, create_campaign, marketer_headers, run_jobs):
    campaign = create_campaign(audience={"type": "segment", "filters": {"time_zones": ["Asia/Kathmandu"]}})
    client.post(f"/v1/campaigns/{campaign['id']}/launch", json={}, headers=marketer_headers)
    run_jobs(("push",))
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=marketer_headers).get_json()["status"] == "completed"


def test_stream_audience_yields_every_device_in_batches(app, populate):
    populate(25)
    batches = list(stream_audience(db.session, {"type": "all"}, now=utcnow(), batch_size=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert db.session.scalar(select(func.count()).select_from(PushDelivery)) == 0


def test_materialize_run_concurrently_writes_each_device_once(committed_app):
    import threading

    from backend.auth.models import User
    from backend.notifications.campaigns.schemas import CampaignCreateSchema
    from backend.notifications.campaigns.services import create_campaign, launch_campaign
    from backend.notifications.models import Device
    from tests.campaigns.conftest import campaign_body

    with committed_app.app_context():
        users = [uuid.uuid4() for _ in range(200)]
        db.session.execute(insert(User), [{"id": u, "email": f"conc-{u}@example.test"} for u in users])
        db.session.execute(insert(Device), [
            {"id": uuid.uuid4(), "user_id": u, "installation_id": f"conc-{i}", "token": f"conc-tok-{i}",
             "platform": "ios", "time_zone": ZONES[i % len(ZONES)]} for i, u in enumerate(users)])
        db.session.commit()
        data = CampaignCreateSchema().load(campaign_body(schedule={"type": "at", "send_at": future(hours=1)}))
        campaign = create_campaign(db.session, data=data, created_by=None)
        launch_campaign(db.session, campaign_id=campaign.id)
        campaign_id = str(campaign.id)
        db.session.remove()
    barrier, added, errors = threading.Barrier(4), [], []

    def run() -> None:
        with committed_app.app_context():
            try:
                barrier.wait()
                added.append(materialize_campaign(campaign_id=campaign_id))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(added) == [0, 0, 0, 200]
    with committed_app.app_context():
        counts = db.session.execute(text(
            "SELECT count(*), count(DISTINCT device_id) FROM push_deliveries WHERE campaign_id = :c"),
            {"c": campaign_id}).one()
        db.session.remove()
    assert tuple(counts) == (200, 200)
