"""PostgreSQL going away: clean 503s in the error shape, then recovery without a restart."""
from __future__ import annotations

import pytest
from flask_migrate import upgrade

from backend.app import create_app
from backend.extensions import db
from tests import probe_api
from tests.conftest import app_settings
from tests.ops.postgres_server import own_postgres_server

pytestmark = pytest.mark.chaos


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own (embedded), so stopping it disturbs nobody."""
    with own_postgres_server() as server:
        yield server


def test_database_outage_gives_503_then_recovers_without_restart(own_postgres, services, redis_conn):
    url = own_postgres.url
    app = create_app(app_settings(url, services.redis_url, DB_CONNECT_TIMEOUT_S=1))
    app.extensions["groundwork.api"].register_blueprint(probe_api.blp)
    with app.app_context():
        upgrade(directory="migrations")
        probe_api.ProbeBase.metadata.create_all(db.engine)
    client = app.test_client()
    assert client.post("/v1/probe/notes", json={"text": "before"}).status_code == 201
    assert client.get("/readyz").status_code == 200

    own_postgres.stop()

    down = client.get("/v1/probe/notes")
    body = down.get_json()
    assert down.status_code == 503, body
    assert body["error"]["code"] == "database_unavailable"
    assert down.headers["Retry-After"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"]["ok"] is False
    assert client.get("/healthz").status_code == 200  # alive, just not ready

    own_postgres.start()

    assert client.get("/readyz").status_code == 200
    listed = client.get("/v1/probe/notes").get_json()["items"]
    assert [note["text"] for note in listed] == ["before"]  # nothing lost
    assert client.post("/v1/probe/notes", json={"text": "after"}).status_code == 201
