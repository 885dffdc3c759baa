"""The production gunicorn config keeps full garbage collections short in its workers.

A full collection walks every tracked object while holding the GIL; the app's ~200,000
start-up objects made one take 112-245 ms in a worker under load (all its threads
stalled). The config's ``post_worker_init`` freezes them once the app is built.
"""
from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e.processes import environment_of, start_gunicorn

pytestmark = pytest.mark.e2e


def test_worker_freezes_the_built_app_out_of_the_collector(app, tmp_path):
    server = start_gunicorn("tests.e2e.gc_wsgi:app", tmp_path, env=environment_of(app), workers=1)
    try:
        with urllib.request.urlopen(f"{server.url}/gc-state", timeout=10) as response:
            state = json.load(response)
    finally:
        server.stop()
    # Most of what the worker holds was built with the app and is frozen, not rescanned.
    assert state["frozen"] > 50_000, state
    assert state["frozen"] > 2 * state["tracked"], state
