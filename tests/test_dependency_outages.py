"""PostgreSQL going away: clean 503s in the error shape, then recovery without a restart."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from flask_migrate import upgrade
from pgserver._commands import pg_ctl

from backend.app import create_app
from backend.embedded import postgres_server
from backend.extensions import db
from tests import probe_api
from tests.conftest import app_settings

pytestmark = pytest.mark.chaos


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own (embedded), so stopping it disturbs nobody.

    Its folder is outside pytest's tmp tree: as root, pgserver runs postgres as its own
    user, and pytest resets /tmp/pytest-of-root to 0700 at each session, locking it out.
    """
    base = Path(tempfile.mkdtemp(prefix="gw-outage-"))
    base.chmod(0o755)
    server = postgres_server(base / "pg", stop_on_exit=False)
    try:
        yield server
    finally:
        info = server.get_postmaster_info()
        if info is not None and info.is_running():
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        shutil.rmtree(base, ignore_errors=True)


def test_database_outage_gives_503_then_recovers_without_restart(own_postgres, services, redis_conn):
    url = own_postgres.get_uri()
    app = create_app(app_settings(url, services.redis_url, DB_CONNECT_TIMEOUT_S=1))
    app.extensions["groundwork.api"].register_blueprint(probe_api.blp)
    with app.app_context():
        upgrade(directory="migrations")
        probe_api.ProbeBase.metadata.create_all(db.engine)
    client = app.test_client()
    assert client.post("/v1/probe/notes", json={"text": "before"}).status_code == 201
    assert client.get("/readyz").status_code == 200

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=own_postgres.pgdata, user=own_postgres.system_user)

    down = client.get("/v1/probe/notes")
    body = down.get_json()
    assert down.status_code == 503, body
    assert body["error"]["code"] == "database_unavailable"
    assert down.headers["Retry-After"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"]["ok"] is False
    assert client.get("/healthz").status_code == 200  # alive, just not ready

    own_postgres.ensure_postgres_running()

    assert client.get("/readyz").status_code == 200
    listed = client.get("/v1/probe/notes").get_json()["items"]
    assert [note["text"] for note in listed] == ["before"]  # nothing lost
    assert client.post("/v1/probe/notes", json={"text": "after"}).status_code == 201
