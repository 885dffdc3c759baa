"""Push notifications: devices, preferences, inbox, transactional sends, campaigns."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Add push data to account export and erasure."""
    from backend.auth.deletion import register_eraser, register_exporter
    from backend.notifications.account_data import erase_push_data, export_push_data

    register_exporter("notifications", export_push_data)
    register_eraser("notifications", erase_push_data)
