"""The real app plus one route reporting its worker's garbage-collector state.

Served only by tests/e2e/test_gunicorn_gc.py; never part of the product.
"""
import gc

from backend.app import create_app

app = create_app()


@app.get("/gc-state")
def gc_state() -> dict[str, int]:
    """How many objects this worker froze out of the collector, and how many it still tracks."""
    return {"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}
