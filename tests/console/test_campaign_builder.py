"""The campaign builder: draft → estimate → preview → test send → local-time schedule → launch → stats."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from backend.audit.models import AuditEntry
from backend.extensions import db
from backend.notifications.campaigns.models import Campaign
from backend.notifications.models import Device, PushOutbox
from tests.console.conftest import csrf_of

ZONES = ("Asia/Kathmandu", "America/New_York", "Europe/Paris")


def _draft_form(token: str, **extra: str) -> dict[str, str]:
    return {"csrf_token": token, "name": "Spring sale", "category": "promotional", "default_locale": "en",
            "locale_0": "en", "title_0": "Hi {{ first_name | default('there') }}", "body_0": "Sale today",
            "locale_1": "fr", "title_1": "Salut {{ first_name | default('toi') }}", "body_1": "Soldes",
            "deep_link": "myapp://sale", "audience_type": "segment", "platforms": "android",
            "variant_key_0": "A", "variant_weight_0": "1", "variant_key_1": "B", "variant_weight_1": "1",
            "variant_title_1": "Last chance, {{ first_name | default('friend') }}", **extra}


def _create(http) -> Campaign:
    answer = http.post("/admin/campaigns/new", data=_draft_form(csrf_of(http, "/admin/campaigns/new")))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return db.session.get(Campaign, uuid.UUID(answer.headers["Location"].rstrip("/").split("/")[-1]))


def test_builder_draft_preview_schedule_local_launch_and_stats(staff_client, populate):
    populate(6, zones=ZONES, locales=("en", "fr"), first_name="Kim")
    marketer = staff_client("marketer")
    campaign = _create(marketer)
    detail = marketer.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    assert "6 devices, 6 users" in detail
    assert "Hi Alex" in detail and "Salut Alex" in detail and "Last chance, Alex" in detail  # rendered per variant
    token = csrf_of(marketer, f"/admin/campaigns/{campaign.id}")
    saved = marketer.post(f"/admin/campaigns/{campaign.id}/schedule", data={
        "csrf_token": token, "schedule_type": "local", "local_time": "09:00", "fallback_zone": "UTC"})
    assert saved.status_code == 302
    detail = marketer.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    for zone in ZONES:
        assert zone in detail  # the per-zone dry run: each zone with its local and UTC due time
    assert " 09:00" in detail
    launched = marketer.post(f"/admin/campaigns/{campaign.id}/launch", data={"csrf_token": token})
    assert launched.status_code == 302
    assert db.session.get(Campaign, campaign.id).status == "scheduled"
    stats = marketer.get(f"/admin/campaigns/{campaign.id}/stats").get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in stats and 'http-equiv="refresh"' in stats
    actions = [e.action for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.object_id == str(campaign.id)).order_by(AuditEntry.id))]
    assert actions == ["campaign.create", "campaign.schedule", "campaign.launch"]
    launch = db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(campaign.id),
                                                         AuditEntry.action == "campaign.launch")).one()
    assert launch.before["status"] == "draft" and launch.after["status"] == "scheduled"
    assert launch.after["schedule"]["local_time"] == "09:00"


def test_builder_live_estimate_counts_the_segment(staff_client, populate):
    populate(3, zones=("Europe/Paris",), platforms=("ios",))
    populate(2, zones=("Asia/Tokyo",), platforms=("android",))
    marketer = staff_client("marketer")
    body = marketer.get("/admin/campaigns/estimate?audience_type=segment&platforms=ios"
                        "&filter_time_zones=Europe/Paris").get_json()
    assert body["devices"] == 3 and body["users"] == 3
    bad = marketer.get("/admin/campaigns/estimate?audience_type=segment&filter_time_zones=Mars/Base")
    assert bad.status_code == 400 and "IANA" in bad.get_json()["error"]


def test_builder_refuses_invalid_draft_with_messages_and_keeps_input(staff_client):
    marketer = staff_client("marketer")
    form = _draft_form(csrf_of(marketer, "/admin/campaigns/new"), locale_1="not a locale!!", name="Kept name")
    answer = marketer.post("/admin/campaigns/new", data=form)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "form-errors" in html and "Kept name" in html


def test_builder_test_send_reaches_staff_devices_only(staff_client, make_user, populate):
    populate(2)
    marketer = staff_client("marketer")
    tester = make_user(role="marketer", first_name="Tess")
    db.session.add(Device(user_id=tester.id, installation_id=f"staff-{uuid.uuid4().hex[:8]}", token="staff-token",
                          platform="ios", locale="en", time_zone="Europe/Paris"))
    db.session.commit()
    campaign = _create(marketer)
    token = csrf_of(marketer, f"/admin/campaigns/{campaign.id}")
    outsider = make_user()
    answer = marketer.post(f"/admin/campaigns/{campaign.id}/test-send", data={
        "csrf_token": token, "user_id": [str(tester.id), str(outsider.id)], "variant": "B"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "test-results" in html and "Last chance, Tess" in html
    # A test send goes through the delivery engine: its pushes are marked test, with the campaign's id.
    pushes = db.session.scalars(select(PushOutbox).where(
        PushOutbox.message["data"]["campaign_id"].astext == str(campaign.id),
        PushOutbox.message["data"]["test"].astext == "true")).all()
    assert [p.token for p in pushes] == ["staff-token"]


def test_analyst_reads_campaign_stats_but_cannot_launch(staff_client, populate):
    populate(1)
    campaign = _create(staff_client("marketer"))
    analyst = staff_client("analyst")
    assert analyst.get(f"/admin/campaigns/{campaign.id}/stats").status_code == 200
    token = csrf_of(analyst)
    assert analyst.post(f"/admin/campaigns/{campaign.id}/launch", data={"csrf_token": token}).status_code == 403
    assert db.session.get(Campaign, campaign.id).status == "draft"
