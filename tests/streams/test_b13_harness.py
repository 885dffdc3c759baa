"""B13's stream client (bench/b13_streams.py), small, against the real stream server."""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

from backend.common.jobs import redis_client
from backend.notifications import inbox
from bench.b13_streams import _client
from tests.streams.conftest import get_json
from tests.waiting import wait_for


def test_b13_client_holds_every_stream_and_times_announced_events(streams, committed_app, holder, tmp_path):
    holders = [holder() for _ in range(5)]
    report = tmp_path / "client.json"
    url = f"{streams}/v1/notifications/inbox/stream"
    tokens = [(str(user_id), headers["Authorization"].removeprefix("Bearer ")) for user_id, headers in holders]
    client = threading.Thread(target=lambda: asyncio.run(_client(url, tokens, 8.0, report)), daemon=True)
    client.start()
    wait_for(lambda: get_json(f"{streams}/readyz")[1]["open_streams"] >= 5, timeout=10, what="5 open streams")
    with committed_app.app_context():
        connection = redis_client()
        for user_id, _ in holders:
            inbox.announce(connection, [(user_id, {"id": str(uuid.uuid4()), "bench_sent_at": time.time()})])
    client.join(30)
    wait_for(report.exists, timeout=10, what="the client's report")
    state = json.loads(report.read_text())
    assert state["opened"] == 5 and state["errors"] == 0, state
    assert len(state["latencies_ms"]) == 5 and all(0 <= ms < 5000 for ms in state["latencies_ms"])
