"""Product analytics: ingest into a partitioned event log, roll-ups, queries, push attribution."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Erase a deleted account's events; export them with the account."""
    from backend.analytics.account_data import erase_analytics_data, export_analytics_data
    from backend.auth.deletion import register_eraser, register_exporter

    register_exporter("analytics", export_analytics_data)
    register_eraser("analytics", erase_analytics_data)
