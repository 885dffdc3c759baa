"""Dashboards (analysts read; admins too): actives, a retention heatmap, funnels, campaign funnels.

Every page calls the same query functions the analytics API serves
(``backend.analytics.queries``), on the analytics reader (the replica when one is
configured). Charts are pygal SVG images (admin/charts.py): offline, no script. Nothing
here writes, so the view has no actions.
"""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import flash, request
from flask_admin import expose
from sqlalchemy import select

from admin.access import StaffView
from admin.charts import bar_chart, line_chart
from backend.analytics.queries.actives import actives
from backend.analytics.queries.attribution import attribution
from backend.analytics.queries.funnels import FunnelStep, funnel
from backend.analytics.queries.retention import retention
from backend.analytics.reader import analytics_session
from backend.common.errors import DomainError
from backend.extensions import db
from backend.notifications.campaigns.models import Campaign

HEAT_LEVELS = 5


def date_range(default_days: int) -> tuple[date, date]:
    """``from``/``to`` query arguments (ISO dates), else the last ``default_days`` days; bad input is flashed."""
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=default_days - 1), today
    try:
        if request.args.get("from"):
            start = date.fromisoformat(request.args["from"])
        if request.args.get("to"):
            end = date.fromisoformat(request.args["to"])
    except ValueError:
        flash("Dates are YYYY-MM-DD; showing the default range.", "error")
        return today - timedelta(days=default_days - 1), today
    return start, end


def window_arg(default_hours: int) -> timedelta:
    """The ``window_h`` argument in hours (a bad one falls back to the default, flashed)."""
    raw = request.args.get("window_h", "")
    if not raw:
        return timedelta(hours=default_hours)
    try:
        return timedelta(hours=float(raw))
    except ValueError:
        flash("The window is a number of hours.", "error")
        return timedelta(hours=default_hours)


def heat_level(retained: int, size: int) -> int:
    """0..HEAT_LEVELS: the shade of a retention cell (its share of the cohort)."""
    return min(HEAT_LEVELS, round(HEAT_LEVELS * retained / size)) if size else 0


def attribution_view(campaign_id: uuid.UUID, event: str, window: timedelta) -> dict[str, Any] | None:
    """The attribution table and chart of one campaign, or None (reason flashed)."""
    try:
        with analytics_session() as session:
            result = attribution(session, campaign_id=campaign_id, event=event, window=window)
    except DomainError as exc:
        flash(exc.message, "error")
        return None
    labels = [v["variant"] for v in result.variants]
    chart = bar_chart("Delivered → opened → converted", labels or ["none"], {
        "delivered": [v["delivered"] for v in result.variants],
        "opened": [v["opened"] for v in result.variants],
        "converted after open": [v["converted_after_open"] for v in result.variants],
        "converted after delivery": [v["converted_after_delivery"] for v in result.variants],
    })
    return {"result": result, "chart": chart}


class DashboardsView(StaffView):
    """Read-only product dashboards over the analytics domain."""

    roles = frozenset({"analyst", "admin"})

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        start, end = date_range(30)
        interval = request.args.get("interval", "day")
        series: dict[str, Any] = {}
        cohorts: list[dict[str, Any]] = []
        try:
            with analytics_session() as session:
                for name in ("day", "week", "month"):
                    series[name] = actives(session, interval=name, start=start, end=end).series
                kept = retention(session, interval="week", start=start, end=end, offsets=8)
        except DomainError as exc:
            flash(exc.message, "error")
            return self.render("console/dashboards/index.html", start=start, end=end, interval=interval,
                               chart=None, series=[], cohorts=[], offsets=0)
        chosen = series.get(interval) or series["day"]
        chart = line_chart(f"Active users per {interval}", [p.isoformat() for p, _ in chosen],
                           {"actives": [n for _, n in chosen]})
        for cohort, size, retained in kept.cohorts:
            cells = [{"n": n, "share": n / size if size else 0.0, "level": heat_level(n, size),
                      "future": cohort + timedelta(weeks=k) > end} for k, n in enumerate(retained)]
            cohorts.append({"cohort": cohort, "size": size, "cells": cells})
        return self.render("console/dashboards/index.html", start=start, end=end, interval=interval, chart=chart,
                           series=chosen, cohorts=cohorts, offsets=kept.offsets)

    @expose("/funnel")
    def funnel_page(self):  # noqa: ANN201 - Flask-Admin view
        start, end = date_range(30)
        names = [s.strip() for s in request.args.get("steps", "").split(",") if s.strip()]
        breakdown = request.args.get("breakdown") or None
        window = window_arg(24)
        result, chart = None, None
        if names:
            try:
                with analytics_session() as session:
                    result = funnel(session, steps=[FunnelStep(n) for n in names], start=start, end=end,
                                    window=window, breakdown=breakdown)
            except DomainError as exc:
                flash(exc.message, "error")
        if result is not None:
            chart = bar_chart("Persons reaching each step", names,
                              {str(value or "all"): counts for value, counts in result.groups[:8]})
        return self.render("console/dashboards/funnel.html", start=start, end=end, steps=", ".join(names),
                           breakdown=breakdown or "", window_h=window.total_seconds() / 3600, result=result,
                           chart=chart)

    @expose("/campaigns")
    def campaign_funnels(self):  # noqa: ANN201 - Flask-Admin view
        recent = db.session.scalars(select(Campaign).order_by(Campaign.created_at.desc()).limit(50)).all()
        event = request.args.get("event", "").strip()
        window = window_arg(72)
        chosen, shown = request.args.get("campaign_id", ""), None
        if chosen and event:
            try:
                shown = attribution_view(uuid.UUID(chosen), event, window)
            except ValueError:
                flash("Choose a campaign from the list.", "error")
        return self.render("console/dashboards/campaigns.html", campaigns=recent, chosen=chosen, event=event,
                           window_h=window.total_seconds() / 3600, shown=shown)
