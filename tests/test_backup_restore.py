"""Backup and restore, end to end: the operator's commands move a live instance's data
into a fresh database, which then serves the same users, devices and campaigns.

The commands run as an operator runs them (``flask --app wsgi backup ...`` in its own
process); each instance is an app on its own freshly created database.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask_migrate import upgrade

from backend.app import create_app
from backend.auth.models import User
from backend.auth.passwords import hash_password
from backend.common.db import utcnow
from backend.extensions import db
from tests.campaigns.conftest import campaign_body
from tests.conftest import app_settings
from tests.e2e.processes import ROOT, environment_of

PASSWORD = "correct horse battery staple"


def _instance(services: Any, *, migrated: bool) -> Flask:
    app = create_app(app_settings(services.create_database(), services.redis_url))
    if migrated:
        with app.app_context():
            upgrade(directory="migrations")
    return app


def _dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _flask(app: Flask, *args: str) -> subprocess.CompletedProcess[str]:
    """``flask --app wsgi ARGS`` in its own process, configured like ``app``."""
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=environment_of(app), capture_output=True, text=True, timeout=120)


def _sign_in(app: Flask, email: str) -> dict[str, str]:
    answer = app.test_client().post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


@pytest.fixture
def source(services: Any, redis_conn: redis.Redis) -> Iterator[dict[str, Any]]:
    """A live instance with a user, their phone, and a marketer's scheduled campaign."""
    app = _instance(services, migrated=True)
    with app.app_context():
        for email, role in (("ada@example.test", "user"), ("mia@example.test", "marketer")):
            db.session.add(User(email=email, password_hash=hash_password(PASSWORD), role=role,
                                email_verified_at=utcnow(), status="active"))
        db.session.commit()
    client = app.test_client()
    device = client.put("/v1/notifications/devices/ada-phone", headers=_sign_in(app, "ada@example.test"), json={
        "token": "fcm-token-ada", "platform": "android", "app_version": "3.1.0", "locale": "de-DE",
        "time_zone": "Europe/Berlin", "push_permission": "granted"})
    assert device.status_code == 200, device.get_json()
    campaign = client.post("/v1/campaigns", headers=_sign_in(app, "mia@example.test"), json=campaign_body(
        schedule={"type": "local", "local_time": "09:30", "date": "2031-05-04"}))
    assert campaign.status_code == 201, campaign.get_json()
    yield {"app": app, "campaign": campaign.get_json()}
    _dispose(app)


def test_backup_restore_into_a_fresh_instance_serves_the_same_data(
    source: dict[str, Any], services: Any, redis_conn: redis.Redis, tmp_path: Path,
) -> None:
    backup = _flask(source["app"], "backup", "create", str(tmp_path / "backup"))
    assert backup.returncode == 0, backup.stderr
    fresh = _instance(services, migrated=False)
    redis_conn.flushdb()  # a fresh instance has no cache of the old one

    restore = _flask(fresh, "backup", "restore", str(tmp_path / "backup"))

    assert restore.returncode == 0, restore.stderr
    assert "rows match the manifest" in restore.stdout
    client = fresh.test_client()
    ada = _sign_in(fresh, "ada@example.test")
    [device] = client.get("/v1/notifications/devices", headers=ada).get_json()["items"]
    assert (device["installation_id"], device["time_zone"], device["platform"]) == (
        "ada-phone", "Europe/Berlin", "android")
    campaign_id = source["campaign"]["id"]
    campaign = client.get(f"/v1/campaigns/{campaign_id}", headers=_sign_in(fresh, "mia@example.test"))
    assert campaign.status_code == 200
    assert campaign.get_json()["message"] == source["campaign"]["message"]
    assert campaign.get_json()["status"] == source["campaign"]["status"]
    _dispose(fresh)


def test_backup_of_a_live_instance_matches_its_manifest_while_writes_go_on(
    source: dict[str, Any], services: Any, tmp_path: Path,
) -> None:
    app, stop, written = source["app"], threading.Event(), []

    def sign_ups() -> None:
        with app.app_context():
            while not stop.is_set():
                db.session.add(User(email=f"{uuid.uuid4().hex}@example.test", role="user", status="active"))
                db.session.commit()
                written.append(1)
            db.session.remove()

    writer = threading.Thread(target=sign_ups)
    writer.start()
    try:
        backup = _flask(app, "backup", "create", str(tmp_path / "backup"))
    finally:
        stop.set()
        writer.join(30)
    assert backup.returncode == 0, backup.stderr
    fresh = _instance(services, migrated=False)

    restore = _flask(fresh, "backup", "restore", str(tmp_path / "backup"))

    assert restore.returncode == 0, restore.stderr
    assert len(written) > 0, "the writer must have run during the backup"
    _dispose(fresh)


def test_backup_restore_refuses_a_database_that_is_not_empty(
    source: dict[str, Any], tmp_path: Path,
) -> None:
    assert _flask(source["app"], "backup", "create", str(tmp_path / "backup")).returncode == 0

    again = _flask(source["app"], "backup", "restore", str(tmp_path / "backup"))

    assert again.returncode != 0
    assert "not empty" in again.stderr


def test_backup_restore_refuses_a_dump_that_does_not_match_its_manifest(
    source: dict[str, Any], services: Any, tmp_path: Path,
) -> None:
    folder = tmp_path / "backup"
    assert _flask(source["app"], "backup", "create", str(folder)).returncode == 0
    with (folder / "database.dump").open("ab") as dump:
        dump.write(b"tampered")
    fresh = _instance(services, migrated=False)

    restore = _flask(fresh, "backup", "restore", str(folder))

    assert restore.returncode != 0
    assert "checksum" in restore.stderr
    with fresh.app_context():
        assert not db.inspect(db.engine).get_table_names(), "nothing may be restored from a bad dump"
    _dispose(fresh)


def test_backup_create_refuses_a_folder_that_is_not_empty(source: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "old.dump").write_bytes(b"x")

    result = _flask(source["app"], "backup", "create", str(tmp_path / "backup"))

    assert result.returncode != 0
    assert "not empty" in result.stderr
