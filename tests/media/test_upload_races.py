"""Concurrent requests on committed data: the quota and a completion hold under races."""
from __future__ import annotations

import threading
from collections import Counter

from backend.common.jobs import get_queue
from backend.extensions import db
from tests.media.samples import jpeg

MiB = 1024 * 1024


def _concurrently(app, count, request):
    results: list = []
    barrier = threading.Barrier(count)

    def run():
        client = app.test_client()
        barrier.wait()
        results.append(request(client))

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_twenty_parallel_upload_requests_cannot_pass_the_quota(committed_app, make_user, auth_headers, monkeypatch):
    monkeypatch.setitem(committed_app.config, "MEDIA_QUOTA_BYTES", 5 * MiB)
    with committed_app.app_context():
        headers = auth_headers(make_user())
    answers = _concurrently(committed_app, 20, lambda c: c.post("/v1/media", headers=headers, json={
        "kind": "photo", "content_type": "image/jpeg", "size": MiB}).status_code)
    assert Counter(answers) == Counter({201: 5, 409: 15})


def test_ten_parallel_completions_queue_the_processing_once(committed_app, make_user, auth_headers, redis_conn):
    from tests.media.conftest import Transfer

    data = jpeg()
    with committed_app.app_context():
        headers = auth_headers(make_user())
        client = committed_app.test_client()
        asked = client.post("/v1/media", headers=headers, json={
            "kind": "photo", "content_type": "image/jpeg", "size": len(data)}).get_json()
        assert Transfer(committed_app, client).put(asked["upload"]["request"], data) == 200
    media_id = asked["media"]["id"]
    answers = _concurrently(committed_app, 10, lambda c: c.post(f"/v1/media/{media_id}/complete", headers=headers))
    assert [a.status_code for a in answers] == [200] * 10
    assert {a.get_json()["status"] for a in answers} == {"pending"}
    with committed_app.app_context():
        assert get_queue("media").count == 1
        db.session.remove()
