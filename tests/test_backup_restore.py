"""Backup and restore, end to end: the operator's commands move a live instance's data
and stored objects into a fresh database and an empty store, which then serve the same
users, devices, campaigns and media.

The commands run as an operator runs them (``flask --app wsgi backup ...`` in its own
process); each instance is an app on its own freshly created database and its own store
(a local folder, or a bucket of its own on a real S3 endpoint: moto's server).
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
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
from tests.media.conftest import PUBLIC_BASE_URL, Transfer, s3_endpoint  # noqa: F401 - S3 server fixture
from tests.media.samples import jpeg

PASSWORD = "correct horse battery staple"
_AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


BOTH_STORES = pytest.mark.parametrize("new_store", ["local", "s3"], indirect=True)


def _store_settings(kind: str, folder: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """An empty store of its own: a new folder under ``folder``, or a new bucket."""
    name = uuid.uuid4().hex[:12]
    if kind == "local":
        return {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_PATH": str(folder / f"store-{name}")}
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"gw-backup-{name}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return {"STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "S3_ENDPOINT_URL": endpoint}


@pytest.fixture
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Makes the settings of an empty store of its own: a folder (default), or a new bucket."""
    kind = getattr(request, "param", "local")

    def make() -> dict[str, Any]:
        return _store_settings(kind, tmp_path, request)

    make.kind = kind  # type: ignore[attr-defined]
    return make


def _instance(services: Any, *, migrated: bool, store: dict[str, Any] | None = None) -> Flask:
    app = create_app(app_settings(services.create_database(), services.redis_url, PUBLIC_BASE_URL=PUBLIC_BASE_URL,
                                  **(store or {})))
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
    aws = {name: os.environ[name] for name in _AWS if name in os.environ}  # set by the S3 server fixture
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=environment_of(app, **aws), capture_output=True, text=True, timeout=120)


def _sign_in(app: Flask, email: str) -> dict[str, str]:
    answer = app.test_client().post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


def _upload_photo(app: Flask, headers: dict[str, str], data: bytes) -> str:
    """Upload ``data`` as a photo through the API and process it until ready; returns its id."""
    from jobs.worker import build_worker

    client = app.test_client()
    asked = client.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": len(data),
        "checksum_sha256": hashlib.sha256(data).hexdigest()})
    assert asked.status_code == 201, asked.get_json()
    body = asked.get_json()
    assert Transfer(app, client).put(body["upload"]["request"], data) == 200
    assert client.post(f"/v1/media/{body['media']['id']}/complete", headers=headers).status_code == 200
    build_worker(app, ["media"], in_process=True).work(burst=True, with_scheduler=False)
    media = client.get(f"/v1/media/{body['media']['id']}", headers=headers).get_json()
    assert media["status"] == "ready", media.get("failure_reason")
    return media["id"]


def _live_instance(services: Any, store: dict[str, Any]) -> dict[str, Any]:
    """A live instance with a user, their phone and photo, and a marketer's scheduled campaign."""
    app = _instance(services, migrated=True, store=store)
    with app.app_context():
        for email, role in (("ada@example.test", "user"), ("mia@example.test", "marketer")):
            db.session.add(User(email=email, password_hash=hash_password(PASSWORD), role=role,
                                email_verified_at=utcnow(), status="active"))
        db.session.commit()
    client = app.test_client()
    ada = _sign_in(app, "ada@example.test")
    device = client.put("/v1/notifications/devices/ada-phone", headers=ada, json={
        "token": "fcm-token-ada", "platform": "android", "app_version": "3.1.0", "locale": "de-DE",
        "time_zone": "Europe/Berlin", "push_permission": "granted"})
    assert device.status_code == 200, device.get_json()
    campaign = client.post("/v1/campaigns", headers=_sign_in(app, "mia@example.test"), json=campaign_body(
        schedule={"type": "local", "local_time": "09:30", "date": "2031-05-04"}))
    assert campaign.status_code == 201, campaign.get_json()
    photo = jpeg(900, 600, color="orange")
    with app.app_context():
        media_id = _upload_photo(app, ada, photo)
    return {"app": app, "store": store, "campaign": campaign.get_json(), "media_id": media_id, "photo": photo}


@pytest.fixture(scope="module")
def live_instances() -> Iterator[dict[str, dict[str, Any]]]:
    """One live instance per store kind for the whole module (building one costs seconds), and
    its backup, made on first use. Tests that change a backup change a copy of it."""
    built: dict[str, dict[str, Any]] = {}
    yield built
    for source in built.values():
        _dispose(source["app"])


@pytest.fixture
def source(live_instances: dict[str, dict[str, Any]], services: Any, new_store: Any, redis_conn: redis.Redis,
           request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    kind = new_store.kind
    if kind not in live_instances:
        scratch = tmp_path_factory.mktemp(f"live-{kind}")
        live_instances[kind] = {**_live_instance(services, _store_settings(kind, scratch, request)),
                                "scratch": scratch}
    return live_instances[kind]


def _backup_of(source: dict[str, Any], tmp_path: Path) -> Path:
    """A copy (in ``tmp_path``, the test's to change) of the source's backup, made once."""
    if "backup" not in source:
        folder = source["scratch"] / "backup"
        made = _flask(source["app"], "backup", "create", str(folder))
        assert made.returncode == 0, made.stderr
        source["backup"] = folder
    copy = tmp_path / "backup"
    shutil.copytree(source["backup"], copy)
    return copy


@BOTH_STORES
def test_backup_restore_into_a_fresh_instance_serves_the_same_data(
    source: dict[str, Any], services: Any, redis_conn: redis.Redis, tmp_path: Path, new_store: Any,
) -> None:
    backup = _backup_of(source, tmp_path)
    fresh = _instance(services, migrated=False, store=new_store())  # empty database, empty store
    redis_conn.flushdb()  # a fresh instance has no cache of the old one

    restore = _flask(fresh, "backup", "restore", str(backup))

    assert restore.returncode == 0, restore.stderr
    assert "rows and 3 objects match the manifest" in restore.stdout  # original and two variants
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
    media = client.get(f"/v1/media/{source['media_id']}", headers=ada).get_json()
    assert media["status"] == "ready"
    transfer = Transfer(fresh, client)
    status, _, original = transfer.get(media["delivery"]["original"])
    assert status == 200 and original == source["photo"]  # the same bytes, from the new store
    for variant in media["delivery"]["variants"].values():
        status, headers, body = transfer.get(variant["url"])
        assert status == 200 and headers["Content-Type"] == "image/webp" and body
    _dispose(fresh)


def test_backup_of_a_live_instance_matches_its_manifest_while_writes_go_on(
    source: dict[str, Any], services: Any, tmp_path: Path, new_store: Any,
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
    fresh = _instance(services, migrated=False, store=new_store())

    restore = _flask(fresh, "backup", "restore", str(tmp_path / "backup"))

    assert restore.returncode == 0, restore.stderr
    assert len(written) > 0, "the writer must have run during the backup"
    _dispose(fresh)


def test_backup_restore_refuses_a_database_that_is_not_empty(
    source: dict[str, Any], tmp_path: Path,
) -> None:
    again = _flask(source["app"], "backup", "restore", str(_backup_of(source, tmp_path)))

    assert again.returncode != 0
    assert "not empty" in again.stderr


def test_backup_restore_refuses_a_dump_that_does_not_match_its_manifest(
    source: dict[str, Any], services: Any, tmp_path: Path, new_store: Any,
) -> None:
    folder = _backup_of(source, tmp_path)
    with (folder / "database.dump").open("ab") as dump:
        dump.write(b"tampered")
    fresh = _instance(services, migrated=False, store=new_store())

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


@BOTH_STORES
def test_backup_restore_refuses_an_object_that_does_not_match_its_manifest(
    source: dict[str, Any], services: Any, tmp_path: Path, new_store: Any,
) -> None:
    folder = _backup_of(source, tmp_path)
    original = next((folder / "objects").rglob("original*"))
    original.write_bytes(original.read_bytes()[:-10])
    fresh = _instance(services, migrated=False, store=new_store())

    restore = _flask(fresh, "backup", "restore", str(folder))

    assert restore.returncode != 0
    assert "differ from the manifest" in restore.stderr
    with fresh.app_context():
        assert not db.inspect(db.engine).get_table_names(), "nothing may be restored from a bad backup"
    _dispose(fresh)


def test_backup_restore_refuses_a_store_holding_other_objects(
    source: dict[str, Any], services: Any, tmp_path: Path,
) -> None:
    folder = _backup_of(source, tmp_path)
    from backend.media.storage import get_storage

    store = get_storage(source["app"])
    store.put("media/stray/object.bin", io.BytesIO(b"stray"), content_type="text/plain")
    try:
        fresh = _instance(services, migrated=False, store=source["store"])  # the source's store, not empty

        restore = _flask(fresh, "backup", "restore", str(folder))

        assert restore.returncode != 0
        assert "restore into an empty store" in restore.stderr
        _dispose(fresh)
    finally:
        store.delete_prefix("media/stray/")
