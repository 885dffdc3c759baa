"""Mixed traffic through nginx, briefly: what must hold under load, judged by behaviour.

Phones read, register devices and refresh; other devices race refreshes of one token;
a campaign fans out to the fake FCM server meanwhile. No answer may be a 5xx, no valid
refresh may end a session, and the campaign must finish. Latency ratios are measured by
`make load` (bench/b12_load.py), never asserted here.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import requests

from backend.app import create_app
from tests.conftest import fcm_app_settings
from tests.e2e.processes import environment_of
from tests.fakes.fcm_server import FakeFcmControl, collapse_identity
from tests.load.stack import PASSWORD, LoadStack, fresh_database
from tests.waiting import wait_for

pytestmark = [pytest.mark.load, pytest.mark.e2e]

AUDIENCE = 2_000


def _launch_campaign(stack: LoadStack, marketer: str) -> str:
    """A marketer's campaign to everyone, sent now, through the API."""
    session = requests.Session()
    login = session.post(f"{stack.url}/v1/auth/login", json={"email": marketer, "password": PASSWORD}, timeout=30)
    assert login.status_code == 200, login.text
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    created = session.post(f"{stack.url}/v1/campaigns", timeout=30, json={
        "name": "under load", "category": "promotional", "audience": {"type": "all"}, "schedule": {"type": "now"},
        "message": {"default_locale": "en", "locales": {"en": {"title": "Hello", "body": "News"}}}})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    launched = session.post(f"{stack.url}/v1/campaigns/{campaign_id}/launch", json={}, timeout=30)
    assert launched.status_code == 200, launched.text
    return campaign_id


def test_mixed_traffic_with_refresh_races_and_a_campaign_has_no_5xx_and_no_false_logout(
    services: Any, fake_fcm: FakeFcmControl, tmp_path: Path,
) -> None:
    url = fresh_database(services, services.redis_url)
    app = create_app(fcm_app_settings(url, services.redis_url, fake_fcm))
    env = environment_of(app, PROXY_FIX_X_FOR="1", LOG_LEVEL="WARNING")
    with LoadStack(env, tmp_path / "stack", web_workers=2) as stack:
        phones = stack.seed_accounts(60, tag="phone")
        [marketer] = stack.seed_accounts(1, tag="marketer", role="marketer")
        stack.seed_devices(AUDIENCE, tag="audience")
        campaign_id = _launch_campaign(stack, marketer)
        # The audience is fixed when the ledger is written; phones register devices of their own.
        wait_for(lambda: stack.scalar("SELECT count(*) FROM push_deliveries WHERE campaign_id = :c",
                                      c=campaign_id) == AUDIENCE, timeout=120, what="the campaign's ledger")

        phase = stack.run("mixed", seconds=40, users={"Phone": 40, "RefreshStorm": 10}, accounts=phones)

        stack.wait_for_campaign(campaign_id, timeout=180)
        sent = stack.scalar("SELECT count(*) FROM push_deliveries WHERE campaign_id = :c AND status = 'sent'",
                            c=campaign_id)

    assert phase.errors["5xx"] == 0, phase.errors
    assert phase.errors["false logout"] == 0, phase.errors
    assert phase.errors["unexpected"] == 0, phase.errors
    for name in ("GET /v1/me", "GET /v1/notifications/inbox", "POST /v1/auth/refresh (racing)",
                 "PUT /v1/notifications/devices/{id}"):
        assert phase.endpoints[name].requests > 0, name
    assert sent == AUDIENCE
    # Every device got it; a second copy (a request whose answer the starved, niced worker
    # never got in time, resent) carries the same collapse identity: one notification.
    copies: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for message in fake_fcm.messages():
        copies[message["token"]].add(collapse_identity(message["message"]))
    assert len(copies) == AUDIENCE
    assert all(len(identities) == 1 and all(next(iter(identities))) for identities in copies.values())
