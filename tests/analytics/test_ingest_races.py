"""Races on committed data: a batch retried while the first send is still in flight counts once."""
from __future__ import annotations

import threading

from sqlalchemy import text

from backend.extensions import db
from tests.analytics.conftest import event


def test_ten_concurrent_sends_of_one_batch_store_it_once(committed_app):
    batch = {"install_id": "install-race-01", "events": [event(f"e{i}") for i in range(50)]}
    overlapping = {"install_id": "install-race-02", "events": batch["events"][:25] + [event("own")]}
    results: list = []
    barrier = threading.Barrier(10)

    def send(body: dict) -> None:
        client = committed_app.test_client()
        barrier.wait()
        answer = client.post("/v1/analytics/events", json=body)
        results.append((answer.status_code, answer.get_json()))

    threads = [threading.Thread(target=send, args=(batch if i < 8 else overlapping,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200] * 10, results
    assert sum(body["accepted"] for _, body in results) == 51  # 50 of the batch, and "own" once
    with committed_app.app_context():
        stored = db.session.execute(text("SELECT count(*), count(DISTINCT event_id) FROM analytics_events")).one()
        days = db.session.execute(text("SELECT sum(events) FROM analytics_user_days")).scalar()
        db.session.remove()
    assert tuple(stored) == (51, 51) and days == 51
