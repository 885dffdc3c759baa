"""Transactional sends over HTTP (server key or staff), then the recipient's inbox."""
from __future__ import annotations

from sqlalchemy import func, select

from backend.extensions import db
from backend.notifications.models import Notification
from tests.notifications.conftest import SERVER_KEY

KEY = {"X-API-Key": SERVER_KEY}


def register(client, headers, installation: str, token: str, **extra):
    body = {"token": token, "platform": "android", "time_zone": "UTC", **extra}
    response = client.put(f"/v1/notifications/devices/{installation}", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()


def send(client, headers=KEY, **body):
    return client.post("/v1/notifications/send", json=body, headers=headers)


def test_send_with_server_key_pushes_and_fills_inbox(client, make_user, auth_headers, run_jobs, fake_fcm):
    user = make_user()
    headers = auth_headers(user)
    register(client, headers, "phone-0001", "phone-token")
    response = send(client, user_id=str(user.id), title="Welcome", body="Glad you are here",
                    data={"screen": "home"}, deep_link="myapp://home", priority="normal", ttl_seconds=0)
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert answer["status"] == "queued" and answer["queued"] == 1
    run_jobs(("push",))
    [received] = fake_fcm.messages()
    assert received["token"] == "phone-token"
    # Without a collapse key of its own, the entry's id is the collapse identity on every platform.
    identity = answer["notification_ids"][0].replace("-", "")
    assert received["message"]["android"] == {"priority": "NORMAL", "ttl": "0s", "collapse_key": identity,
                                              "notification": {"tag": identity}}
    assert received["message"]["apns"]["headers"]["apns-expiration"] == "0"
    assert received["message"]["apns"]["headers"]["apns-collapse-id"] == identity
    assert received["message"]["data"]["notification_id"] == answer["notification_ids"][0]
    inbox = client.get("/v1/notifications/inbox", headers=headers).get_json()["items"]
    assert [(n["id"], n["title"], n["read_at"]) for n in inbox] == [(answer["notification_ids"][0], "Welcome", None)]


def test_send_access_server_key_or_marketer_only(client, make_user, auth_headers):
    target = make_user()
    assert send(client, headers={"X-API-Key": "wrong"}, user_id=str(target.id), title="x").status_code == 401
    assert send(client, headers={}, user_id=str(target.id), title="x").status_code == 401
    assert send(client, headers=auth_headers(make_user()), user_id=str(target.id), title="x").status_code == 403
    marketer = auth_headers(make_user(role="marketer"))
    assert send(client, headers=marketer, user_id=str(target.id), title="x").status_code == 202


def test_send_idempotency_key_replays_without_a_second_push(client, make_user, auth_headers, run_jobs, fake_fcm):
    user = make_user()
    register(client, auth_headers(user), "phone-0002", "idem-token")
    headers = {**KEY, "Idempotency-Key": "order-7-shipped"}
    first = send(client, headers=headers, user_id=str(user.id), title="Shipped")
    second = send(client, headers=headers, user_id=str(user.id), title="Shipped")
    assert first.status_code == second.status_code == 202
    assert second.headers["Idempotent-Replayed"] == "true" and first.get_json() == second.get_json()
    run_jobs(("push",))
    assert len(fake_fcm.messages()) == 1
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 1


def test_send_to_disabled_category_is_answered_suppressed(client, make_user, auth_headers, run_jobs, fake_fcm):
    user = make_user()
    headers = auth_headers(user)
    register(client, headers, "phone-0003", "promo-token")
    client.put("/v1/notifications/preferences", headers=headers, json={"categories": {"promotional": False}})
    answer = send(client, user_id=str(user.id), category="promotional", title="50% off").get_json()
    assert answer["status"] == "suppressed" and answer["suppressed"] == 1
    run_jobs(("push",))
    assert fake_fcm.messages() == []
    assert client.get("/v1/notifications/inbox", headers=headers).get_json()["items"] == []


def test_send_to_topic_over_http(client, make_user, auth_headers, run_jobs, fake_fcm):
    fan = make_user()
    headers = auth_headers(fan)
    register(client, headers, "phone-0004", "fan-token")
    client.put("/v1/notifications/topics/match.42", headers=headers)
    answer = send(client, topic="match.42", category="social", title="Kick-off").get_json()
    assert (answer["recipients"], answer["queued"]) == (1, 1)
    run_jobs(("push",))
    assert [m["token"] for m in fake_fcm.messages()] == ["fan-token"]


def test_silent_data_only_push(client, make_user, auth_headers, run_jobs, fake_fcm):
    user = make_user()
    register(client, auth_headers(user), "phone-0005", "silent-token", platform="ios")
    assert send(client, user_id=str(user.id), silent=True, data={"sync": "messages"}).status_code == 202
    run_jobs(("push",))
    message = fake_fcm.messages()[0]["message"]
    assert "notification" not in message and message["data"]["sync"] == "messages"
    assert message["apns"]["payload"]["aps"] == {"content-available": 1}


def test_send_bad_input_is_422_or_404(client, make_user):
    user_id = str(make_user().id)
    for body in ({"title": "no target"},
                 {"user_id": user_id, "topic": "both", "title": "x"},
                 {"user_id": user_id},
                 {"user_id": user_id, "title": "x", "data": {"n": 5}},
                 {"user_id": user_id, "title": "x", "data": {"google.x": "1"}},
                 {"user_id": user_id, "title": "x", "image_url": "http://insecure.example/i.png"},
                 {"user_id": user_id, "title": "x", "ttl_seconds": -1},
                 {"user_id": user_id, "title": "x", "category": "spam"},
                 {"user_id": user_id, "silent": True},
                 {"topic": "Bad Topic", "title": "x"}):
        assert send(client, **body).status_code == 422, body
    missing = send(client, user_id="00000000-0000-4000-8000-000000000000", title="x")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "user_not_found"


def _deliver(client, user, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ids.append(send(client, user_id=str(user.id), title=f"n{i}").get_json()["notification_ids"][0])
    return ids


def test_inbox_pages_newest_first_and_filters_unread(client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    ids = _deliver(client, user, 5)
    _deliver(client, make_user(), 2)  # someone else's
    seen, url = [], "/v1/notifications/inbox?limit=2"
    while url:
        body = client.get(url, headers=headers).get_json()
        seen += [item["id"] for item in body["items"]]
        url = body["next"] and body["next"].replace("http://localhost", "")
    assert seen == list(reversed(ids))
    assert client.post(f"/v1/notifications/{ids[0]}/read", headers=headers).get_json()["read_at"]
    unread = client.get("/v1/notifications/inbox?unread=true", headers=headers).get_json()["items"]
    assert [item["id"] for item in unread] == list(reversed(ids[1:]))
    assert client.get("/v1/notifications/inbox/unread-count", headers=headers).get_json() == {"unread": 4}
    assert client.post("/v1/notifications/inbox/read-all", headers=headers).get_json() == {"marked": 4}
    assert client.get("/v1/notifications/inbox/unread-count", headers=headers).get_json() == {"unread": 0}


def test_opened_report_is_idempotent_and_marks_read(client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    [nid] = _deliver(client, user, 1)
    first = client.post(f"/v1/notifications/{nid}/opened", headers=headers).get_json()
    again = client.post(f"/v1/notifications/{nid}/opened", headers=headers).get_json()
    assert first["opened_at"] and again["opened_at"] == first["opened_at"]
    assert first["read_at"] == first["opened_at"]


def test_inbox_entries_of_others_are_404(client, make_user, auth_headers):
    owner, intruder = make_user(), make_user()
    [nid] = _deliver(client, owner, 1)
    headers = auth_headers(intruder)
    assert client.post(f"/v1/notifications/{nid}/read", headers=headers).status_code == 404
    assert client.post(f"/v1/notifications/{nid}/opened", headers=headers).status_code == 404
    row = db.session.get(Notification, __import__("uuid").UUID(nid))
    assert row.read_at is None and row.opened_at is None
