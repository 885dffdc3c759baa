"""Campaign test helpers: marketers with tokens, audiences of users and devices, campaign bodies."""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from backend.auth.models import User
from backend.common.db import utcnow
from backend.extensions import db
from backend.notifications.models import Device
from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared fixtures

_serial = itertools.count(1)


@pytest.fixture
def marketer(make_user):  # noqa: F811
    return make_user(role="marketer", password=None)


@pytest.fixture
def marketer_headers(marketer, auth_headers) -> dict[str, str]:  # noqa: F811
    return auth_headers(marketer)


@pytest.fixture
def populate(db_session) -> Callable[..., list[uuid.UUID]]:
    """Insert users (one device each, or ``devices_per_user``) in bulk; returns the user ids."""

    def make(n: int, *, zones: Sequence[str] = ("UTC",), locales: Sequence[str] = ("en",),
             platforms: Sequence[str] = ("android",), devices_per_user: int = 1, first_name: str | None = None,
             app_version: str = "1.0.0", permission: str = "granted", last_seen_at: datetime | None = None,
             properties: dict[str, Any] | None = None, status: str = "active") -> list[uuid.UUID]:
        batch = next(_serial)
        ids = [uuid.uuid4() for _ in range(n)]
        db.session.execute(insert(User), [
            {"id": uid, "email": f"pop{batch}-{i}@example.test", "role": "user", "status": status,
             "first_name": first_name, "properties": properties or {}}
            for i, uid in enumerate(ids)])
        seen = last_seen_at or utcnow()
        db.session.execute(insert(Device), [
            {"id": uuid.uuid4(), "user_id": uid, "installation_id": f"inst-{batch}-{i}-{d}",
             "token": f"tok-{batch}-{i}-{d}-{uuid.uuid4().hex[:6]}", "platform": platforms[i % len(platforms)],
             "app_version": app_version, "locale": locales[i % len(locales)], "time_zone": zones[i % len(zones)],
             "push_permission": permission, "last_seen_at": seen}
            for i, uid in enumerate(ids) for d in range(devices_per_user)])
        db.session.commit()
        return ids

    return make


def campaign_body(**overrides: Any) -> dict[str, Any]:
    """A valid campaign body: English and French, personalised, sent now."""
    body: dict[str, Any] = {
        "name": "Spring sale",
        "category": "promotional",
        "audience": {"type": "all"},
        "message": {
            "default_locale": "en",
            "locales": {
                "en": {"title": "Hi {{ first_name | default('there') }}", "body": "The sale starts now."},
                "fr": {"title": "Bonjour {{ first_name | default('à vous') }}", "body": "Les soldes commencent."},
            },
            "deep_link": "app://sale",
            "data": {"screen": "sale"},
        },
        "schedule": {"type": "now"},
    }
    body.update(overrides)
    return body


def future(**delta: float) -> str:
    """An ISO instant ``delta`` from now (UTC)."""
    return (utcnow() + timedelta(**delta)).isoformat()


@pytest.fixture
def create_campaign(client, marketer_headers) -> Callable[..., dict[str, Any]]:
    """POST a campaign (valid unless overridden); asserts 201 and returns its body."""

    def create(**overrides: Any) -> dict[str, Any]:
        response = client.post("/v1/campaigns", json=campaign_body(**overrides), headers=marketer_headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create
