"""Launch, pause/resume/cancel, test sends, and stats with the A/B verdict."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, insert, select, update

from backend.auth.models import User
from backend.common.db import utcnow
from backend.extensions import db
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.models import Device, Notification, PushOutbox
from tests.campaigns.conftest import future


def _launch(client, headers, campaign_id: str, **body):
    return client.post(f"/v1/campaigns/{campaign_id}/launch", json=body, headers=headers)


def _statuses(campaign_id: str) -> dict[str, int]:
    rows = db.session.execute(
        select(PushDelivery.status, func.count()).where(PushDelivery.campaign_id == uuid.UUID(campaign_id))
        .group_by(PushDelivery.status)).all()
    return dict(rows)


def test_launch_twice_second_gets_409(client, create_campaign, marketer_headers):
    campaign = create_campaign(schedule={"type": "at", "send_at": future(hours=1)})
    first = _launch(client, marketer_headers, campaign["id"])
    assert first.status_code == 200 and first.get_json()["status"] == "scheduled"
    assert first.get_json()["launched_at"]
    second = _launch(client, marketer_headers, campaign["id"])
    assert second.status_code == 409
    assert second.get_json()["error"]["code"] == "campaign_already_launched"


def test_launch_at_past_instant_is_refused(client, create_campaign, marketer_headers):
    campaign = create_campaign()
    response = _launch(client, marketer_headers, campaign["id"],
                       schedule={"type": "at", "send_at": future(minutes=-5)})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "schedule_in_past"
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=marketer_headers).get_json()["status"] == "draft"


def test_launch_at_instant_within_grace_minute_is_accepted(client, create_campaign, marketer_headers):
    campaign = create_campaign()
    response = _launch(client, marketer_headers, campaign["id"],
                       schedule={"type": "at", "send_at": future(seconds=-30)})
    assert response.status_code == 200
    assert response.get_json()["schedule"]["type"] == "at"


def test_launch_local_date_passed_everywhere_is_refused(client, create_campaign, marketer_headers):
    campaign = create_campaign()
    yesterday = (utcnow() - timedelta(days=2)).date().isoformat()
    response = _launch(client, marketer_headers, campaign["id"],
                       schedule={"type": "local", "local_time": "09:00", "date": yesterday})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "schedule_in_past"


def test_scheduled_campaign_edit_before_first_send_rebuilds_ledger(client, create_campaign, marketer_headers,
                                                                   populate, run_jobs):
    populate(6, platforms=("ios", "android"))
    campaign = create_campaign(schedule={"type": "at", "send_at": future(hours=3)})
    _launch(client, marketer_headers, campaign["id"])
    run_jobs(("push",))
    assert _statuses(campaign["id"]) == {"pending": 6}
    patched = client.patch(f"/v1/campaigns/{campaign['id']}",
                           json={"audience": {"type": "segment", "filters": {"platforms": ["ios"]}}},
                           headers=marketer_headers)
    assert patched.status_code == 200, patched.get_json()
    run_jobs(("push",))
    assert _statuses(campaign["id"]) == {"pending": 3}


def test_pause_resume_and_cancel_marks_waiting_deliveries_cancelled(client, create_campaign, marketer_headers,
                                                                    populate, run_jobs):
    populate(10)
    campaign = create_campaign(schedule={"type": "at", "send_at": future(hours=1)}, holdout_percent=50)
    _launch(client, marketer_headers, campaign["id"])
    run_jobs(("push",))
    base = f"/v1/campaigns/{campaign['id']}"
    paused = client.post(f"{base}/pause", headers=marketer_headers)
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    assert paused.get_json()["paused_reason"]
    assert client.post(f"{base}/pause", headers=marketer_headers).status_code == 409
    resumed = client.post(f"{base}/resume", headers=marketer_headers)
    assert resumed.status_code == 200 and resumed.get_json()["status"] == "running"
    assert client.post(f"{base}/resume", headers=marketer_headers).status_code == 409
    before = _statuses(campaign["id"])
    cancelled = client.post(f"{base}/cancel", headers=marketer_headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    after = _statuses(campaign["id"])
    assert after.get("pending", 0) == 0
    assert after["cancelled"] == before["pending"]
    assert after.get("held_out", 0) == before.get("held_out", 0)
    again = client.post(f"{base}/cancel", headers=marketer_headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "campaign_ended"


def test_draft_cannot_be_paused(client, create_campaign, marketer_headers):
    campaign = create_campaign()
    response = client.post(f"/v1/campaigns/{campaign['id']}/pause", headers=marketer_headers)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "campaign_not_pausable"


def test_test_send_renders_per_user_and_stays_out_of_stats(client, create_campaign, marketer_headers, populate):
    (zoe,) = populate(1, locales=("fr-CA",), first_name="Zoé", devices_per_user=2)
    (anon,) = populate(1, locales=("en-US",))
    nobody = uuid.uuid4()
    campaign = create_campaign()
    response = client.post(f"/v1/campaigns/{campaign['id']}/test-send",
                           json={"user_ids": [str(zoe), str(anon), str(nobody)]}, headers=marketer_headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    titles = sorted((r["user_id"], r["title"]) for r in body["results"])
    assert titles == sorted([(str(zoe), "Bonjour Zoé"), (str(zoe), "Bonjour Zoé"), (str(anon), "Hi there")])
    assert {r["outcome"] for r in body["results"]} == {"sent"}
    assert body["users_without_devices"] == [str(nobody)]
    outbox = db.session.scalars(select(PushOutbox)).all()
    assert len(outbox) == 3
    assert all('"test": "true"' in str(row.message).replace("'", '"') for row in outbox)
    # Through the one engine: a transactional ledger row per device, sent; none in the campaign's ledger.
    tested = db.session.scalars(select(PushDelivery).where(PushDelivery.user_id.in_((zoe, anon)))).all()
    assert sorted((r.status, r.campaign_id) for r in tested) == [("sent", None)] * 3
    stats = client.get(f"/v1/campaigns/{campaign['id']}/stats", headers=marketer_headers).get_json()
    assert stats["totals"]["audience"] == 0 and stats["totals"]["sent"] == 0


def test_test_send_unknown_variant_is_422(client, create_campaign, marketer_headers, populate):
    (user,) = populate(1)
    campaign = create_campaign()
    response = client.post(f"/v1/campaigns/{campaign['id']}/test-send",
                           json={"user_ids": [str(user)], "variant": "Z"}, headers=marketer_headers)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "variant_not_found"


def _simulate_outcomes(campaign_id: str) -> None:
    """Stand in for the delivery engine: mark rows sent/failed/deferred and record inbox opens."""
    cid = uuid.UUID(campaign_id)
    rows = db.session.execute(
        select(PushDelivery.id, PushDelivery.user_id, PushDelivery.variant)
        .where(PushDelivery.campaign_id == cid, PushDelivery.status == "pending")
        .order_by(PushDelivery.id)).all()
    now = utcnow()
    failed = {rows[0].id: "UNREGISTERED", rows[1].id: "UNREGISTERED", rows[2].id: "INVALID_ARGUMENT"}
    deferred = {rows[3].id}
    opened_share = {"A": 0.1, "B": 0.5}
    entries, counters = [], {"A": 0, "B": 0}
    for row in rows:
        if row.id in failed:
            values = {"status": "failed", "error_code": failed[row.id]}
        elif row.id in deferred:
            values = {"status": "deferred"}
        else:
            values = {"status": "sent", "sent_at": now}
            counters[row.variant] += 1
            opened = counters[row.variant] % 10 < opened_share[row.variant] * 10
            entries.append({"id": uuid.uuid4(), "user_id": row.user_id, "category": "promotional", "title": "t",
                            "campaign_id": cid, "variant": row.variant, "opened_at": now if opened else None})
        db.session.execute(update(PushDelivery).where(PushDelivery.id == row.id).values(**values))
    db.session.execute(insert(Notification), entries)
    db.session.commit()


def test_stats_count_by_status_variant_zone_and_name_a_winner(client, create_campaign, marketer_headers, populate,
                                                              run_jobs, make_user, auth_headers):
    populate(400, zones=("Asia/Kolkata", "Europe/London"))
    campaign = create_campaign(variants=[{"key": "A", "weight": 1}, {"key": "B", "weight": 1}], holdout_percent=10,
                               schedule={"type": "at", "send_at": future(hours=1)})
    _launch(client, marketer_headers, campaign["id"])
    run_jobs(("push",))
    _simulate_outcomes(campaign["id"])
    analyst = auth_headers(make_user(role="analyst", password=None))
    response = client.get(f"/v1/campaigns/{campaign['id']}/stats", headers=analyst)
    assert response.status_code == 200, response.get_json()
    stats = response.get_json()
    totals = stats["totals"]
    assert totals["audience"] == 400
    assert totals["targeted"] == 400 - totals["held_out"]
    assert totals["failed"] == 3 and totals["deferred"] == 1
    assert totals["sent"] == totals["targeted"] - 4
    assert stats["failed_by_reason"] == {"INVALID_ARGUMENT": 1, "UNREGISTERED": 2}
    variants = {v["variant"]: v for v in stats["by_variant"]}
    assert set(variants) == {"A", "B", "holdout"}
    assert variants["holdout"]["held_out"] == totals["held_out"] > 0
    assert 0.05 < variants["A"]["open_rate"] < 0.15 and 0.45 < variants["B"]["open_rate"] < 0.55
    zones = {z["time_zone"]: z for z in stats["by_time_zone"]}
    assert set(zones) == {"Asia/Kolkata", "Europe/London"}
    assert sum(z["sent"] for z in zones.values()) == totals["sent"]
    assert sum(z["opened"] for z in zones.values()) == totals["opened"]
    verdict = stats["ab_test"]
    assert verdict["winner"] == "B" and verdict["p_value"] < 0.001


def test_stats_without_significant_difference_names_no_winner(client, create_campaign, marketer_headers, populate,
                                                              run_jobs):
    populate(40)
    campaign = create_campaign(variants=[{"key": "A", "weight": 1}, {"key": "B", "weight": 1}],
                               schedule={"type": "at", "send_at": future(hours=1)})
    _launch(client, marketer_headers, campaign["id"])
    run_jobs(("push",))
    cid = uuid.UUID(campaign["id"])
    db.session.execute(update(PushDelivery).where(PushDelivery.campaign_id == cid).values(status="sent"))
    db.session.commit()
    stats = client.get(f"/v1/campaigns/{campaign['id']}/stats", headers=marketer_headers).get_json()
    assert stats["ab_test"]["winner"] is None and stats["ab_test"]["p_value"] == 1.0


def test_launch_now_materializes_due_immediately(client, create_campaign, marketer_headers, populate, run_jobs):
    populate(3)
    campaign = create_campaign()
    before = utcnow()
    _launch(client, marketer_headers, campaign["id"])
    run_jobs(("push",))
    dues = db.session.scalars(select(PushDelivery.due_at).where(
        PushDelivery.campaign_id == uuid.UUID(campaign["id"]))).all()
    assert len(dues) == 3 and all(before - timedelta(seconds=5) <= d <= utcnow() for d in dues)
    assert db.session.scalar(select(func.count()).select_from(Device)) == 3
    assert db.session.scalar(select(func.count()).select_from(User)) >= 3
