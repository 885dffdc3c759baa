"""The real app plus one slow route, to watch gunicorn drain a request on SIGTERM.

Served only by tests/e2e/test_graceful_shutdown.py; never part of the product.
"""
import os
import time
from pathlib import Path

from backend.app import create_app

app = create_app()


@app.get("/slow")
def slow() -> dict[str, str]:
    """Answer after two seconds; touch SLOW_MARKER first so the test knows it is in flight."""
    Path(os.environ["SLOW_MARKER"]).touch()
    time.sleep(2.0)
    return {"status": "finished"}
