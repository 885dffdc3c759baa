"""Dashboards in a real browser: an analyst reads actives, the retention heatmap and a funnel.

Debian's chromium driven by Playwright against real gunicorn; the charts must load as
images under the console's CSP. Screenshots go to ``instance/console-screenshots/``.
"""
from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright import sync_api

from backend.analytics import ingest
from backend.auth.models import User
from backend.auth.passwords import hash_password
from backend.common.db import utcnow
from backend.extensions import db
from tests.analytics.conftest import event
from tests.e2e.processes import environment_of, start_gunicorn
from tests.e2e.test_console_browser import CHROMIUM, FLAGS, PASSWORD, SHOTS, _sign_in

pytestmark = pytest.mark.e2e


def _seed(app) -> str:
    """Twelve users over two weeks (a funnel app_open → signup → purchase), and an analyst."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with app.app_context():
        analyst = User(email=f"analyst-{uuid.uuid4().hex[:6]}@example.test", password_hash=hash_password(PASSWORD),
                       role="analyst", email_verified_at=utcnow())
        users = [User(email=f"person{i}@example.test") for i in range(12)]
        db.session.add_all([analyst, *users])
        db.session.flush()
        limits = ingest.limits_from(app.config)
        for i, user in enumerate(users):
            first = today - timedelta(days=13 - i)
            names = ["app_open", "signup", "purchase"][: 1 + i % 3]
            for day in range(0, 14 - (13 - i), 3):  # comes back every third day
                for k, name in enumerate(names if day == 0 else ["app_open"]):
                    batch = ingest.Batch(install_id=f"install-{i:04d}", platform=("ios", "android")[i % 2],
                                         events=[event(name)])
                    ingest.ingest_batch(db.session, batch=batch, user_id=user.id, client_ip=None, limits=limits,
                                        now=first + timedelta(days=day, minutes=k))
        db.session.commit()
        return analyst.email


def test_dashboards_in_a_real_browser(committed_app, tmp_path):
    email = _seed(committed_app)
    env = environment_of(committed_app, LOG_JSON="false", WEB_CONCURRENCY="2")
    server = start_gunicorn("wsgi:app", tmp_path / "web", env={**os.environ, **env})
    shots, errors = tmp_path / "screenshots", []
    shots.mkdir()
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                _sign_in(page, server.url, email)
                page.click("text=Dashboards")
                chart = page.locator("[data-testid=chart-actives]")
                sync_api.expect(chart).to_be_visible()
                assert page.evaluate("img => img.complete && img.naturalWidth > 0", chart.element_handle())
                sync_api.expect(page.locator("[data-testid=retention-heatmap]")).to_contain_text("100 %")
                page.screenshot(path=str(shots / "20-dashboards-actives-retention.png"), full_page=True)

                page.click("text=Funnels")
                page.fill("[data-testid=funnel-steps]", "app_open, signup, purchase")
                page.fill("input[name=breakdown]", "platform")
                page.click("button:has-text('Show')")
                table = page.locator("[data-testid=funnel-table]")
                sync_api.expect(table).to_contain_text("android")
                sync_api.expect(table).to_contain_text("ios")
                sync_api.expect(page.locator("[data-testid=chart-funnel]")).to_be_visible()
                page.screenshot(path=str(shots / "21-dashboards-funnel.png"), full_page=True)

                assert page.goto(f"{server.url}/admin/users/").status == 403  # analysts read dashboards only
            finally:
                browser.close()
    finally:
        server.stop()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    SHOTS.mkdir(parents=True, exist_ok=True)
    for png in shots.glob("*.png"):
        shutil.copy(png, SHOTS / png.name)
