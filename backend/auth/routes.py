"""Account routes under /v1/auth and /v1/me."""
from __future__ import annotations

blueprints: list = []
