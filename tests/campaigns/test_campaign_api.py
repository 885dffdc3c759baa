"""Campaign CRUD, validation and roles, through HTTP with marketer tokens."""
from __future__ import annotations

import pytest

from tests.campaigns.conftest import campaign_body, future


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code, error
    return error


def test_create_campaign_as_marketer_returns_draft_with_default_variant(client, marketer, marketer_headers):
    response = client.post("/v1/campaigns", json=campaign_body(), headers=marketer_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "draft"
    assert body["created_by"] == str(marketer.id)
    assert body["variants"] == [{"key": "A", "weight": 1, "message_override": {}}]
    assert body["message"]["priority"] == "high"
    read = client.get(f"/v1/campaigns/{body['id']}", headers=marketer_headers)
    assert read.status_code == 200 and read.get_json()["name"] == "Spring sale"


def test_create_campaign_same_idempotency_key_creates_once(client, marketer_headers):
    headers = {**marketer_headers, "Idempotency-Key": "create-spring-sale-1"}
    first = client.post("/v1/campaigns", json=campaign_body(), headers=headers)
    second = client.post("/v1/campaigns", json=campaign_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] == second.get_json()["id"]
    listed = client.get("/v1/campaigns", headers=marketer_headers).get_json()["items"]
    assert [c["id"] for c in listed] == [first.get_json()["id"]]


def test_create_campaign_plain_user_gets_403(client, make_user, auth_headers):
    user = make_user(password=None)
    _error(client.post("/v1/campaigns", json=campaign_body(), headers=auth_headers(user)), 403, "forbidden_role")
    _error(client.get("/v1/campaigns", headers=auth_headers(user)), 403, "forbidden_role")


def test_create_campaign_without_token_gets_401(client):
    response = client.post("/v1/campaigns", json=campaign_body())
    assert response.status_code == 401


def test_campaign_of_another_marketer_is_visible_and_editable(client, create_campaign, make_user, auth_headers):
    campaign = create_campaign()
    colleague = auth_headers(make_user(role="marketer", password=None))
    listed = client.get("/v1/campaigns", headers=colleague).get_json()["items"]
    assert campaign["id"] in [c["id"] for c in listed]
    patched = client.patch(f"/v1/campaigns/{campaign['id']}", json={"name": "Renamed"}, headers=colleague)
    assert patched.status_code == 200 and patched.get_json()["name"] == "Renamed"


def test_analyst_reads_campaigns_and_stats_but_cannot_write(client, create_campaign, make_user, auth_headers):
    campaign = create_campaign()
    analyst = auth_headers(make_user(role="analyst", password=None))
    assert client.get(f"/v1/campaigns/{campaign['id']}", headers=analyst).status_code == 200
    assert client.get(f"/v1/campaigns/{campaign['id']}/stats", headers=analyst).status_code == 200
    _error(client.post(f"/v1/campaigns/{campaign['id']}/launch", json={}, headers=analyst), 403, "forbidden_role")
    _error(client.post("/v1/campaigns", json=campaign_body(), headers=analyst), 403, "forbidden_role")


def test_admin_passes_marketer_routes(client, make_user, auth_headers):
    admin = auth_headers(make_user(role="admin", password=None))
    assert client.post("/v1/campaigns", json=campaign_body(), headers=admin).status_code == 201


def test_list_campaigns_cursor_pages_cover_all_once(client, create_campaign, marketer_headers):
    ids = {create_campaign(name=f"c{i}")["id"] for i in range(5)}
    seen, url = [], "/v1/campaigns?limit=2"
    while url:
        page = client.get(url, headers=marketer_headers).get_json()
        seen += [c["id"] for c in page["items"]]
        url = page["next"] and page["next"].replace("http://localhost", "")
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_list_campaigns_filters_by_status(client, create_campaign, marketer_headers):
    draft = create_campaign()
    launched = create_campaign(schedule={"type": "at", "send_at": future(days=1)})
    client.post(f"/v1/campaigns/{launched['id']}/launch", json={}, headers=marketer_headers)
    items = client.get("/v1/campaigns?status=draft", headers=marketer_headers).get_json()["items"]
    assert [c["id"] for c in items] == [draft["id"]]


def test_get_unknown_campaign_returns_404(client, marketer_headers):
    _error(client.get("/v1/campaigns/00000000-0000-0000-0000-000000000000", headers=marketer_headers),
           404, "campaign_not_found")


@pytest.mark.parametrize(("change", "code"), [
    ({"schedule": {"type": "local", "local_time": "09:00", "fallback_zone": "Mars/Olympus_Mons"}},
     "invalid_time_zone"),
    ({"audience": {"type": "segment", "filters": {"time_zones": ["Europe/Atlantis"]}}}, "invalid_time_zone"),
    ({"audience": {"type": "segment", "filters": {"locales": ["en_US"]}}}, "invalid_locale"),
    ({"audience": {"type": "segment", "filters": {"app_version_min": "two"}}}, "invalid_app_version"),
    ({"audience": {"type": "topic"}}, "topic_required"),
    ({"audience": {"type": "topic", "topic": "Bad Topic!"}}, "invalid_topic_name"),
    ({"message": {"locales": {"english": {"title": "x", "body": "y"}}, "default_locale": "english"}},
     "invalid_locale"),
    ({"message": {"locales": {"fr": {"title": "x", "body": "y"}}}}, "default_locale_missing"),
    ({"message": {"locales": {"en": {"title": "x", "body": "y"}}, "data": {"google.x": "1"}}}, "reserved_data_key"),
    ({"message": {"locales": {"en": {"title": "x", "body": "y"}}, "data": {"n": 1}}}, "validation_failed"),
    ({"message": {"locales": {"en": {"title": "x", "body": "y" * 3000}, "fr": {"title": "x", "body": "z" * 3000}},
                  "data": {"blob": "b" * 2000}}}, "payload_too_large"),
    ({"message": {"locales": {"en": {"title": "{{ ''.__class__ }}", "body": "y"}}}}, "template_not_allowed"),
    ({"message": {"locales": {"en": {"title": "{{ first_name", "body": "y"}}}}, "template_invalid"),
    ({"variants": [{"key": "A", "weight": 0}]}, "validation_failed"),
    ({"variants": [{"key": "A", "weight": 1}, {"key": "A", "weight": 2}]}, "duplicate_variant"),
    ({"holdout_percent": 51}, "validation_failed"),
    ({"holdout_percent": -1}, "validation_failed"),
    ({"throttle_per_minute": 0}, "validation_failed"),
    ({"schedule": {"type": "at"}}, "send_at_required"),
    ({"schedule": {"type": "local", "local_time": "25:00"}}, "validation_failed"),
    ({"schedule": {"type": "at", "send_at": future(days=2)}, "expires_at": future(days=1)}, "expiry_before_send"),
    ({"message": {"locales": {"en": {"title": "x", "body": "y"}}, "image_url": "http://insecure.example/a.png"}},
     "validation_failed"),
])
def test_create_campaign_invalid_fields_return_422_with_stable_code(client, marketer_headers, change, code):
    response = client.post("/v1/campaigns", json=campaign_body(**change), headers=marketer_headers)
    _error(response, 422, code)


@pytest.mark.parametrize("body", [[], "text", {"name": None}, {"name": "x", "message": "nope"}])
def test_create_campaign_malformed_body_is_4xx_not_500(client, marketer_headers, body):
    response = client.post("/v1/campaigns", json=body, headers=marketer_headers)
    assert 400 <= response.status_code < 500


def test_patch_running_campaign_returns_409(client, create_campaign, marketer_headers, populate, run_jobs):
    populate(3)
    campaign = create_campaign()
    client.post(f"/v1/campaigns/{campaign['id']}/launch", json={}, headers=marketer_headers)
    run_jobs(("push",))
    _error(client.patch(f"/v1/campaigns/{campaign['id']}", json={"name": "late"}, headers=marketer_headers),
           409, "campaign_not_editable")


def test_patch_validates_merged_campaign(client, create_campaign, marketer_headers):
    campaign = create_campaign()
    response = client.patch(f"/v1/campaigns/{campaign['id']}", json={"expires_at": "2000-01-01T00:00:00+00:00"},
                            headers=marketer_headers)
    _error(response, 422, "expiry_before_send")
