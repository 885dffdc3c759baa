"""The moderation queue in the console: reports oldest first, the content shown safely, decisions audited."""
from __future__ import annotations

import re
import uuid

import pytest
from flask import Flask
from sqlalchemy import select

from backend.app import create_app
from backend.audit.models import AuditEntry
from backend.extensions import db
from backend.media.models import Media
from backend.media.moderation.models import ModerationCase
from tests.console.conftest import csrf_of
from tests.media.conftest import headers, media_settings, run_media_jobs, transfer, upload, user  # noqa: F401 - media fixtures
from tests.media.samples import jpeg

HOSTILE = "<script>alert('x')</script> selling pills"


@pytest.fixture(scope="module")
def app(database_url: str, services) -> Flask:
    """The console on the local store, as the media tests configure it."""
    return create_app(media_settings(database_url, services.redis_url, "local", None))


@pytest.fixture
def reported(client, headers, upload, run_media_jobs, make_user, auth_headers):  # noqa: F811
    """A shared photo reported by two users (one with a hostile note), and a reported account, oldest first."""

    def photo() -> str:
        done = upload(jpeg(640, 480))
        run_media_jobs()
        shared = client.patch(f"/v1/media/{done['id']}", headers=headers, json={"visibility": "users"})
        assert shared.status_code == 200, shared.get_json()
        return done["id"]

    def report(media_id: str, reason: str = "spam", note: str | None = None) -> None:
        answer = client.post(f"/v1/media/{media_id}/reports", headers=auth_headers(make_user()),
                             json={"reason": reason, "note": note})
        assert answer.status_code == 201, answer.get_json()

    first = photo()
    report(first, note=HOSTILE)
    report(first, reason="nudity")
    troll = make_user(display_name="<b>troll</b>")
    assert client.post(f"/v1/users/{troll.id}/reports", headers=auth_headers(make_user()),
                       json={"reason": "harassment"}).status_code == 201
    others = [photo(), photo()]
    for media_id in others:
        report(media_id)
    return {"photo": first, "troll": troll, "others": others}


def _case_of(target_id) -> ModerationCase:
    db.session.expire_all()
    return db.session.scalars(select(ModerationCase).where(ModerationCase.target_id == uuid.UUID(str(target_id)))
                              .order_by(ModerationCase.opened_at.desc())).first()


def test_queue_lists_cases_oldest_first_and_a_case_shows_content_safely(reported, staff_client, client):
    moderator = staff_client("moderator")
    queue = moderator.get("/admin/moderation/").get_data(as_text=True)
    links = re.findall(r'href="/admin/moderation/([0-9a-f-]{36})"', queue)
    assert links[:2] == [str(_case_of(reported["photo"]).id), str(_case_of(reported["troll"].id).id)]
    page = moderator.get(f"/admin/moderation/{links[0]}").get_data(as_text=True)
    assert HOSTILE not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; selling pills" in page
    previews = re.findall(r'<img class="console-preview" src="([^"]+)"', page)
    assert len(previews) == 2  # the photo's two presets, by signed URL
    served = client.get(previews[0].replace("http://localhost", "").replace("&amp;", "&"))
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/webp"
    user_case = moderator.get(f"/admin/moderation/{links[1]}").get_data(as_text=True)
    assert "&lt;b&gt;troll&lt;/b&gt;" in user_case and 'data-testid="decide-remove"' not in user_case


def test_remove_takes_effect_at_once_and_is_audited_with_who_and_why(reported, staff_client, client):
    moderator = staff_client("moderator")
    case = _case_of(reported["photo"])
    path = f"/admin/moderation/{case.id}"
    token = csrf_of(moderator, path)
    noted = moderator.post(f"{path}/note", data={"csrf_token": token, "note": "looks like a spam ring"})
    assert noted.status_code == 302
    answer = moderator.post(f"{path}/decide", data={"csrf_token": token, "decision": "remove", "note": "spam ring"})
    assert answer.status_code == 302
    case = _case_of(reported["photo"])
    assert (case.status, case.decision, case.decided_by) == ("closed", "remove", moderator.staff.id)
    assert db.session.get(Media, uuid.UUID(reported["photo"])).moderation == "removed"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(case.id))).one()
    assert (entry.action, entry.actor_id, entry.note) == ("moderation.remove", moderator.staff.id, "spam ring")
    assert entry.before == {"status": "open", "decision": None} and entry.after["decision"] == "remove"
    history = moderator.get(path).get_data(as_text=True)
    assert "looks like a spam ring" in history and f"<strong>remove</strong> by {moderator.staff.email}" in history
    assert '<img class="console-preview"' not in history and "its variants were deleted" in history


def test_bulk_decision_confirms_first_then_closes_each_case(reported, staff_client):
    moderator = staff_client("moderator")
    ids = [str(_case_of(m).id) for m in reported["others"]]
    token = csrf_of(moderator, "/admin/moderation/")
    asked = moderator.post("/admin/moderation/bulk", data={"csrf_token": token, "decision": "dismiss", "case_id": ids})
    assert asked.status_code == 200 and "Dismiss: 2 case(s)" in asked.get_data(as_text=True)
    assert {_case_of(m).status for m in reported["others"]} == {"open"}  # nothing happens before the confirmation
    done = moderator.post("/admin/moderation/bulk", data={"csrf_token": token, "decision": "dismiss", "case_id": ids,
                                                          "confirmed": "yes", "note": "fine"})
    assert done.status_code == 302
    assert {(_case_of(m).status, _case_of(m).decision) for m in reported["others"]} == {("closed", "dismiss")}
    audited = db.session.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "moderation.dismiss")).all()
    assert sorted(audited) == sorted(ids)
    closed = moderator.get("/admin/moderation/?status=closed").get_data(as_text=True)
    assert all(i in closed for i in ids)


def test_a_ban_from_the_queue_suspends_the_account_and_a_restore_undoes_it(reported, staff_client):
    moderator = staff_client("moderator")
    case = _case_of(reported["troll"].id)
    path = f"/admin/moderation/{case.id}"
    token = csrf_of(moderator, path)
    moderator.post(f"{path}/decide", data={"csrf_token": token, "decision": "ban", "note": "threats"})
    db.session.expire_all()
    assert reported["troll"].status == "suspended"
    page = moderator.get(path).get_data(as_text=True)
    assert "Change the decision" in page and 'data-testid="decide-restore"' in page
    moderator.post(f"{path}/decide", data={"csrf_token": token, "decision": "restore", "note": "appeal accepted"})
    db.session.expire_all()
    assert reported["troll"].status == "active" and _case_of(reported["troll"].id).decision == "restore"
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(case.id))
                                 .order_by(AuditEntry.id)).all()
    assert actions == ["moderation.ban", "moderation.restore"]


def test_the_user_profile_lists_their_media_and_the_reports_about_them(reported, staff_client, user):  # noqa: F811
    page = staff_client("moderator").get(f"/admin/users/{user.id}").get_data(as_text=True)
    media_rows = re.search(r'data-testid="user-media">(.*?)</table>', page, re.S).group(1)
    assert media_rows.count("<tr>") == 1 + 3 and media_rows.count("photo") == 3  # header + the three photos
    cases = re.search(r'data-testid="user-cases">(.*?)</table>', page, re.S).group(1)
    assert cases.count("/admin/moderation/") == 3 and "spam" in cases
