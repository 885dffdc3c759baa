"""Funnels: ordered steps within a conversion window, drop-off per step, optional breakdown.

A person enters the funnel at their first step-1 event in the range; step n counts when
the person did step n after their step n-1 and within ``window`` of entering. The
breakdown value (platform, app version or a property) is the one of the entering event.
Only the months of the range (plus the window) are read: the events table is
partitioned by time, and the (name, time) index narrows each month to the step events.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.analytics.queries.common import Table, check_range, day_start
from backend.common.errors import ValidationFailed

BREAKDOWNS = ("platform", "app_version")
MAX_STEPS = 10
MAX_WINDOW = timedelta(days=90)
MAX_GROUPS = 50


@dataclass(frozen=True)
class FunnelStep:
    """An event name, optionally only the events whose properties contain ``where``."""

    name: str
    where: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunnelResult:
    steps: list[FunnelStep]
    breakdown: str | None
    groups: list[tuple[str | None, list[int]]]  # (breakdown value, persons reaching each step)

    def as_dict(self) -> dict[str, Any]:
        return {"breakdown": self.breakdown, "groups": [{
            "value": value,
            "steps": [{"name": step.name, "persons": n,
                       "conversion": round(n / counts[0], 4) if counts[0] else 0.0,
                       "from_previous": round(n / counts[i - 1], 4) if i and counts[i - 1] else (1.0 if not i else 0.0),
                       "dropped": (counts[i - 1] - n) if i else 0}
                      for i, (step, n) in enumerate(zip(self.steps, counts, strict=True))]}
            for value, counts in self.groups]}

    def table(self) -> Table:
        header = ["breakdown", *[f"step_{i + 1}_{s.name}" for i, s in enumerate(self.steps)]]
        return Table(header, [[value, *counts] for value, counts in self.groups])


def _breakdown_sql(breakdown: str | None) -> str:
    if breakdown is None:
        return "NULL::text"
    if breakdown in BREAKDOWNS:
        return breakdown
    if breakdown.startswith("property:") and 0 < len(breakdown) - 9 <= 200:
        return "properties ->> :breakdown_key"
    raise ValidationFailed("breakdown is platform, app_version or property:<key>.",
                           details={"fields": {"breakdown": ["platform, app_version or property:<key>"]}})


def funnel_statement(*, steps: list[FunnelStep], start: date, end: date, window: timedelta,
                     breakdown: str | None = None) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a funnel (checked); ``funnel`` runs it, benchmarks EXPLAIN it."""
    if not 2 <= len(steps) <= MAX_STEPS:
        raise ValidationFailed(f"A funnel has 2 to {MAX_STEPS} steps.", details={"fields": {"steps": ["2 to 10"]}})
    if not timedelta(seconds=1) <= window <= MAX_WINDOW:
        raise ValidationFailed("The window is 1 second to 90 days.", details={"fields": {"window_s": ["1 s to 90 d"]}})
    check_range(start, end)
    value = _breakdown_sql(breakdown)
    params: dict[str, Any] = {"from": day_start(start), "until": day_start(end + timedelta(days=1)),
                              "window": window, "breakdown_key": (breakdown or "")[9:]}
    parts = []
    for i, step in enumerate(steps):
        params[f"name{i}"], params[f"where{i}"] = step.name, json.dumps(step.where)
        match = f"name = :name{i}" + (f" AND properties @> CAST(:where{i} AS jsonb)" if step.where else "")
        if i == 0:
            # Entering = the first step-1 event; grouping hashes where DISTINCT ON would sort every event.
            first_value = "NULL::text" if breakdown is None else f"(array_agg({value} ORDER BY occurred_at))[1]"
            parts.append(
                f"s0 AS (SELECT person_id, min(occurred_at) AS t0, min(occurred_at) AS t, {first_value} AS v "
                f"FROM analytics_events WHERE {match} AND occurred_at >= :from AND occurred_at < :until "
                "GROUP BY person_id)")
        else:
            parts.append(
                f"s{i} AS (SELECT p.person_id, p.t0, min(e.occurred_at) AS t, p.v FROM s{i - 1} p "
                f"JOIN analytics_events e ON e.person_id = p.person_id AND e.{match} "
                "AND e.occurred_at > p.t AND e.occurred_at <= p.t0 + :window "
                "AND e.occurred_at >= :from AND e.occurred_at < CAST(:until AS timestamptz) + :window "
                "GROUP BY p.person_id, p.t0, p.v)")
    for i in range(len(steps)):
        parts.append(f"c{i} AS (SELECT v, count(*) AS n FROM s{i} GROUP BY v)")
    joins = " ".join(f"LEFT JOIN c{i} ON c{i}.v IS NOT DISTINCT FROM c0.v" for i in range(1, len(steps)))
    counts = ", ".join(f"coalesce(c{i}.n, 0)" for i in range(len(steps)))
    sql = f"WITH {', '.join(parts)} SELECT c0.v, {counts} FROM c0 {joins} ORDER BY c0.n DESC, c0.v LIMIT {MAX_GROUPS}"
    return sql, params


def funnel(session: Session, *, steps: list[FunnelStep], start: date, end: date, window: timedelta,
           breakdown: str | None = None) -> FunnelResult:
    """Persons reaching each step, entering from ``start`` to ``end`` (inclusive days)."""
    sql, params = funnel_statement(steps=steps, start=start, end=end, window=window, breakdown=breakdown)
    rows = session.execute(text(sql), params).all()
    groups = [(row[0], list(row[1:])) for row in rows] or [(None, [0] * len(steps))]
    return FunnelResult(steps, breakdown, groups)
