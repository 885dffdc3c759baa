"""The console in a real browser: Debian's chromium driven by Playwright against real gunicorn and an RQ worker.

A marketer builds a campaign (live estimate), previews it, test-sends it to a staff
device, schedules it at 09:00 local time in each recipient's zone, launches it and
watches its stats (charts load); the same marketer is refused the user pages; an admin
suspends a user from the profile page. Screenshots go to the test's tmp dir and to
``instance/console-screenshots/`` (git-ignored) for people to look at.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest
from playwright import sync_api
from sqlalchemy import func, select

from backend.auth.models import User
from backend.auth.passwords import hash_password
from backend.common.db import utcnow
from backend.extensions import db
from backend.notifications.campaigns.models import Campaign
from backend.notifications.delivery.models import PushDelivery
from backend.notifications.models import Device
from tests.e2e.processes import ROOT, environment_of, start_gunicorn
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run"]
PASSWORD = "console browser passphrase 1"
ZONES = ("Asia/Kathmandu", "America/New_York", "Europe/Paris", "Australia/Lord_Howe")
SHOTS = ROOT / "instance" / "console-screenshots"


@pytest.fixture
def stack(committed_app, tmp_path):
    """gunicorn serving the test database, and one RQ worker for the push queue."""
    env = environment_of(committed_app, LOG_JSON="false", PUSH_BACKEND="outbox", WEB_CONCURRENCY="2")
    server = start_gunicorn("wsgi:app", tmp_path / "web", env={**os.environ, **env})
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "jobs.worker", "push", "default"], cwd=ROOT,
                              env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield server
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()
        server.stop()


def _seed(app) -> dict[str, str]:
    with app.app_context():
        hashed = hash_password(PASSWORD)
        staff = {role: User(email=f"{role}-{uuid.uuid4().hex[:6]}@example.test", password_hash=hashed, role=role,
                            email_verified_at=utcnow(), first_name="Tess") for role in ("marketer", "admin")}
        db.session.add_all(staff.values())
        db.session.flush()
        db.session.add(Device(user_id=staff["marketer"].id, installation_id="staff-phone", token="staff-token",
                              platform="ios", locale="en", time_zone="Europe/Paris"))
        for i in range(8):
            user = User(email=f"reader{i}@example.test", first_name="Kim",
                        display_name="<script>alert(1)</script>" if i == 0 else f"Reader {i}")
            db.session.add(user)
            db.session.flush()
            db.session.add(Device(user_id=user.id, installation_id=f"inst-{i}", token=f"tok-{i}", platform="android",
                                  locale=("en", "fr")[i % 2], time_zone=ZONES[i % len(ZONES)]))
        db.session.commit()
        return {role: user.email for role, user in staff.items()} | {"victim": "reader0@example.test"}


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def test_console_in_a_real_browser(committed_app, stack, tmp_path):
    emails = _seed(committed_app)
    base = stack.url
    shots = tmp_path / "screenshots"
    shots.mkdir()
    errors: list[str] = []

    def shot(page, name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            _sign_in(page, base, emails["marketer"])
            shot(page, "01-home-marketer")

            # Refused the user pages.
            answer = page.goto(f"{base}/admin/users/")
            assert answer.status == 403
            shot(page, "02-marketer-refused-users")

            # Draft, with the live estimate following the audience fields.
            page.goto(f"{base}/admin/campaigns/new")
            page.fill("#name", "Morning sale")
            page.fill("input[name=title_0]", "Hi {{ first_name | default('there') }}")
            page.fill("input[name=body_0]", "Sale from 9 am")
            page.fill("input[name=locale_1]", "fr")
            page.fill("input[name=title_1]", "Salut {{ first_name | default('toi') }}")
            page.fill("input[name=body_1]", "Soldes dès 9 h")
            page.select_option("#audience_type", "segment")
            page.check("input[name=platforms][value=android]")
            estimate = page.locator("[data-testid=estimate]")
            sync_api.expect(estimate).to_have_text("8 devices, 8 users", timeout=15_000)
            page.fill("#filter_time_zones", "Asia/Kathmandu")
            sync_api.expect(estimate).to_have_text("2 devices, 2 users", timeout=15_000)
            page.fill("#filter_time_zones", "")
            sync_api.expect(estimate).to_have_text("8 devices, 8 users", timeout=15_000)
            shot(page, "03-builder-draft")
            page.click("[data-testid=save-draft]")
            page.wait_for_selector("[data-testid=campaign-title]")

            # Preview per locale, then a test send to the marketer's own phone.
            sync_api.expect(page.locator("[data-testid=previews]")).to_contain_text("Salut Alex")
            page.check("[data-testid=test-send-form] input[name=user_id]")
            page.click("[data-testid=test-send]")
            sync_api.expect(page.locator("[data-testid=test-results]")).to_contain_text("Hi Tess")
            shot(page, "04-preview-and-test-send")

            # Schedule at 09:00 local time: the per-zone dry run, then launch.
            page.select_option("[data-testid=schedule-form] select[name=schedule_type]", "local")
            page.fill("[data-testid=schedule-form] input[name=local_time]", "09:00")
            page.click("[data-testid=save-schedule]")
            zones = page.locator("[data-testid=dry-run-zones]")
            for zone in ZONES:
                sync_api.expect(zones).to_contain_text(zone)
            shot(page, "05-schedule-dry-run")
            page.click("[data-testid=launch]")
            page.wait_for_selector("[data-testid=stats-totals]")

            with committed_app.app_context():
                campaign_id = db.session.scalar(select(Campaign.id).where(Campaign.name == "Morning sale"))
                wait_for(lambda: db.session.scalar(select(func.count()).select_from(PushDelivery).where(
                    PushDelivery.campaign_id == campaign_id)) == 8, timeout=60, what="the ledger from the worker")
                db.session.remove()
            page.goto(f"{base}/admin/campaigns/{campaign_id}/stats")
            sync_api.expect(page.locator("[data-testid=stats-zones]")).to_contain_text("Australia/Lord_Howe")
            chart = page.locator("[data-testid=chart-status]")
            sync_api.expect(chart).to_be_visible()
            assert page.evaluate("img => img.complete && img.naturalWidth > 0", chart.element_handle())
            shot(page, "06-campaign-stats")
            page.context.clear_cookies()

            # An admin suspends a user from the profile; the hostile name shows as text.
            _sign_in(page, base, emails["admin"])
            page.goto(f"{base}/admin/users/?q=reader0")
            sync_api.expect(page.locator("[data-testid=users-table]")).to_contain_text("<script>alert(1)</script>")
            shot(page, "07-users-search")
            page.click("text=reader0@example.test")
            page.click("[data-testid=action-suspend]")
            page.click("[data-testid=confirm-action]")
            sync_api.expect(page.locator("[data-testid=user-status]")).to_contain_text("suspended")
            shot(page, "08-user-suspended")
            page.goto(f"{base}/admin/audit/")
            sync_api.expect(page.locator("[data-testid=audit-table]")).to_contain_text("user.suspend")
            shot(page, "09-audit-log")
        finally:
            browser.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    SHOTS.mkdir(parents=True, exist_ok=True)
    for png in shots.glob("*.png"):
        shutil.copy(png, SHOTS / png.name)
