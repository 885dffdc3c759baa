"""Analytics fixtures: batches of events, and reading back what was stored."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from backend.extensions import db
from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared sign-in fixtures


def event(name: str = "screen_view", **fields: Any) -> dict[str, Any]:
    """One client event with a fresh client UUID."""
    return {"event_id": str(uuid.uuid4()), "name": name, **fields}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@pytest.fixture
def send(client) -> Callable[..., Any]:
    """POST a batch for ``install_id`` (headers for a signed-in install)."""

    def post(events: list[Any], *, install_id: str = "install-0001", headers: dict | None = None,
             **batch: Any) -> Any:
        return client.post("/v1/analytics/events", headers=headers or {},
                           json={"install_id": install_id, "events": events, **batch})

    return post


def stored(**where: Any) -> list[dict[str, Any]]:
    """Rows of analytics_events matching ``where`` (column = value), oldest first."""
    clause = " AND ".join(f"{key} = :{key}" for key in where) or "true"
    return [dict(r) for r in db.session.execute(
        text(f"SELECT * FROM analytics_events WHERE {clause} ORDER BY occurred_at, name"), where).mappings()]
