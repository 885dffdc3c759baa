"""Push notification routes under /v1/notifications."""
from __future__ import annotations

blueprints: list = []

from backend.notifications import campaign_routes  # noqa: E402 - campaigns register after the inbox routes
blueprints.append(campaign_routes.blp)
