"""SIGTERM to gunicorn (production config) lets the request in flight finish."""
from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request

import pytest

from tests.e2e.processes import environment_of, start_gunicorn

pytestmark = pytest.mark.e2e


def test_sigterm_finishes_the_request_in_flight_then_exits_cleanly(app, tmp_path):
    marker = tmp_path / "in-flight"
    env = environment_of(app, SLOW_MARKER=str(marker))
    server = start_gunicorn("tests.e2e.slow_wsgi:app", tmp_path, env=env, workers=1)
    answers: list[tuple[int, dict]] = []

    def call_slow() -> None:
        with urllib.request.urlopen(server.url + "/slow", timeout=30) as response:
            answers.append((response.status, json.loads(response.read())))

    caller = threading.Thread(target=call_slow)
    caller.start()
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:  # wait until it is inside the worker
        time.sleep(0.05)
    assert marker.exists(), server.log_tail()
    server.process.send_signal(signal.SIGTERM)
    caller.join(30)
    exit_code = server.process.wait(30)
    assert answers == [(200, {"status": "finished"})], server.log_tail()
    assert exit_code == 0, server.log_tail()
    with pytest.raises(OSError):  # and nothing listens any more
        urllib.request.urlopen(server.url + "/healthz", timeout=2)
