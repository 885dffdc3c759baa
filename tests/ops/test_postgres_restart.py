"""PostgreSQL restarted under load: no request hangs, nothing is written twice or lost.

Clients create notes with an ``Idempotency-Key`` each and retry with the same key and
body whenever they get a 503 or a connection error, as the API asks them to. The
server is stopped (fast shutdown: connections cut mid-transaction) and started again
while they run.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select, text

from backend.app import create_app
from backend.extensions import db
from tests import probe_api
from tests.conftest import app_settings
from tests.ops.postgres_server import OwnPostgres, own_postgres_server
from tests.waiting import wait_for

pytestmark = pytest.mark.chaos

STATEMENT_TIMEOUT_MS = 2000
CONNECT_TIMEOUT_S = 1
# At worst a request connects once and runs into the statement timeout (seen: 0.3 s).
NO_ANSWER_LATER_THAN_S = STATEMENT_TIMEOUT_MS / 1000 + CONNECT_TIMEOUT_S
CLIENTS = 4
KEY_DEADLINE_S = 60


@pytest.fixture
def postgres() -> Iterator[OwnPostgres]:
    with own_postgres_server() as server:
        yield server


@pytest.fixture
def notes_app(postgres: OwnPostgres, services) -> Iterator[Flask]:
    app = create_app(app_settings(postgres.url, services.redis_url, DB_STATEMENT_TIMEOUT_MS=STATEMENT_TIMEOUT_MS,
                                  DB_CONNECT_TIMEOUT_S=CONNECT_TIMEOUT_S, RATELIMIT_ENABLED=False))
    app.extensions["groundwork.api"].register_blueprint(probe_api.blp)
    with app.app_context():
        upgrade(directory="migrations")
        probe_api.ProbeBase.metadata.create_all(db.engine)
        db.engine.dispose()
    yield app
    with app.app_context():
        db.engine.dispose()


@dataclass
class Load:
    """Clients creating notes until told to stop; what each attempt took and answered."""

    app: Flask
    stop: threading.Event = field(default_factory=threading.Event)
    answers: Counter = field(default_factory=Counter)
    slowest_s: float = 0.0
    completed: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, number: int) -> None:
        client = self.app.test_client()
        serial = 0
        while not self.stop.is_set():
            serial += 1
            key = f"note-{number}-{serial}"
            deadline = time.monotonic() + KEY_DEADLINE_S
            while True:
                started = time.monotonic()
                answer = client.post("/v1/probe/notes", json={"text": key}, headers={"Idempotency-Key": key})
                took = time.monotonic() - started
                code = (answer.get_json() or {}).get("error", {}).get("code", "")
                with self.lock:
                    self.answers[(answer.status_code, code)] += 1
                    self.slowest_s = max(self.slowest_s, took)
                if answer.status_code == 201:
                    with self.lock:
                        self.completed.append(key)
                    break
                if time.monotonic() > deadline:
                    with self.lock:
                        self.stuck.append(f"{key}: {answer.status_code} {code}")
                    break
                time.sleep(0.05)  # the client's back-off before the retry

    def created(self) -> int:
        with self.lock:
            return len(self.completed)


def test_postgres_restart_under_load_answers_in_time_and_writes_each_note_once(notes_app, postgres):
    load = Load(notes_app)
    threads = [threading.Thread(target=load.client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: load.created() >= 40, timeout=60, what="notes before the restart")
        postgres.stop()
        wait_for(lambda: load.answers[(503, "database_unavailable")] >= CLIENTS, timeout=30,
                 what="503s while PostgreSQL is down")
        postgres.start()
        after_restart = load.created()
        wait_for(lambda: load.created() >= after_restart + 40, timeout=60, what="notes after the restart")
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(KEY_DEADLINE_S + 10)

    assert not load.stuck, f"keys never answered 201: {load.stuck[:5]} (answers: {dict(load.answers)})"
    unexpected = {k: n for k, n in load.answers.items()
                  if k not in {(201, ""), (503, "database_unavailable"), (409, "idempotency_in_progress")}}
    assert not unexpected, f"answers other than 201/503/409: {unexpected}"
    assert load.slowest_s < NO_ANSWER_LATER_THAN_S, f"a request took {load.slowest_s:.1f}s"
    with notes_app.app_context():
        counts = dict(db.session.execute(select(probe_api.ProbeNote.text, func.count())
                                         .group_by(probe_api.ProbeNote.text)).all())
        db.session.remove()
    twice = {text: n for text, n in counts.items() if n > 1}
    assert not twice, f"notes written more than once: {twice}"
    assert set(counts) == set(load.completed), "a note the client was told about is missing, or one more exists"


def test_hung_statement_is_cut_by_the_timeout_and_the_retry_writes_once(notes_app):
    """A write stuck behind a lock answers 503 at the statement timeout, leaving nothing behind."""
    client = notes_app.test_client()
    headers = {"Idempotency-Key": "stuck-note"}
    with notes_app.app_context():
        blocker = db.engine.connect()
        blocker.execute(text("LOCK TABLE probe_notes IN ACCESS EXCLUSIVE MODE"))  # held until rollback
        try:
            started = time.monotonic()
            stuck = client.post("/v1/probe/notes", json={"text": "stuck"}, headers=headers)
            took = time.monotonic() - started
        finally:
            blocker.rollback()
            blocker.close()
    assert stuck.status_code == 503 and stuck.get_json()["error"]["code"] == "database_unavailable"
    assert STATEMENT_TIMEOUT_MS / 1000 <= took < NO_ANSWER_LATER_THAN_S, f"took {took:.2f}s"
    retry = client.post("/v1/probe/notes", json={"text": "stuck"}, headers=headers)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert client.post("/v1/probe/notes", json={"text": "stuck"}, headers=headers).headers["Idempotent-Replayed"]
    with notes_app.app_context():
        assert db.session.scalar(select(func.count()).where(probe_api.ProbeNote.text == "stuck")) == 1
        db.session.remove()


def test_duplicate_sent_while_the_first_runs_waits_and_replays_its_answer(notes_app):
    """Two requests with one key at once: the second waits for the first's commit, then replays it."""
    client_a, client_b = notes_app.test_client(), notes_app.test_client()
    headers = {"Idempotency-Key": "twice-at-once"}
    answers: dict[str, object] = {}
    with notes_app.app_context():
        blocker = db.engine.connect()
        blocker.execute(text("LOCK TABLE probe_notes IN SHARE MODE"))  # writes wait, the key claim does not
        try:
            first = threading.Thread(target=lambda: answers.update(
                a=client_a.post("/v1/probe/notes", json={"text": "once"}, headers=headers)))
            first.start()
            wait_for(lambda: _waiting_on_lock(blocker), timeout=10, what="the first request to reach the lock")
            second = threading.Thread(target=lambda: answers.update(
                b=client_b.post("/v1/probe/notes", json={"text": "once"}, headers=headers)))
            second.start()
            wait_for(lambda: _waiting_on_lock(blocker, count=2), timeout=10, what="the duplicate to wait")
        finally:
            blocker.rollback()
            blocker.close()
        first.join(10)
        second.join(10)
    a, b = answers["a"], answers["b"]
    assert a.status_code == b.status_code == 201, (a.get_json(), b.get_json())
    assert a.get_json() == b.get_json() and b.headers["Idempotent-Replayed"] == "true"
    with notes_app.app_context():
        assert db.session.scalar(select(func.count()).where(probe_api.ProbeNote.text == "once")) == 1
        db.session.remove()


def _waiting_on_lock(conn, count: int = 1) -> bool:
    """Whether ``count`` other sessions of this database wait on a lock."""
    conn.execute(text("SELECT pg_stat_clear_snapshot()"))  # else the view is frozen for the transaction
    waiting = conn.execute(text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar_one()
    return waiting >= count
