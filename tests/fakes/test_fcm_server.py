"""The fake FCM server speaks FCM HTTP v1 well enough for pyfcm itself to use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyfcm import FCMNotification
from pyfcm.errors import (
    AuthenticationError,
    FCMNotRegisteredError,
    FCMSenderIdMismatchError,
    FCMServerError,
    InvalidDataError,
)

from tests.fakes.fcm_protocol import FCM_ERROR_TYPE
from tests.fakes.fcm_server import FakeFcmControl, free_port, running_fake_fcm
from tests.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeFcmControl]:
    with running_fake_fcm() as fake:
        yield fake


@pytest.fixture()
def fake(fake_server: FakeFcmControl) -> FakeFcmControl:
    fake_server.reset()
    return fake_server


def pyfcm_client(fake: FakeFcmControl) -> FCMNotification:
    """pyfcm's own client with its class-level endpoint base pointed at the fake."""

    class LocalFCM(FCMNotification):
        FCM_END_POINT_BASE = fake.endpoint_base

    return LocalFCM(service_account_file=fake.credentials_path, project_id=fake.project_id)


def raw_send(client: FCMNotification, **params: object) -> requests.Response:
    """POST one pyfcm-built payload with pyfcm's headers but without its retrying session.

    pyfcm's session mounts urllib3 ``Retry``, which sleeps for Retry-After on 429/503 and
    retries; ``send_request`` sleeps again on top. Neither belongs in these checks.
    """
    headers = dict(client.requests_session.headers)
    return requests.post(client.fcm_end_point, data=client.parse_payload(**params), headers=headers, timeout=5)


def test_pyfcm_notify_is_accepted_and_recorded(fake: FakeFcmControl) -> None:
    client = pyfcm_client(fake)
    answer = client.notify(fcm_token="device-1", notification_title="Hi", data_payload={"k": "v"})
    assert answer["name"].startswith(f"projects/{fake.project_id}/messages/")
    [message] = fake.messages()
    assert message["token"] == "device-1"
    assert message["name"] == answer["name"]
    assert message["message"] == {
        "token": "device-1",
        "notification": {"title": "Hi"},
        "data": {"k": "v"},
    }
    assert abs(message["received_at"] - time.time()) < 5
    assert fake.stats()["counters"]["tokens_issued"] == 1


def test_pyfcm_topic_and_condition_messages_are_accepted(fake: FakeFcmControl) -> None:
    client = pyfcm_client(fake)
    client.notify(topic_name="news", notification_body="b")
    client.notify(topic_condition="'a' in topics", data_payload={"x": "1"})
    assert [m["topic"] for m in fake.messages()] == ["news", None]
    assert fake.messages()[1]["condition"] == "'a' in topics"


@pytest.mark.parametrize(
    ("token", "http", "status", "code", "pyfcm_error"),
    [
        ("unregistered-1", 404, "NOT_FOUND", "UNREGISTERED", FCMNotRegisteredError),
        ("invalid-1", 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", InvalidDataError),
        ("mismatch-1", 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", FCMSenderIdMismatchError),
        ("quota-1", 429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", FCMServerError),
        ("unavailable-1", 503, "UNAVAILABLE", "UNAVAILABLE", FCMServerError),
        ("internal-1", 500, "INTERNAL", "INTERNAL", FCMServerError),
        ("thirdparty-1", 401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", AuthenticationError),
    ],
)
def test_token_prefix_returns_fcm_error_shape(
    fake: FakeFcmControl,
    token: str,
    http: int,
    status: str,
    code: str,
    pyfcm_error: type[Exception],
) -> None:
    client = pyfcm_client(fake)
    response = raw_send(client, fcm_token=token, notification_title="t")
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["status"]) == (http, http, status)
    assert {"@type": FCM_ERROR_TYPE, "errorCode": code} in error["details"]
    assert error["message"]
    assert ("Retry-After" in response.headers) == (http == 429)
    with pytest.raises(pyfcm_error):
        client.parse_response(response)
    assert fake.messages() == []


def test_quota_exceeded_carries_configured_retry_after(fake: FakeFcmControl) -> None:
    fake.configure(retry_after_s=7)
    response = raw_send(pyfcm_client(fake), fcm_token="quota-x", notification_title="t")
    assert response.headers["Retry-After"] == "7"


def test_non_string_data_value_is_invalid_argument_with_bad_request(fake: FakeFcmControl) -> None:
    client = pyfcm_client(fake)
    response = raw_send(client, fcm_token="ok", data_payload={"count": 12})
    error = response.json()["error"]
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert error["details"][0]["fieldViolations"][0]["field"] == "message.data[0].value"


@pytest.mark.parametrize(
    "body",
    [
        {"message": {"notification": {"title": "no target"}}},
        {"message": {"token": "a", "topic": "b"}},
        {"message": {"token": "a", "bogus": 1}},
        {"message": {"token": "a", "notification": {"colour": "red"}}},
        {"message": {"token": "a", "android": "high"}},
        {"msg": {"token": "a"}},
    ],
)
def test_malformed_bodies_are_rejected(fake: FakeFcmControl, body: dict) -> None:
    client = pyfcm_client(fake)
    headers = dict(client.requests_session.headers)
    response = requests.post(client.fcm_end_point, data=json.dumps(body), headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_missing_or_unknown_bearer_is_unauthenticated(fake: FakeFcmControl) -> None:
    url = f"{fake.endpoint_base}/{fake.project_id}/messages:send"
    body = json.dumps({"message": {"token": "a"}})
    missing = requests.post(url, data=body, timeout=5)
    unknown = requests.post(url, data=body, headers={"Authorization": "Bearer nope"}, timeout=5)
    for response in (missing, unknown):
        assert response.status_code == 401
        assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert missing.json()["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"


def test_expired_token_is_refreshed_by_pyfcm(fake: FakeFcmControl) -> None:
    client = pyfcm_client(fake)
    client.notify(fcm_token="a", notification_title="t")
    fake.configure(expire_tokens=True)
    client.notify(fcm_token="b", notification_title="t")
    assert [m["token"] for m in fake.messages()] == ["a", "b"]
    assert fake.stats()["counters"]["tokens_issued"] == 2


def test_auth_broken_refuses_tokens_and_sends(fake: FakeFcmControl) -> None:
    fake.configure(auth_broken=True)
    with pytest.raises(InvalidDataError, match="invalid_grant"):
        pyfcm_client(fake).notify(fcm_token="a", notification_title="t")


def test_assertion_signed_by_another_key_is_refused(fake: FakeFcmControl, tmp_path: Path) -> None:
    info = json.loads(Path(fake.credentials_path).read_text())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(info))

    class LocalFCM(FCMNotification):
        FCM_END_POINT_BASE = fake.endpoint_base

    client = LocalFCM(service_account_file=str(forged), project_id=fake.project_id)
    with pytest.raises(InvalidDataError, match="Signature verification failed"):
        client.notify(fcm_token="a", notification_title="t")


def test_fail_next_then_recovers(fake: FakeFcmControl) -> None:
    fake.configure(fail_next=2, fail_next_code="INTERNAL")
    client = pyfcm_client(fake)
    codes = [raw_send(client, fcm_token=f"t{i}", notification_title="x").status_code for i in range(3)]
    assert codes == [500, 500, 200]


def test_random_errors_are_seeded_and_latency_applies(fake: FakeFcmControl) -> None:
    client = pyfcm_client(fake)

    def run() -> list[int]:
        fake.reset()
        fake.configure(error_rate=0.3, seed=42, latency_ms=20)
        return [raw_send(client, fcm_token=f"t{i}", notification_title="x").status_code for i in range(30)]

    started = time.perf_counter()
    first = run()
    assert time.perf_counter() - started >= 30 * 0.02
    assert first == run()
    assert set(first) == {200, 429, 503}


def test_pyfcm_async_path_reaches_the_fake(fake: FakeFcmControl) -> None:
    client = pyfcm_client(fake)
    answers = client.async_notify_multiple_devices(
        [{"fcm_token": f"dev-{i}", "notification_title": "t"} for i in range(20)]
    )
    assert all("name" in answer for answer in answers)
    assert sorted(m["token"] for m in fake.messages()) == sorted(f"dev-{i}" for i in range(20))


def test_command_line_server_writes_credentials_and_serves(tmp_path: Path) -> None:
    port = free_port()
    creds = tmp_path / "instance" / "fcm-service-account.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.fcm_server",
            "--port",
            str(port),
            "--write-credentials",
            str(creds),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for _ in range(2):
            process.stdout.readline()  # "service account written", then "listening"
        info = json.loads(creds.read_text())
        assert info["type"] == "service_account"
        assert info["token_uri"] == f"http://127.0.0.1:{port}/token"
        assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
        control = FakeFcmControl(f"http://127.0.0.1:{port}", creds, info["project_id"])

        def answers() -> bool:
            try:
                control.reset()
            except OSError:
                return False
            return True

        wait_for(answers, timeout=30, what="the fake FCM server to answer")
        pyfcm_client(control).notify(fcm_token="cli", notification_title="t")
        assert [m["token"] for m in control.messages()] == ["cli"]
    finally:
        process.terminate()
        process.wait(10)
