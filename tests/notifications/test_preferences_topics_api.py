"""Preferences, quiet hours and topics over HTTP."""
from __future__ import annotations


def test_preferences_default_all_on(client, make_user, auth_headers):
    body = client.get("/v1/notifications/preferences", headers=auth_headers(make_user())).get_json()
    assert body == {"categories": {"transactional": True, "social": True, "promotional": True,
                                   "re_engagement": True}, "quiet_hours": None}


def test_preferences_put_switches_categories_and_sets_wrapping_quiet_hours(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    response = client.put("/v1/notifications/preferences", headers=headers, json={
        "categories": {"promotional": False, "re_engagement": False},
        "quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Asia/Kolkata"}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["categories"]["promotional"] is False
    assert response.get_json()["quiet_hours"] == {"start": "22:00", "end": "07:00", "time_zone": "Asia/Kolkata"}
    # Omitting quiet_hours keeps them; categories merge.
    again = client.put("/v1/notifications/preferences", headers=headers, json={"categories": {"promotional": True}})
    assert again.get_json()["categories"] == {"transactional": True, "social": True, "promotional": True,
                                              "re_engagement": False}
    assert again.get_json()["quiet_hours"]["start"] == "22:00"
    cleared = client.put("/v1/notifications/preferences", headers=headers, json={"quiet_hours": None})
    assert cleared.get_json()["quiet_hours"] is None


def test_preferences_transactional_cannot_be_disabled(client, make_user, auth_headers):
    response = client.put("/v1/notifications/preferences", headers=auth_headers(make_user()),
                          json={"categories": {"transactional": False}})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "category_mandatory"


def test_preferences_bad_input_is_422(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    for body in ({"categories": {"spam": False}},
                 {"quiet_hours": {"start": "25:00", "end": "07:00"}},
                 {"quiet_hours": {"start": "22:00", "end": "22:00"}},
                 {"quiet_hours": {"start": "22:00", "end": None}},
                 {"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Nowhere/Land"}}):
        response = client.put("/v1/notifications/preferences", headers=headers, json=body)
        assert response.status_code == 422, body


def test_topics_subscribe_list_unsubscribe(client, make_user, auth_headers):
    alice, bob = make_user(), make_user()
    headers = auth_headers(alice)
    assert client.put("/v1/notifications/topics/news.world", headers=headers).status_code == 204
    assert client.put("/v1/notifications/topics/news.world", headers=headers).status_code == 204  # idempotent
    assert client.put("/v1/notifications/topics/sports", headers=headers).status_code == 204
    client.put("/v1/notifications/topics/cooking", headers=auth_headers(bob))
    listed = client.get("/v1/notifications/topics?limit=1", headers=headers).get_json()
    names = [t["name"] for t in listed["items"]]
    second = client.get("/v1/notifications/topics?limit=1&cursor=" + listed["next_cursor"], headers=headers)
    names += [t["name"] for t in second.get_json()["items"]]
    assert sorted(names) == ["news.world", "sports"]
    assert client.delete("/v1/notifications/topics/sports", headers=headers).status_code == 204
    assert client.delete("/v1/notifications/topics/sports", headers=headers).status_code == 404
    assert [t["name"] for t in client.get("/v1/notifications/topics", headers=headers).get_json()["items"]] == [
        "news.world"]


def test_topics_invalid_names_are_422(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    for name in ("UPPER", "-leading", "a" * 65, "spa ce", "semi;colon"):
        response = client.put(f"/v1/notifications/topics/{name}", headers=headers)
        assert response.status_code == 422, name
        assert response.get_json()["error"]["code"] == "invalid_topic_name"


def test_preferences_put_without_body_is_422(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    assert client.put("/v1/notifications/preferences", headers=headers).status_code == 422
    assert client.put("/v1/notifications/preferences", headers=headers, json={}).status_code == 422
