"""The autocommit write path (prepared statement, array literals) on committed data: text arrives as sent."""
from __future__ import annotations

from sqlalchemy import text

from backend.extensions import db
from tests.analytics.conftest import event


def test_quotes_backslashes_braces_and_nulls_are_stored_as_sent(committed_app):
    tricky = ['say "hi"', "back\\slash", "{brace,comma}", "NULL", "é 😀 \\\"", "'single'"]
    events = [event(name, session_id=name, properties={"v": name, "n": None}) for name in tricky]
    events.append(event("no session"))
    client = committed_app.test_client()
    for _ in range(2):  # the second batch runs the statement prepared by the first
        answer = client.post("/v1/analytics/events", json={"install_id": "install-text-01", "events": events,
                                                           "app_version": 'v"1\\2', "platform": "web"})
        assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["duplicates"] == len(events)
    with committed_app.app_context():
        rows = db.session.execute(text(
            "SELECT name, session_id, properties, app_version, platform FROM analytics_events "
            "WHERE install_id = 'install-text-01'")).all()
        db.session.remove()
    assert sorted((r.name, r.session_id, r.properties["v"] if r.properties else None) for r in rows) == sorted(
        [(name, name, name) for name in tricky] + [("no session", None, None)])
    assert {(r.app_version, r.platform) for r in rows} == {('v"1\\2', "web")}
