"""Media fixtures: the app on each store (a local folder, S3 through moto's HTTP server),
signed-in users, and a client that sends presigned requests where they point.

Tests taking ``app`` run once per store, so both implementations pass the same suite.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import urllib3
from flask import Flask
from moto.server import ThreadedMotoServer

from backend.app import create_app
from backend.auth.models import User
from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared sign-in fixtures
from tests.conftest import app_settings

BUCKET = "groundwork-test-media"
PUBLIC_BASE_URL = "http://localhost"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP S3 endpoint (moto's server mode) on a free loopback port, with the bucket."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def media_settings(database_url: str, redis_url: str, backend: str, endpoint: str | None, **extra: Any) -> dict:
    """Settings of a media app on ``backend`` (small parts so multipart tests stay quick)."""
    store = {"STORAGE_BACKEND": backend, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
             "MEDIA_MULTIPART_THRESHOLD": 6 * 1024 * 1024, "MEDIA_PART_SIZE": 5 * 1024 * 1024}
    if backend == "s3":
        store.update(S3_BUCKET=BUCKET, S3_ENDPOINT_URL=endpoint)
    return app_settings(database_url, redis_url, **store, **extra)


@pytest.fixture(scope="session", params=["local", "s3"])
def app(request: pytest.FixtureRequest, database_url: str, services: Any) -> Flask:
    """The app under test, once per store."""
    endpoint = request.getfixturevalue("s3_endpoint") if request.param == "s3" else None
    return create_app(media_settings(database_url, services.redis_url, request.param, endpoint))


@pytest.fixture
def user(make_user: Callable[..., User], db_session: Any) -> User:  # noqa: F811
    return make_user()


@pytest.fixture
def headers(user: User, auth_headers: Callable[..., dict[str, str]]) -> dict[str, str]:  # noqa: F811
    return auth_headers(user)


class Transfer:
    """Sends presigned requests: to the app itself (local store) or over HTTP (S3)."""

    def __init__(self, app: Flask, client: Any):
        self.app, self.client = app, client
        self.http = urllib3.PoolManager()

    def send(self, method: str, url: str, data: bytes = b"", headers: dict[str, str] | None = None) -> Any:
        """Make the request the URL describes; returns (status, headers, body)."""
        headers = dict(headers or {})
        if url.startswith(PUBLIC_BASE_URL + "/"):
            parts = urlsplit(url)
            response = self.client.open(parts.path + "?" + parts.query, method=method, data=data, headers=headers)
            return response.status_code, response.headers, response.get_data()
        response = self.http.request(method, url, body=data or None, headers=headers)
        return response.status, response.headers, response.data

    def put(self, request: dict[str, Any], data: bytes) -> int:
        status, _, _ = self.send(request.get("method", "PUT"), request["url"], data, request.get("headers"))
        return status

    def get(self, url: str) -> tuple[int, Any, bytes]:
        return self.send("GET", url)


@pytest.fixture
def transfer(app: Flask, client: Any) -> Transfer:
    return Transfer(app, client)


@pytest.fixture
def upload(client: Any, headers: dict[str, str], transfer: Transfer) -> Callable[..., dict[str, Any]]:
    """Ask for an upload, send the bytes as told, complete it; returns the completion answer."""

    def send(data: bytes, *, kind: str = "photo", content_type: str = "image/jpeg", complete: bool = True,
             as_headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
        who = as_headers or headers
        asked = client.post("/v1/media", headers=who, json={
            "kind": kind, "content_type": content_type, "size": len(data),
            "checksum_sha256": hashlib.sha256(data).hexdigest(), **extra})
        assert asked.status_code == 201, asked.get_json()
        body = asked.get_json()
        ticket = body["upload"]
        if ticket["multipart"]:
            for part in ticket["parts"]:
                start = (part["part_number"] - 1) * ticket["part_size"]
                assert transfer.put(part, data[start:start + part["size"]]) == 200
        else:
            assert transfer.put(ticket["request"], data) == 200
        if not complete:
            return body
        done = client.post(f"/v1/media/{body['media']['id']}/complete", headers=who)
        assert done.status_code == 200, done.get_json()
        return done.get_json()

    return send


@pytest.fixture
def run_media_jobs(run_jobs: Callable[..., int]) -> Callable[[], None]:
    """Run the media queue now; the test's session then rereads what the jobs changed."""
    from backend.extensions import db

    def run() -> None:
        run_jobs(("media",))
        db.session.expire_all()

    return run
