"""Push notification routes under /v1/notifications."""
from __future__ import annotations

blueprints: list = []
