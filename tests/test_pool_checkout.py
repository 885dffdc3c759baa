"""Pooled PostgreSQL connections: one the server hung up on is replaced at checkout, a live one is reused."""
from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import text

from backend.app import create_app
from backend.extensions import db
from tests.conftest import app_settings
from tests.waiting import wait_for


@pytest.fixture
def own_pool_app(database_url, services):
    """An app with an engine (and pool) of its own: the pool holds only what this test checks out."""
    app = create_app(app_settings(database_url, services.redis_url))
    yield app
    with app.app_context():
        db.engine.dispose()


def _backend_pid(app) -> int:
    with app.app_context():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()  # the connection goes back to the pool
    return pid


def test_live_pooled_connection_is_reused(own_pool_app):
    assert _backend_pid(own_pool_app) == _backend_pid(own_pool_app)


def test_connection_the_server_ended_is_replaced_without_an_error(own_pool_app, database_url):
    first = _backend_pid(own_pool_app)
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (first,))

        def gone() -> bool:
            with admin.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (first,))
                return cursor.fetchone()[0] == 0

        wait_for(gone, timeout=10, what="the terminated backend to exit")
    finally:
        admin.close()
    second = _backend_pid(own_pool_app)  # raised OperationalError before the checkout check
    assert second != first
