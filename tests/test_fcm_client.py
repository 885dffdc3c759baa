"""FcmSender against the local FCM HTTP v1 server (no Google, no database)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from pyfcm import FCMNotification

from backend.notifications.fcm import client as fcm_client
from backend.notifications.fcm.client import FcmSender, Outcome, OutgoingMessage, SendResult
from tests.fakes.fcm_server import FakeFcmControl, free_port, running_fake_fcm
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeFcmControl]:
    with running_fake_fcm() as fake:
        yield fake


@pytest.fixture()
def fake(fake_server: FakeFcmControl) -> FakeFcmControl:
    fake_server.reset()
    return fake_server


def make_sender(fake: FakeFcmControl, **options: object) -> FcmSender:
    return FcmSender(
        fake.credentials_path,
        fake.project_id,
        endpoint_base=fake.endpoint_base,
        **options,  # type: ignore[arg-type]
    )


def messages(count: int, prefix: str = "dev") -> list[OutgoingMessage]:
    return [
        OutgoingMessage(key=f"k{i}", token=f"{prefix}-{i}", title="Hello", data={"n": str(i)}) for i in range(count)
    ]


def test_send_batch_delivers_pyfcm_shaped_messages(fake: FakeFcmControl) -> None:
    message = OutgoingMessage(
        key="c1:d1",
        token="device-1",
        title="Sale",
        body="Today only",
        image="https://example.test/i.png",
        data={"campaign": "1"},
        android={"priority": "high"},
        apns={"headers": {"apns-priority": "10"}},
    )
    [result] = make_sender(fake).send_batch([message])
    assert result.outcome is Outcome.SENT and result.key == "c1:d1" and result.attempts == 1
    [received] = fake.messages()
    assert received["name"] == result.name
    pyfcm_body = FCMNotification(service_account_file="unused", project_id="p").parse_payload(
        fcm_token="device-1",
        notification_title="Sale",
        notification_body="Today only",
        notification_image="https://example.test/i.png",
        data_payload={"campaign": "1"},
        android_config={"priority": "high"},
        apns_config={"headers": {"apns-priority": "10"}},
    )
    assert received["message"] == json.loads(pyfcm_body)["message"]


def test_results_keep_input_order(fake: FakeFcmControl) -> None:
    batch = messages(300)
    results = make_sender(fake, max_in_flight=50).send_batch(batch)
    assert [r.key for r in results] == [m.key for m in batch]
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len({r.name for r in results}) == 300


@pytest.mark.parametrize(
    ("token", "outcome", "code"),
    [
        ("unregistered-1", Outcome.UNREGISTERED, "UNREGISTERED"),
        ("invalid-1", Outcome.INVALID_TOKEN, "INVALID_ARGUMENT"),
        ("mismatch-1", Outcome.SENDER_MISMATCH, "SENDER_ID_MISMATCH"),
        ("quota-1", Outcome.QUOTA_EXCEEDED, "QUOTA_EXCEEDED"),
        ("unavailable-1", Outcome.UNAVAILABLE, "UNAVAILABLE"),
        ("internal-1", Outcome.INTERNAL, "INTERNAL"),
        ("thirdparty-1", Outcome.AUTH_ERROR, "THIRD_PARTY_AUTH_ERROR"),
    ],
)
def test_fcm_errors_are_classified(fake: FakeFcmControl, token: str, outcome: Outcome, code: str) -> None:
    sender = make_sender(fake, backoff_base=0.001)
    [result] = sender.send_batch([OutgoingMessage(key="k", token=token, title="t")])
    assert (result.outcome, result.error_code) == (outcome, code)
    assert result.detail and result.name is None
    assert result.attempts == (3 if outcome in (Outcome.UNAVAILABLE, Outcome.INTERNAL) else 1)


def test_payload_problem_is_invalid_argument_not_invalid_token(fake: FakeFcmControl) -> None:
    bad = OutgoingMessage(key="k", token="device", data={"count": 12})  # type: ignore[dict-item]
    [result] = make_sender(fake).send_batch([bad])
    assert result.outcome is Outcome.INVALID_ARGUMENT
    assert "message.data[0].value" in (result.detail or "")


def test_quota_exceeded_reports_retry_after_without_sleeping(fake: FakeFcmControl) -> None:
    fake.configure(retry_after_s=120)
    started = time.perf_counter()
    [result] = make_sender(fake).send_batch([OutgoingMessage(key="k", token="quota-1", title="t")])
    assert time.perf_counter() - started < 60  # a 120 s sleep would show; a loaded machine cannot reach it
    assert result.outcome is Outcome.QUOTA_EXCEEDED and result.retry_after == 120
    assert fake.stats()["counters"]["send_requests"] == 1


def test_transient_errors_are_retried_a_bounded_number_of_times(fake: FakeFcmControl) -> None:
    sender = make_sender(fake, max_transient_retries=2, backoff_base=0.001)
    fake.configure(fail_next=2, fail_next_code="UNAVAILABLE")
    [recovered] = sender.send_batch(messages(1))
    assert (recovered.outcome, recovered.attempts) == (Outcome.SENT, 3)
    fake.reset()
    fake.configure(fail_next=10, fail_next_code="INTERNAL")
    [given_up] = sender.send_batch(messages(1))
    assert (given_up.outcome, given_up.attempts) == (Outcome.INTERNAL, 3)
    assert fake.stats()["counters"]["send_requests"] == 3


def test_access_token_is_fetched_once_for_many_sends(fake: FakeFcmControl) -> None:
    before = fake.stats()["counters"].get("token_requests", 0)
    sender = make_sender(fake)
    for _ in range(3):
        assert {r.outcome for r in sender.send_batch(messages(200))} == {Outcome.SENT}
    assert fake.stats()["counters"]["token_requests"] - before == 1


def test_expired_token_is_refreshed_once_mid_batch(fake: FakeFcmControl) -> None:
    sender = make_sender(fake)
    sender.send_batch(messages(1))
    fake.reset()
    fake.configure(expire_tokens=True)
    results = sender.send_batch(messages(200))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert fake.stats()["counters"]["tokens_issued"] == 1
    assert len(fake.messages()) == 200


class _ClockAhead:
    """The client's ``time`` module with its wall clock ``ahead_s`` on; everything else the real one."""

    def __init__(self, ahead_s: float) -> None:
        self.ahead_s = ahead_s

    def time(self) -> float:
        return time.time() + self.ahead_s

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def test_token_is_refreshed_before_it_expires(fake: FakeFcmControl, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.configure(token_ttl_s=2)
    sender = make_sender(fake, token_refresh_margin=1.5)
    sender.send_batch(messages(1))
    # The client's clock moves past the half-lifetime refresh point (1 s); the token is still good at the fake.
    monkeypatch.setattr(fcm_client, "time", _ClockAhead(1.1))
    sender.send_batch(messages(1))
    counters = fake.stats()["counters"]
    assert counters["tokens_issued"] == 2
    assert "ACCESS_TOKEN_EXPIRED" not in json.dumps(counters)


def test_broken_auth_reports_auth_error_for_every_message(fake: FakeFcmControl) -> None:
    cached = make_sender(fake)
    cached.send_batch(messages(1))
    fake.reset()
    fake.configure(auth_broken=True)
    fresh_results = make_sender(fake).send_batch(messages(5))
    cached_results = cached.send_batch(messages(5))
    for results in (fresh_results, cached_results):
        assert [r.outcome for r in results] == [Outcome.AUTH_ERROR] * 5
    assert "invalid_grant" in (fresh_results[0].detail or "")
    assert fake.messages() == []


def test_in_flight_requests_are_bounded(fake: FakeFcmControl) -> None:
    fake.configure(latency_ms=50)
    started = time.perf_counter()
    make_sender(fake, max_in_flight=5).send_batch(messages(20))
    assert time.perf_counter() - started >= 4 * 0.05


def test_unanswered_request_is_reported_as_unknown_not_resent(fake: FakeFcmControl) -> None:
    fake.configure(latency_ms=500)
    [result] = make_sender(fake, timeout=0.2).send_batch(messages(1))
    assert result.outcome is Outcome.UNKNOWN and result.attempts == 1
    assert "no answer" in (result.detail or "")
    # The server finishes the request the client gave up on; it must not be sent again.
    assert [m["token"] for m in wait_for(fake.messages, timeout=10, what="the abandoned request to land")] == ["dev-0"]
    assert fake.stats()["counters"]["send_requests"] == 1


def test_unreachable_endpoint_is_unavailable(fake: FakeFcmControl) -> None:
    sender = FcmSender(
        fake.credentials_path,
        fake.project_id,
        endpoint_base=f"http://127.0.0.1:{free_port()}/v1/projects",
        backoff_base=0.001,
    )
    [result] = sender.send_batch(messages(1))
    assert (result.outcome, result.attempts) == (Outcome.UNAVAILABLE, 3)


def test_random_429_503_every_message_delivered_exactly_once(fake: FakeFcmControl) -> None:
    """1% random 429/503; the caller resends what was not sent; nothing lost or doubled."""
    fake.configure(error_rate=0.01, seed=7, retry_after_s=1)
    sender = make_sender(fake, backoff_base=0.001)
    batch = {m.key: m for m in messages(3000)}
    pending = list(batch.values())
    finals: list[SendResult] = []
    rounds = 0
    while pending and rounds < 10:
        rounds += 1
        results = sender.send_batch(pending)
        finals += [r for r in results if r.outcome is Outcome.SENT]
        retry = [r for r in results if r.outcome is not Outcome.SENT]
        assert {r.outcome for r in retry} <= {Outcome.QUOTA_EXCEEDED, Outcome.UNAVAILABLE}
        assert all(r.retry_after == 1 for r in retry if r.outcome is Outcome.QUOTA_EXCEEDED)
        pending = [batch[r.key] for r in retry]  # a real caller reschedules after retry_after
    assert rounds >= 2, "the seeded error rate should force at least one caller retry"
    assert Counter(r.key for r in finals) == Counter(batch.keys())
    delivered = Counter(m["token"] for m in fake.messages())
    assert delivered == Counter(m.token for m in batch.values())
    counters = fake.stats()["counters"]
    assert counters["QUOTA_EXCEEDED"] > 0 and counters["UNAVAILABLE"] > 0
