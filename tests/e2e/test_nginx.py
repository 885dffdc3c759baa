"""The real nginx binary with the loopback variant of the production config, in front of
a real gunicorn (production config) serving ``wsgi:app`` on the test database and Redis.

nginx missing is a failure, never a skip: ``deploy/install-system-deps.sh`` installs it.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import selectors
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared sign-in fixtures
from tests.e2e.processes import (
    INSTALL_HINT,
    Server,
    environment_of,
    nginx_binary,
    start_gunicorn,
    start_nginx,
    start_stream_server,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
FORGED_ADDRESS = "203.0.113.66"  # TEST-NET-3: never a real client here
LIMITED_PATH = "/v1/me"  # an API route under the default per-address limit
ANSWERS_AT_ONCE_S = 5.0  # with streams on web threads: nothing for the 55 s stream lifetime
# nginx's per-address limits (nginx/groundwork-common.conf): 127.0.0.1 is exempt as this
# machine, so each limit test sends from a loopback address of its own.
BURST = 60
IN_FLIGHT = 40
BURST_WAVE = 20


class Answer:
    """One HTTP response read in full, with headers kept as a list (duplicates visible)."""

    def __init__(self, response: http.client.HTTPResponse):
        self.status = response.status
        self.header_list = response.getheaders()
        self.body = response.read()

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [value for key, value in self.header_list if key.lower() == name.lower()]

    def json(self) -> Any:
        body = self.body
        if self.header("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)


def call(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source: str = "127.0.0.1",
) -> Answer:
    """One request on a fresh connection; no automatic decompression or redirects."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        return Answer(connection.getresponse())
    finally:
        connection.close()


def access_log_entries(nginx: Server) -> list[dict[str, Any]]:
    """nginx's JSON access log lines so far."""
    path = Path(nginx.log_path).parent / "access.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def logged_entries(nginx: Server, matches: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The access-log lines that match, waiting for the first one to be written.

    nginx writes its log line after the response has reached the client, so a line
    read right after the response may not be there yet.
    """
    return wait_for(lambda: [e for e in access_log_entries(nginx) if matches(e)], timeout=10,
                    what="nginx's access-log line")


@pytest.fixture(scope="module")
def stack(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """gunicorn (production config, one trusted proxy) and the stream server behind nginx (test config)."""
    if nginx_binary() is None:
        pytest.fail(f"nginx is not installed: {INSTALL_HINT}", pytrace=False)
    run_dir = tmp_path_factory.mktemp("nginx-e2e")
    env = environment_of(app, PROXY_FIX_X_FOR="1", LOG_LEVEL="INFO", LOG_JSON="true")
    gunicorn = start_gunicorn("wsgi:app", run_dir, env=env, workers=2)
    streams = None
    try:
        streams = start_stream_server(run_dir, env=env)
        nginx = start_nginx(run_dir, upstream_port=gunicorn.port, stream_port=streams.port)
    except Exception:
        gunicorn.stop()
        if streams is not None:
            streams.stop()
        raise
    yield {"gunicorn": gunicorn, "nginx": nginx, "streams": streams}
    nginx.stop()
    assert streams.stop() == 0, f"the stream server did not stop cleanly:\n{streams.log_tail()}"
    assert gunicorn.stop() == 0, f"gunicorn did not stop cleanly:\n{gunicorn.log_tail()}"


def test_nginx_healthz_passes_through_to_gunicorn(stack: dict[str, Server]) -> None:
    answer = call(stack["nginx"].port, "GET", "/healthz")

    assert answer.status == 200
    assert answer.json() == {"status": "ok"}
    assert answer.header("Server") == "nginx"  # no version, no gunicorn banner


def test_nginx_client_address_seen_by_app_is_the_peer_not_a_forged_header(
    stack: dict[str, Server],
    redis_conn: redis.Redis,
) -> None:
    """The rate-limit key of an API route is the address the app sees (after ProxyFix).

    /v1/me without a token answers 401, but the per-address limit is counted first.
    """
    nginx, gunicorn = stack["nginx"], stack["gunicorn"]

    through_nginx = call(nginx.port, "GET", LIMITED_PATH, {"X-Forwarded-For": FORGED_ADDRESS})
    # Control: gunicorn itself trusts exactly one X-Forwarded-For hop (that is why it must
    # only be reachable through nginx), so the key really reflects the address it resolved.
    direct = call(gunicorn.port, "GET", LIMITED_PATH, {"X-Forwarded-For": "198.51.100.23"})

    assert through_nginx.status == direct.status == 401
    assert through_nginx.header("RateLimit-Limit"), "the route must be rate limited for this check"
    keys = [key.decode() for key in redis_conn.keys("*groundwork:rl*")]
    assert any("/198.51.100.23/" in key for key in keys), keys
    assert any("/127.0.0.1/" in key for key in keys), keys
    assert not any(FORGED_ADDRESS in key for key in keys), keys


def test_nginx_oversized_body_gets_413_in_the_error_shape_before_gunicorn(
    stack: dict[str, Server],
) -> None:
    nginx = stack["nginx"]
    declared = 11 * 1024 * 1024  # over client_max_body_size 10m
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/anything HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nX-Request-ID: too-big-1\r\n"
            + f"Content-Length: {declared}\r\nConnection: close\r\n\r\n".encode()
            + b"[" * 65536
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")

    assert head.startswith(b"HTTP/1.1 413"), head
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large"
    assert error["request_id"] == "too-big-1"
    entry = logged_entries(nginx, lambda e: e["request_id"] == "too-big-1")
    assert entry[-1]["upstream_status"] == "", "the body must not reach gunicorn"


def test_nginx_gzips_json_only_when_the_client_accepts_it(stack: dict[str, Server]) -> None:
    port = stack["nginx"].port

    zipped = call(port, "GET", "/openapi.json", {"Accept-Encoding": "gzip"})
    plain = call(port, "GET", "/openapi.json")

    assert zipped.status == plain.status == 200
    assert zipped.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in (zipped.header("Vary") or "")
    assert len(zipped.body) < len(plain.body)
    assert plain.header("Content-Encoding") is None
    assert zipped.json() == json.loads(plain.body)


@pytest.mark.parametrize("path", ["/healthz", "/no-such-page", "/openapi.json"])
def test_nginx_security_headers_present_once(stack: dict[str, Server], path: str) -> None:
    answer = call(stack["nginx"].port, "GET", path)

    for name, value in SECURITY_HEADERS.items():
        assert answer.headers_named(name) == [value], (path, name, answer.header_list)


def test_nginx_passes_a_client_request_id_through_to_the_app(stack: dict[str, Server]) -> None:
    nginx = stack["nginx"]

    answer = call(nginx.port, "GET", "/no-such-page", {"X-Request-ID": "mobile-abc.123"})

    assert answer.status == 404
    assert answer.headers_named("X-Request-ID") == ["mobile-abc.123"]
    assert answer.json()["error"]["request_id"] == "mobile-abc.123"
    assert logged_entries(nginx, lambda e: e["request_id"] == "mobile-abc.123" and e["status"] == 404)


@pytest.mark.parametrize("sent", [None, "bad id with spaces", "x" * 200])
def test_nginx_generates_a_request_id_the_app_and_its_log_share(
    stack: dict[str, Server],
    sent: str | None,
) -> None:
    nginx = stack["nginx"]
    headers = {"X-Request-ID": sent} if sent is not None else {}

    answer = call(nginx.port, "GET", "/no-such-page", headers)

    request_id = answer.header("X-Request-ID")
    assert request_id and re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    assert answer.json()["error"]["request_id"] == request_id
    assert logged_entries(nginx, lambda e: e["request_id"] == request_id)


def test_nginx_caches_swagger_assets(stack: dict[str, Server]) -> None:
    port = stack["nginx"].port
    path = "/docs/assets/swagger-ui.css"

    first = call(port, "GET", path)
    second = call(port, "GET", path)

    assert first.status == second.status == 200
    assert second.header("X-Cache-Status") == "HIT"
    assert second.body == first.body
    assert second.header("Cache-Control") == "max-age=3600"
    assert second.headers_named("X-Content-Type-Options") == ["nosniff"]


def test_nginx_metrics_allowed_by_peer_address_not_by_forwarded_header(
    stack: dict[str, Server],
) -> None:
    """127.0.0.2 is loopback but not on the allow list: it stands in for a public peer."""
    port = stack["nginx"].port

    outsider = call(port, "GET", "/metrics", {"X-Forwarded-For": "127.0.0.1"}, source="127.0.0.2")
    insider = call(port, "GET", "/metrics")

    assert outsider.status == 403
    assert outsider.json()["error"]["code"] == "forbidden"
    assert insider.status == 200


def test_nginx_answers_a_burst_from_one_address_with_429_before_gunicorn(stack: dict[str, Server]) -> None:
    """Past the burst, nginx answers 429 itself; another address is served meanwhile."""
    nginx = stack["nginx"]
    answers: dict[str, Answer] = {}
    sent = 0
    # Waves of concurrent requests outpace the 30 tokens a second that come back however
    # slow this machine is (each wave stays under the 40-in-flight limit). The bound only
    # keeps a broken config from looping.
    with ThreadPoolExecutor(max_workers=BURST_WAVE) as pool:
        while not any(a.status == 429 for a in answers.values()) and sent < 2000:
            ids = [f"burst-{n}" for n in range(sent, sent + BURST_WAVE)]
            sent += BURST_WAVE
            waves = pool.map(lambda rid: (rid, call(nginx.port, "GET", "/healthz", {"X-Request-ID": rid},
                                                    source="127.0.0.3")), ids)
            answers.update(waves)
    neighbour = call(nginx.port, "GET", "/healthz", source="127.0.0.4")

    refused = {rid: a for rid, a in answers.items() if a.status == 429}
    assert refused, f"no 429 in {sent} requests"
    assert {a.status for a in answers.values()} == {200, 429}
    assert sum(a.status == 200 for a in answers.values()) >= BURST + 1, "the burst itself must be served"
    request_id, answer = next(iter(refused.items()))
    assert answer.header("Retry-After") == "1"
    assert answer.headers_named("X-Content-Type-Options") == ["nosniff"]
    assert answer.json()["error"] == {
        "code": "rate_limited",
        "message": "Too many requests from your address; retry shortly.",
        "details": {"scope": "address"},
        "request_id": request_id,
    }
    assert neighbour.status == 200
    entry = logged_entries(nginx, lambda e: e["request_id"] == request_id)
    assert entry[-1]["status"] == 429 and entry[-1]["upstream_status"] == "", "refused before gunicorn"


def test_nginx_refuses_connections_past_the_per_address_limit_with_429(tmp_path: Path) -> None:
    """Requests held by a stalled upstream fill the address's slots; one more is refused."""
    if nginx_binary() is None:
        pytest.fail(f"nginx is not installed: {INSTALL_HINT}", pytrace=False)
    stalled = socket.socket()  # accepts connections (kernel backlog) and never answers
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(IN_FLIGHT * 2)
    nginx = start_nginx(tmp_path, upstream_port=stalled.getsockname()[1], ready_path=None)
    clients: list[socket.socket] = []
    try:
        for n in range(IN_FLIGHT + 1):
            sock = socket.create_connection(("127.0.0.1", nginx.port), timeout=10, source_address=("127.0.0.5", 0))
            sock.sendall(f"GET /v1/me HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: held-{n}\r\n"
                         "Connection: close\r\n\r\n".encode())
            clients.append(sock)
        watching = selectors.DefaultSelector()  # not select.select: no limit on descriptor numbers
        for sock in clients:
            watching.register(sock, selectors.EVENT_READ)
        answered = wait_for(lambda: [key.fileobj for key, _ in watching.select(0.1)], timeout=10,
                            what="nginx to refuse the connection over the limit")
        watching.close()
        assert len(answered) == 1, "every other request is held by the stalled upstream"
        raw = b""
        while chunk := answered[0].recv(65536):  # `Connection: close`: the answer ends at EOF
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
    finally:
        for sock in clients:
            sock.close()
        nginx.stop()
        stalled.close()

    assert head.startswith(b"HTTP/1.1 429"), head
    error = json.loads(body)["error"]
    assert error["code"] == "rate_limited" and error["details"] == {"scope": "address"}
    assert error["request_id"].startswith("held-")


def test_nginx_answers_503_in_the_error_shape_when_gunicorn_is_down(
    tmp_path: Path,
) -> None:
    if nginx_binary() is None:
        pytest.fail(f"nginx is not installed: {INSTALL_HINT}", pytrace=False)
    with socket.socket() as down:  # bound, never listening: refused, and no one else can take it
        down.bind(("127.0.0.1", 0))
        nginx = start_nginx(tmp_path, upstream_port=down.getsockname()[1], ready_path=None)
        try:
            answer = call(nginx.port, "GET", "/v1/anything", {"X-Request-ID": "down-1"})
        finally:
            nginx.stop()

    assert answer.status == 503
    assert answer.header("Retry-After") == "5"
    assert answer.json()["error"] == {
        "code": "service_unavailable",
        "message": "The service is restarting or overloaded; retry shortly.",
        "details": {},
        "request_id": "down-1",
    }
    assert answer.headers_named("X-Content-Type-Options") == ["nosniff"]
