"""Moderation in a real browser: a photo uploaded through the API, processed by a worker, reported,
then a moderator sees it (signed URL, under the console's CSP) and removes it.

Debian's chromium driven by Playwright against real gunicorn and an RQ media worker.
Screenshots go to ``instance/console-screenshots/``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid

import pytest
import urllib3
from playwright import sync_api

from backend.auth.models import User
from backend.auth.passwords import hash_password
from backend.auth.sessions import start_session
from backend.common.db import utcnow
from backend.extensions import db
from backend.media.models import Media
from tests.e2e.processes import ROOT, environment_of, free_port, start_gunicorn
from tests.e2e.test_console_browser import CHROMIUM, FLAGS, PASSWORD, SHOTS, _sign_in
from tests.media.samples import jpeg
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
http = urllib3.PoolManager()


def _call(method: str, url: str, token: str, body: dict | None = None) -> dict:
    answer = http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status < 300, (url, answer.status, answer.data[:300])
    return answer.json() if answer.data else {}


def _people(app) -> dict[str, object]:
    with app.app_context():
        moderator = User(email=f"mod-{uuid.uuid4().hex[:6]}@example.test", password_hash=hash_password(PASSWORD),
                         role="moderator", email_verified_at=utcnow())
        owner, reporter = User(email="owner@example.test"), User(email="reporter@example.test")
        db.session.add_all([moderator, owner, reporter])
        db.session.commit()
        tokens = {name: start_session(user=user, device_name="phone", platform="ios", ip="127.0.0.1",
                                      user_agent="e2e")["access_token"] for name, user in
                  (("owner", owner), ("reporter", reporter))}
        return {"moderator": moderator.email, **tokens}


def test_moderator_sees_a_reported_photo_and_removes_it(committed_app, tmp_path):
    people = _people(committed_app)
    port = free_port()
    env = environment_of(committed_app, LOG_JSON="false", WEB_CONCURRENCY="2", PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                         STORAGE_LOCAL_PATH=str(tmp_path / "storage"))
    server = start_gunicorn("wsgi:app", tmp_path / "web", env={**os.environ, **env}, port=port)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "jobs.worker", "media"], cwd=ROOT, env={**os.environ, **env},
                              stdout=log, stderr=subprocess.STDOUT)
    shots, errors = tmp_path / "screenshots", []
    shots.mkdir()
    try:
        photo = jpeg(900, 600, color="orange")
        asked = _call("POST", f"{server.url}/v1/media", people["owner"], {
            "kind": "photo", "content_type": "image/jpeg", "size": len(photo),
            "checksum_sha256": hashlib.sha256(photo).hexdigest()})
        ticket = asked["upload"]["request"]
        put = http.request(ticket.get("method", "PUT"), ticket["url"], body=photo, headers=ticket.get("headers"))
        assert put.status == 200, put.data[:300]
        media_id = asked["media"]["id"]
        _call("POST", f"{server.url}/v1/media/{media_id}/complete", people["owner"])
        with committed_app.app_context():
            def ready() -> bool:
                db.session.expire_all()
                return db.session.get(Media, uuid.UUID(media_id)).status == "ready"
            wait_for(ready, timeout=60, what="the worker to process the photo")
            db.session.remove()
        _call("PATCH", f"{server.url}/v1/media/{media_id}", people["owner"], {"visibility": "users"})
        _call("POST", f"{server.url}/v1/media/{media_id}/reports", people["reporter"],
              {"reason": "spam", "note": "<img src=x onerror=alert(1)> buy now"})

        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                _sign_in(page, server.url, people["moderator"])
                page.click("text=Moderation")
                sync_api.expect(page.locator("[data-testid=cases-table]")).to_contain_text("spam")
                page.screenshot(path=str(shots / "30-moderation-queue.png"), full_page=True)
                page.click("[data-testid=cases-table] a:has-text('media')")
                preview = page.locator("[data-testid=preview-image]").first
                sync_api.expect(preview).to_be_visible()
                page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=preview.element_handle())
                sync_api.expect(page.locator("[data-testid=reports-table]")).to_contain_text(
                    "<img src=x onerror=alert(1)> buy now")  # shown as text
                page.screenshot(path=str(shots / "31-moderation-case.png"), full_page=True)
                page.fill("[data-testid=decide-form] input[name=note]", "spam ring")
                page.click("[data-testid=decide-remove]")
                sync_api.expect(page.locator("[data-testid=case-status]")).to_contain_text("remove")
                sync_api.expect(page.locator("[data-testid=case-history]")).to_contain_text("spam ring")
                page.screenshot(path=str(shots / "32-moderation-removed.png"), full_page=True)
            finally:
                browser.close()
        gone = http.request("GET", f"{server.url}/v1/media/{media_id}/delivery",
                            headers={"Authorization": f"Bearer {people['reporter']}"})
        assert gone.status == 404  # removed content is served to nobody
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()
        server.stop()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    SHOTS.mkdir(parents=True, exist_ok=True)
    for png in shots.glob("*.png"):
        shutil.copy(png, SHOTS / png.name)
