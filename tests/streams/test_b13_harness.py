"""B13's stream client (bench/b13_streams.py), small, against the real stream server."""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

from backend.common.jobs import redis_client
from backend.notifications import inbox
from bench.b13_streams import _client, prepare
from tests.e2e.processes import environment_of
from tests.streams.conftest import get_json
from tests.waiting import wait_for


def _hold_and_announce(streams: str, app, holders: list[tuple[str, str]], report) -> dict:  # noqa: ANN001
    """B13's client holds a stream per (user id, token) for 8 s; one event is announced to each user."""
    url = f"{streams}/v1/notifications/inbox/stream"
    client = threading.Thread(target=lambda: asyncio.run(_client(url, holders, 8.0, report)), daemon=True)
    client.start()
    wait_for(lambda: get_json(f"{streams}/readyz")[1]["open_streams"] >= len(holders), timeout=10,
             what=f"{len(holders)} open streams")
    with app.app_context():
        connection = redis_client()
        for user_id, _ in holders:
            inbox.announce(connection, [(uuid.UUID(user_id), {"id": str(uuid.uuid4()), "bench_sent_at": time.time()})])
    client.join(30)
    wait_for(report.exists, timeout=10, what="the client's report")
    return json.loads(report.read_text())


def test_b13_client_holds_every_stream_and_times_announced_events(streams, committed_app, holder, tmp_path):
    made = [holder() for _ in range(5)]
    tokens = [(str(user_id), headers["Authorization"].removeprefix("Bearer ")) for user_id, headers in made]
    state = _hold_and_announce(streams, committed_app, tokens, tmp_path / "client.json")
    assert state["opened"] == 5 and state["errors"] == 0, state
    assert len(state["latencies_ms"]) == 5 and all(0 <= ms < 5000 for ms in state["latencies_ms"])


def test_b13_bulk_seeding_makes_users_whose_tokens_open_streams(streams, committed_app, tmp_path):
    """prepare() writes users and sessions in one statement and signs tokens in-process: the stream
    server accepts each token and checks its session as after a real sign-in."""
    holders = prepare(environment_of(committed_app), 4)
    assert len({user_id for user_id, _ in holders}) == 4
    state = _hold_and_announce(streams, committed_app, holders, tmp_path / "client.json")
    assert state["opened"] == 4 and state["errors"] == 0, state
    assert len(state["latencies_ms"]) == 4
