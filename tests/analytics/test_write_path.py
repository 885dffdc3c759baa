"""The autocommit write path (prepared statement, array literals): text arrives as sent."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from backend.analytics import ingest
from backend.analytics.batches import encode_properties
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


TEXTS = ['say "hi"', "back\\slash", "{brace,comma}", "NULL", "null", "é 😀 \\\"", "'single'", " padded ", "", None,
         '{"k":"v\\\\n","n":null}']


@pytest.mark.parametrize("values", [TEXTS, [None], ["tab\there", "line\nbreak", "\x01", 'both "\t\\']])
def test_array_literal_reads_back_as_sent(db_session, values):
    """Text without control characters takes orjson's quoting, other text the general one: both read back alike."""
    literal = ingest.array_literal(values)
    assert db_session.execute(text("SELECT CAST(:literal AS text[])"), {"literal": literal}).scalar() == values


def test_properties_orjson_cannot_decide_are_encoded_by_json():
    """NaN and Infinity (orjson writes null) are refused; integers past 64 bits and nulls are kept."""
    assert encode_properties({"x": float("nan")}) is None
    assert encode_properties({"x": float("-inf")}) is None
    assert encode_properties({"big": 2**70, "none": None}) == '{"big":1180591620717411303424,"none":null}'
    assert encode_properties({"nul": "a\x00b"}) is None
    assert encode_properties({"é": ["😀", 1.5, True]}) == '{"é":["😀",1.5,true]}'
