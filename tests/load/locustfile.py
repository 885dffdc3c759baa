"""Locust users for the load suite: phones doing what apps do, through nginx.

Each simulated phone sends from its own loopback address (127.x.y.z), as real phones
come from their own addresses, so per-address limits in nginx and the app apply as
they would in production. Answers are sorted into what the suite judges:
``5xx`` (never allowed), ``false logout`` (a valid refresh answered 401), ``429``
(a limit answered) and ``unexpected`` (any other non-2xx).

Configured by the environment (tests/load/stack.py sets it): ``LOAD_SESSIONS`` (one
signed-in session a line, JSON: phones start with one each), ``LOAD_ACCOUNTS`` (one
email a line, for sign-ins) and ``LOAD_PASSWORD``, and ``LOAD_<CLASS>`` = how many users of that
class to run (``LOAD_PHONE``, ``LOAD_SIGNER``, ``LOAD_UPLOADER``, ``LOAD_LOGINSTORM``,
``LOAD_REFRESHSTORM``).
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, between, constant, task
from requests.adapters import HTTPAdapter
from urllib3.util import parse_url

_ACCOUNTS = Path(os.environ["LOAD_ACCOUNTS"]).read_text().split() if os.environ.get("LOAD_ACCOUNTS") else []
_SESSIONS = ([json.loads(line) for line in Path(os.environ["LOAD_SESSIONS"]).read_text().splitlines() if line]
             if os.environ.get("LOAD_SESSIONS") else [])
_PASSWORD = os.environ.get("LOAD_PASSWORD", "")
_addresses = itertools.count(1)
_accounts = itertools.count(0)
_sessions = iter(_SESSIONS)


def _fixed(name: str) -> int:
    return int(os.environ.get(f"LOAD_{name.upper()}", "0"))


class _SourceAddress(HTTPAdapter):
    """Connections bound to one loopback source address (all of 127/8 is local on Linux)."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        self.address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def _judge(response: Any, *, expected: tuple[int, ...] = (200,), false_logout: bool = False) -> None:
    """Mark a ``catch_response`` answer as success or as one of the suite's failure kinds."""
    status = response.status_code
    if status in expected:
        response.success()
    elif status >= 500 or status == 0:
        response.failure(f"5xx {status}")
    elif status == 401 and false_logout:
        response.failure("false logout")
    elif status == 429:  # which limit answered: hashing_busy, too_many_attempts, rate_limited...
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "?"
        response.failure(f"429 {code}")
    else:
        response.failure(f"unexpected {status}")


class _Signed(HttpUser):
    """A user on its own address, signed in to its own account."""

    abstract = True

    def on_start(self) -> None:
        self.bind_address()
        self.installation = f"load-{uuid.uuid4().hex[:12]}"
        session = next(_sessions, None)
        if session is not None:  # already signed in, as an app that opens again
            self.email, self.tokens = session["email"], session
        else:
            self.email, self.tokens = _ACCOUNTS[next(_accounts) % len(_ACCOUNTS)], {}
            self.sign_in()

    def bind_address(self) -> None:
        """Send from this user's own loopback address."""
        n = next(_addresses)
        self.address = f"127.{1 + n // 64516 % 250}.{1 + n // 254 % 254}.{1 + n % 254}"
        self.client.mount("http://", _SourceAddress(self.address))

    def sign_in(self) -> None:
        with self.client.post("/v1/auth/login", json={"email": self.email, "password": _PASSWORD},
                              name="POST /v1/auth/login", catch_response=True) as response:
            _judge(response)
            if response.status_code == 200:
                self.tokens = response.json()
            self.retry_after = float(response.headers.get("Retry-After") or 0) if response.status_code == 429 else 0

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get('access_token', '')}"}


class Phone(_Signed):
    """An app in use: opens (me, inbox, unread count), registers its device, refreshes its token."""

    fixed_count = _fixed("phone")
    wait_time = between(0.5, 1.5)

    @task(10)
    def me(self) -> None:
        with self.client.get("/v1/me", headers=self.bearer, name="GET /v1/me", catch_response=True) as response:
            _judge(response)

    @task(4)
    def inbox(self) -> None:
        with self.client.get("/v1/notifications/inbox?limit=20", headers=self.bearer,
                             name="GET /v1/notifications/inbox", catch_response=True) as response:
            _judge(response)

    @task(3)
    def unread(self) -> None:
        with self.client.get("/v1/notifications/inbox/unread-count", headers=self.bearer,
                             name="GET /v1/notifications/inbox/unread-count", catch_response=True) as response:
            _judge(response)

    @task(2)
    def register_device(self) -> None:
        body = {"token": f"fcm-{self.installation}", "platform": "android", "app_version": "3.2.0",
                "locale": "en-GB", "time_zone": "Europe/London", "push_permission": "granted"}
        with self.client.put(f"/v1/notifications/devices/{self.installation}", json=body, headers=self.bearer,
                             name="PUT /v1/notifications/devices/{id}", catch_response=True) as response:
            _judge(response)

    @task(3)
    def send_events(self) -> None:
        now = datetime.now(UTC).isoformat()
        events = [{"event_id": str(uuid.uuid4()), "name": name, "timestamp": now, "properties": {"screen": "home"}}
                  for name in ("app_open", "screen_view")]
        body = {"install_id": self.installation, "sent_at": now, "platform": "android", "app_version": "3.2.0",
                "events": events}
        with self.client.post("/v1/analytics/events", json=body, headers=self.bearer,
                              name="POST /v1/analytics/events", catch_response=True) as response:
            _judge(response)

    @task(1)
    def refresh(self) -> None:
        with self.client.post("/v1/auth/refresh", json={"refresh_token": self.tokens.get("refresh_token")},
                              name="POST /v1/auth/refresh", catch_response=True) as response:
            _judge(response, false_logout=True)
            if response.status_code == 200:
                self.tokens = response.json()


class Signer(_Signed):
    """Someone signing in now and then (a new phone, a forced logout), then opening the app."""

    fixed_count = _fixed("signer")
    wait_time = between(4, 8)

    def on_start(self) -> None:
        self.bind_address()
        self.tokens = {}

    @task
    def sign_in_and_open(self) -> None:
        self.email = _ACCOUNTS[next(_accounts) % len(_ACCOUNTS)]
        self.sign_in()
        if self.tokens:
            with self.client.get("/v1/me", headers=self.bearer, name="GET /v1/me (after sign-in)",
                                 catch_response=True) as response:
                _judge(response)


def _small_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 120, 40)).save(out, "JPEG", quality=80)
    return out.getvalue()


class Uploader(_Signed):
    """A photo upload as the app makes it: ask, send the bytes where told, complete."""

    fixed_count = _fixed("uploader")
    wait_time = between(2, 4)
    photo = _small_jpeg()

    @task
    def upload_photo(self) -> None:
        with self.client.post("/v1/media", headers=self.bearer, name="POST /v1/media", catch_response=True, json={
                "kind": "photo", "content_type": "image/jpeg", "size": len(self.photo),
                "checksum_sha256": hashlib.sha256(self.photo).hexdigest()}) as response:
            _judge(response, expected=(201,))
            if response.status_code != 201:
                return
            body = response.json()
        request = body["upload"]["request"]
        url = parse_url(request["url"])  # the local store's signed URL, sent through this nginx
        with self.client.request(request.get("method", "PUT"), f"{url.path}?{url.query}", data=self.photo,
                                 headers=request.get("headers") or {}, name="PUT /storage/{key} (upload)",
                                 catch_response=True) as response:
            _judge(response, expected=(200, 201, 204))
            if not response.ok:
                return
        with self.client.post(f"/v1/media/{body['media']['id']}/complete", headers=self.bearer,
                              name="POST /v1/media/{id}/complete", catch_response=True) as response:
            _judge(response)


class LoginStorm(_Signed):
    """Sign-in after sign-in, as after an outage or a forced logout of many phones.

    Each app signs in again at once, but waits as long as a 429's Retry-After says, as
    the apps do (a client that ignores it meets nginx's per-address limit instead).
    """

    fixed_count = _fixed("loginstorm")
    wait_time = constant(0)

    def on_start(self) -> None:
        self.bind_address()
        self.tokens = {}

    @task
    def login_again(self) -> None:
        self.email = _ACCOUNTS[next(_accounts) % len(_ACCOUNTS)]
        self.sign_in()
        if self.retry_after:
            gevent.sleep(self.retry_after)


class RefreshStorm(_Signed):
    """One device refreshing the same token from several requests at once (app resume races).

    Every answer must be 200 with the same new pair (the grace window), never a logout.
    """

    fixed_count = _fixed("refreshstorm")
    wait_time = between(1, 2)
    racers = 5

    @task
    def racing_refreshes(self) -> None:
        token = self.tokens.get("refresh_token")

        def refresh() -> dict[str, str] | None:
            with self.client.post("/v1/auth/refresh", json={"refresh_token": token},
                                  name="POST /v1/auth/refresh (racing)", catch_response=True) as response:
                _judge(response, false_logout=True)
                return response.json() if response.status_code == 200 else None

        racers = [gevent.spawn(refresh) for _ in range(self.racers)]
        gevent.joinall(racers)
        pairs = {racer.value["refresh_token"]: racer.value for racer in racers if racer.value}
        if len(pairs) == 1:
            self.tokens = pairs.popitem()[1]
        elif pairs:  # racing refreshes must all get the same new pair
            self.environment.events.request.fire(
                request_type="POST", name="POST /v1/auth/refresh (racing)", response_time=0, response_length=0,
                exception=AssertionError("false logout: racing refreshes got different pairs"), context={})
        with self.client.get("/v1/me", headers=self.bearer, name="GET /v1/me", catch_response=True) as response:
            _judge(response)
