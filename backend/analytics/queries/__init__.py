"""Analyst queries as plain functions (the API, the console and the CLI all call these).

Each takes a SQLAlchemy session to read from (``reader.analytics_session()`` for the
configured replica) and keyword arguments, and returns a result with ``as_dict()`` for
JSON and ``table()`` (header, rows) for CSV. Actives and retention read the user-day
roll-up; funnels and event counts read the events of the requested months only.
"""
from backend.analytics.queries.actives import actives
from backend.analytics.queries.attribution import attribution
from backend.analytics.queries.event_counts import event_counts
from backend.analytics.queries.funnels import FunnelStep, funnel
from backend.analytics.queries.retention import retention

__all__ = ["FunnelStep", "actives", "attribution", "event_counts", "funnel", "retention"]
