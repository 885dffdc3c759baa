"""Local-time arithmetic with explicit dates (DST gaps and overlaps, odd offsets) and the template sandbox."""
from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from backend.common.errors import ValidationFailed
from backend.notifications.campaigns.schedule import due_for_zone, local_to_utc
from backend.notifications.campaigns.templating import check_template, personal_context, render, render_for


@pytest.mark.parametrize(("day", "wall", "zone", "expected_local"), [
    ("2026-03-08", "02:30", "America/New_York", "2026-03-08T03:00:00-04:00"),  # gap → 03:00 EDT
    ("2026-11-01", "01:30", "America/New_York", "2026-11-01T01:30:00-04:00"),  # overlap → first (EDT)
    ("2026-03-29", "01:30", "Europe/London", "2026-03-29T02:00:00+01:00"),  # gap → 02:00 BST
    ("2026-10-25", "01:30", "Europe/London", "2026-10-25T01:30:00+01:00"),  # overlap → BST
    ("2026-10-04", "02:30", "Australia/Sydney", "2026-10-04T03:00:00+11:00"),  # gap → 03:00 AEDT
    ("2026-04-05", "02:30", "Australia/Sydney", "2026-04-05T02:30:00+11:00"),  # overlap → AEDT
    ("2026-10-04", "02:15", "Australia/Lord_Howe", "2026-10-04T02:30:00+11:00"),  # 30-minute gap
    ("2026-04-05", "01:45", "Australia/Lord_Howe", "2026-04-05T01:45:00+11:00"),  # 30-minute overlap
    ("2026-09-27", "03:00", "Pacific/Chatham", "2026-09-27T03:45:00+13:45"),  # gap at 02:45 standard
    ("2026-06-01", "09:00", "Asia/Kathmandu", "2026-06-01T09:00:00+05:45"),
    ("2026-06-01", "09:00", "Asia/Kolkata", "2026-06-01T09:00:00+05:30"),
    ("2026-06-01", "09:00", "UTC", "2026-06-01T09:00:00+00:00"),
])
def test_local_to_utc_dst_edges_and_odd_offsets(day, wall, zone, expected_local):
    hours, minutes = map(int, wall.split(":"))
    instant = local_to_utc(date.fromisoformat(day), time(hours, minutes), zone)
    assert instant.tzinfo is not None
    assert instant.astimezone(ZoneInfo(zone)).isoformat() == expected_local


def test_local_schedule_passed_in_a_zone_rolls_to_next_day():
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    schedule = {"type": "local", "local_time": "09:00"}
    tokyo = due_for_zone(schedule, "Asia/Tokyo", now=now)  # 21:00 in Tokyo: 09:00 passed today
    assert tokyo.local.isoformat() == "2026-06-02T09:00:00+09:00"
    la = due_for_zone(schedule, "America/Los_Angeles", now=now)  # 05:00 in LA: still ahead today
    assert la.local.isoformat() == "2026-06-01T09:00:00-07:00"


def test_unknown_zone_uses_fallback_zone():
    now = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    due = due_for_zone({"type": "local", "local_time": "09:00", "fallback_zone": "Asia/Kathmandu"}, "Not/AZone",
                       now=now)
    assert due.effective_zone == "Asia/Kathmandu" and due.local.isoformat() == "2026-06-01T09:00:00+05:45"


def test_render_missing_first_name_uses_default():
    assert render("Hi {{ first_name | default('there') }}!", personal_context(), limit=100) == "Hi there!"
    assert render("Hi {{ first_name | default('there') }}!", personal_context(first_name="Ann"), limit=100) == "Hi Ann!"


def test_render_unknown_property_is_empty_not_an_error():
    assert render("Plan: {{ properties.plan }}.", personal_context(), limit=100) == "Plan: ."


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ first_name.__init__ }}",
    "{{ cycler.__init__.__globals__ }}", "{{ lipsum.__globals__ }}", "{% for x in range(10) %}x{% endfor %}",
    "{{ first_name | attr('__class__') }}", "{% set x = 1 %}", "{% include 'x' %}", "{{ config }}",
    "{{ properties.__class__ }}", "{{ properties['__class__'] }}", "{{ self }}",
])
def test_template_reaching_internals_is_rejected(source):
    with pytest.raises(ValidationFailed) as caught:
        check_template(source, field="message.locales.en.title")
    assert caught.value.code == "template_not_allowed"


def test_sandbox_renders_internals_harmlessly_even_unchecked():
    assert render("{{ ''.__class__ }}x", {}, limit=100) == "x"


def test_rendered_text_is_cut_to_the_limit():
    text = render("{{ first_name }}", personal_context(first_name="A" * 500), limit=200)
    assert len(text) == 200 and text.endswith("…")


def test_render_for_falls_back_to_default_locale_then_english():
    message = {"default_locale": "de", "locales": {"de": {"title": "Hallo", "body": "x"},
                                                    "en": {"title": "Hello", "body": "y"}}}
    assert render_for(message, locale="ja-JP", context={}).title == "Hallo"
    assert render_for({"default_locale": "xx", "locales": message["locales"]}, locale="ja", context={}).title == "Hello"
    assert render_for(message, locale="en-AU", context={}).title == "Hello"
