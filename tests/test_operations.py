"""Health, readiness, metrics, configuration and the OpenAPI document."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from openapi_spec_validator import validate

from backend.app import create_app
from backend.config import ConfigError, load_config
from tests.conftest import app_settings


def test_healthz_answers_without_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "RateLimit-Limit" not in response.headers  # probes never cost a Redis round trip


def test_readyz_reports_every_dependency_ready(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "storage"}


def test_readyz_is_503_and_says_why_when_redis_is_unreachable(database_url):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(app_settings(database_url, f"redis://127.0.0.1:{port}/0"))
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_readyz_stays_ready_while_a_queue_is_backed_up(app, redis_conn):
    """A backlog is work waiting, not a reason to take every web pod out of the balancer."""
    from backend.common.jobs import get_queue

    with app.app_context():
        queue = get_queue("media")
        for _ in range(50):
            queue.enqueue("jobs.maintenance.purge_idempotency_keys")
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert "queues" not in response.get_json()["checks"]


def test_metrics_report_queue_depth_and_oldest_job_age(app, redis_conn):
    from backend.common.jobs import get_queue
    from backend.operations.metrics import oldest_job_age_s

    with app.app_context():
        queue = get_queue("media")
        oldest = queue.enqueue("jobs.maintenance.purge_idempotency_keys")
        queue.enqueue("jobs.maintenance.purge_idempotency_keys")
        # Backdate the head job: its age is what the gauge reports, whatever the clock did since.
        redis_conn.hset(oldest.key, "enqueued_at", "2020-01-01T00:00:00.000000Z")
        assert oldest_job_age_s(get_queue("push")) == 0.0
    text = app.test_client().get("/metrics").get_data(as_text=True)
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
               if line.startswith("groundwork_queue_")}
    assert samples['groundwork_queue_depth{queue="media"}'] == 2.0
    assert samples['groundwork_queue_oldest_job_age_seconds{queue="media"}'] > 150_000_000  # since 2020
    assert samples['groundwork_queue_oldest_job_age_seconds{queue="push"}'] == 0.0


def test_hung_redis_does_not_hang_requests(database_url):
    """A Redis that accepts connections and never answers costs at most its socket timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(50)
    held = []
    stop = threading.Event()

    def accept_and_stall():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_and_stall, daemon=True)
    thread.start()
    try:
        app = create_app(app_settings(database_url, f"redis://127.0.0.1:{server.getsockname()[1]}/0",
                                      REDIS_SOCKET_TIMEOUT_S=0.3))
        started = time.monotonic()
        response = app.test_client().get("/readyz")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.get_json()["checks"]["redis"]["ok"] is False
        assert elapsed < 3.0, f"readyz took {elapsed:.1f}s against a hung Redis"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_metrics_expose_requests_latency_and_queues(client):
    client.get("/healthz")
    client.get("/v1/does-not-exist")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'groundwork_http_requests_total{endpoint="/healthz",method="GET",status="200"}' in text
    assert 'groundwork_http_request_duration_seconds_bucket{endpoint="/healthz"' in text
    assert 'endpoint="unmatched",method="GET",status="404"' in text
    assert 'groundwork_queue_depth{queue="push"}' in text
    assert 'groundwork_jobs{queue="default",state="failed"}' in text


def test_production_refuses_missing_secrets():
    with pytest.raises(ConfigError) as error:
        load_config({"ENV": "production", "DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"})
    message = str(error.value)
    assert "SECRET_KEY: required in production" in message
    assert "JWT_PRIVATE_KEYS: required in production" in message


def test_bad_values_are_reported_by_name():
    with pytest.raises(ConfigError, match="DB_POOL_SIZE"):
        load_config({"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x", "DB_POOL_SIZE": "many"})
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        load_config({"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x", "STORAGE_BACKEND": "s3"})


def test_openapi_spec_is_valid_and_documents_every_operation(client):
    spec = client.get("/openapi.json").get_json()
    validate(spec)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "Error" in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert any(code.startswith(("4", "default")) for code in operation["responses"]), (
                f"{method.upper()} {path} documents no error response")


def test_error_answers_are_documented_per_operation(client):
    spec = client.get("/openapi.json").get_json()
    me = spec["paths"]["/v1/me"]["get"]["responses"]
    assert {"401", "403", "429", "503"} <= set(me)
    assert me["401"] == {"$ref": "#/components/responses/UNAUTHORIZED"}
    login = spec["paths"]["/v1/auth/login"]["post"]["responses"]
    # a suspended or unverified account is refused with 403; no catch-all answer hides the real statuses
    assert {"400", "403", "413", "415", "422", "429"} <= set(login) and "default" not in login
    error_ref = {"$ref": "#/components/schemas/Error"}
    assert spec["components"]["responses"]["UNAUTHORIZED"]["content"]["application/json"]["schema"] == error_ref


def test_spec_and_docs_are_not_rate_limited(client):
    assert "RateLimit-Limit" not in client.get("/openapi.json").headers


def test_swagger_ui_is_served_from_local_assets(client):
    page = client.get("/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.get_data()) > 100_000


def test_logs_are_json_lines_carrying_the_request_id(database_url, services, capsys):
    app = create_app(app_settings(database_url, services.redis_url, LOG_JSON=True, LOG_LEVEL="INFO"))

    @app.get("/v1/_raise")
    def _raise():  # a route added for this test only: an unexpected failure
        raise RuntimeError("kaboom")

    response = app.test_client().get("/v1/_raise", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 500
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    entry = next(line for line in lines if line["message"] == "unhandled error")
    assert entry["request_id"] == "trace-42"
    assert entry["level"] == "ERROR" and entry["path"] == "/v1/_raise"
    assert "kaboom" in entry["exc"]


def test_app_starts_and_serves_with_rate_limiting_disabled(database_url, services):
    app = create_app(app_settings(database_url, services.redis_url, RATELIMIT_ENABLED=False))
    response = app.test_client().get("/v1/me")
    assert response.status_code == 401 and "RateLimit-Limit" not in response.headers


def test_api_answers_never_open_or_set_cookie_sessions(client):
    client.get("/admin/login")  # the console does use a signed cookie session
    response = client.post("/v1/auth/login", json={"email": "nobody@example.test", "password": "x" * 12})
    assert response.status_code in (401, 403)
    assert "Set-Cookie" not in response.headers
