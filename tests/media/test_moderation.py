"""Reports and the moderation queue: one case per target, oldest first, decisions that take effect at once."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from backend.audit.models import AuditEntry
from backend.auth.models import User
from backend.extensions import db
from backend.media.policies import load_policies
from backend.media.storage import get_storage
from tests.media.samples import jpeg


@pytest.fixture
def people(make_user, auth_headers):
    """Headers of a second and third user and of a moderator (with the moderator's id)."""
    moderator = make_user(role="moderator")
    return {"bob": auth_headers(make_user()), "carol": auth_headers(make_user()),
            "mod": auth_headers(moderator), "mod_id": str(moderator.id)}


@pytest.fixture
def shared_photo(client, headers, upload, run_media_jobs):
    done = upload(jpeg(800, 600))
    run_media_jobs()
    assert client.patch(f"/v1/media/{done['id']}", headers=headers, json={"visibility": "users"}).status_code == 200
    return done["id"]


def _report(client, who, media_id, reason="spam", note=None):
    return client.post(f"/v1/media/{media_id}/reports", headers=who, json={"reason": reason, "note": note})


def _only_case(client, people):
    cases = client.get("/v1/moderation/cases", headers=people["mod"]).get_json()["items"]
    assert len(cases) == 1, cases
    return cases[0]


def test_reports_of_one_target_gather_in_one_case_counting_each_reporter_once(client, people, shared_photo):
    first = _report(client, people["bob"], shared_photo, note="bot account selling things")
    assert first.status_code == 201 and set(first.get_json()) == {"id", "reason", "note", "created_at"}
    assert _report(client, people["bob"], shared_photo).get_json()["id"] == first.get_json()["id"]
    assert _report(client, people["carol"], shared_photo, reason="nudity").status_code == 201
    case = _only_case(client, people)
    assert case["target_type"] == "media" and case["target_id"] == shared_photo and case["report_count"] == 2
    detail = client.get(f"/v1/moderation/cases/{case['id']}", headers=people["mod"]).get_json()
    assert [r["reason"] for r in detail["reports"]] == ["spam", "nudity"]
    assert detail["target"]["moderation"] == "none" and set(detail["target"]["preview_urls"]) == {
        "thumb_320", "display_1080"}


def test_private_media_of_someone_else_cannot_be_reported(client, headers, upload, people):
    done = upload(jpeg())
    assert _report(client, people["bob"], done["id"]).status_code == 404
    assert _report(client, people["bob"], str(uuid.uuid4())).status_code == 404


def test_users_report_users_but_not_themselves(client, user, headers, people):
    answer = client.post(f"/v1/users/{user.id}/reports", headers=people["bob"], json={"reason": "harassment"})
    assert answer.status_code == 201
    assert client.post(f"/v1/users/{user.id}/reports", headers=headers,
                       json={"reason": "spam"}).get_json()["error"]["code"] == "cannot_report_self"
    assert client.post(f"/v1/users/{uuid.uuid4()}/reports", headers=headers, json={"reason": "spam"}).status_code == 404
    case = _only_case(client, people)
    assert case["target_type"] == "user" and case["subject_user_id"] == str(user.id)


def test_remove_stops_serving_at_once_and_restore_makes_it_again(app, client, headers, people, shared_photo,
                                                                 run_media_jobs):
    _report(client, people["bob"], shared_photo)
    case = _only_case(client, people)
    url = client.get(f"/v1/media/{shared_photo}/delivery", headers=people["bob"]).get_json()["variants"]
    decided = client.post(f"/v1/moderation/cases/{case['id']}/decision", headers=people["mod"],
                          json={"decision": "remove", "note": "spam ring"})
    assert decided.status_code == 200
    assert decided.get_json()["status"] == "closed" and decided.get_json()["decided_by"] == people["mod_id"]
    store = get_storage(app)
    assert store.head(f"media/{shared_photo}/thumb_320.webp") is None  # earlier URLs now find nothing
    assert url["thumb_320"]["url"]
    assert client.get(f"/v1/media/{shared_photo}/delivery", headers=people["bob"]).status_code == 404
    mine = client.get(f"/v1/media/{shared_photo}", headers=headers).get_json()
    assert mine["removed"] is True and mine["delivery"] is None
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == case["id"])).all()
    assert [(a.action, a.note) for a in audit] == [("moderation.remove", "spam ring")]
    restored = client.post(f"/v1/moderation/cases/{case['id']}/decision", headers=people["mod"],
                           json={"decision": "restore"})
    assert restored.status_code == 200
    run_media_jobs()
    again = client.get(f"/v1/media/{shared_photo}/delivery", headers=people["bob"])
    assert again.status_code == 200 and set(again.get_json()["variants"]) == {"thumb_320", "display_1080"}
    assert store.head(f"media/{shared_photo}/thumb_320.webp") is not None


def test_quarantined_upload_waits_in_the_queue_until_dismissed(app, client, headers, upload, run_media_jobs,
                                                                people, monkeypatch):
    monkeypatch.setitem(app.config, "MEDIA_POLICIES", load_policies('{"photo": {"quarantine": true}}'))
    done = upload(jpeg())
    run_media_jobs()
    case = _only_case(client, people)
    detail = client.get(f"/v1/moderation/cases/{case['id']}", headers=people["mod"]).get_json()
    assert [a["action"] for a in detail["actions"]] == ["quarantine"]
    assert detail["target"]["moderation"] == "quarantined"
    assert client.get(f"/v1/media/{done['id']}", headers=headers).get_json()["delivery"] is None
    client.post(f"/v1/moderation/cases/{case['id']}/notes", headers=people["mod"], json={"note": "looks fine"})
    assert client.post(f"/v1/moderation/cases/{case['id']}/decision", headers=people["mod"],
                       json={"decision": "dismiss"}).status_code == 200
    served = client.get(f"/v1/media/{done['id']}", headers=headers).get_json()
    assert served["quarantined"] is False and set(served["delivery"]["variants"]) == {"thumb_320", "display_1080"}
    actions = client.get(f"/v1/moderation/cases/{case['id']}", headers=people["mod"]).get_json()["actions"]
    assert [(a["action"], a["note"], a["actor_id"]) for a in actions] == [
        ("quarantine", "held for review by policy", None), ("note", "looks fine", people["mod_id"]),
        ("dismiss", None, people["mod_id"])]
    assert client.get("/v1/moderation/cases", headers=people["mod"]).get_json()["items"] == []


def test_ban_suspends_the_account_and_removes_the_media(client, user, headers, people, shared_photo):
    _report(client, people["bob"], shared_photo)
    case = _only_case(client, people)
    assert client.post(f"/v1/moderation/cases/{case['id']}/decision", headers=people["mod"],
                       json={"decision": "ban"}).status_code == 200
    db.session.expire_all()
    assert db.session.get(User, user.id).status == "suspended"
    assert client.get("/v1/media", headers=headers).status_code == 401  # sessions ended
    assert client.get(f"/v1/media/{shared_photo}/delivery", headers=people["bob"]).status_code == 404


def test_queue_is_oldest_first_and_staff_only(client, people, shared_photo, user, headers):
    _report(client, people["bob"], shared_photo)
    client.post(f"/v1/users/{user.id}/reports", headers=people["carol"], json={"reason": "spam"})
    cases = client.get("/v1/moderation/cases", headers=people["mod"]).get_json()["items"]
    assert [c["target_type"] for c in cases] == ["media", "user"]
    assert client.get("/v1/moderation/cases", headers=people["bob"]).status_code == 403
    assert client.post(f"/v1/moderation/cases/{cases[0]['id']}/decision", headers=headers,
                       json={"decision": "dismiss"}).status_code == 403
    user_case = cases[1]["id"]
    wrong = client.post(f"/v1/moderation/cases/{user_case}/decision", headers=people["mod"],
                        json={"decision": "remove"})
    assert wrong.status_code == 422 and wrong.get_json()["error"]["code"] == "decision_not_applicable"
