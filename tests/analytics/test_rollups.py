"""Cached active counts (used when final or fresh, else counted live) and the roll-up rebuild command."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from backend.analytics import active_counts, queries
from backend.extensions import db
from tests.analytics.test_queries import history  # noqa: F401 - the known history fixture


def _cache(interval: str, period: date, actives: int, computed_at: datetime) -> None:
    active_counts.store(db.session, interval=interval, counts={period: actives}, now=computed_at)


def test_actives_use_final_or_fresh_cached_counts_and_count_the_rest_live(history, db_session):  # noqa: F811
    now = datetime(2026, 6, 3, 12, tzinfo=UTC)
    _cache("day", date(2026, 6, 1), 41, datetime(2026, 6, 2, 0, 5, tzinfo=UTC))  # after the day closed: final
    _cache("day", date(2026, 6, 2), 42, datetime(2026, 6, 2, 18, tzinfo=UTC))  # before it closed, and stale
    _cache("day", date(2026, 6, 3), 43, now - timedelta(minutes=5))  # running, but fresh
    result = queries.actives(db.session, interval="day", start=date(2026, 6, 1), end=date(2026, 6, 4), now=now)
    assert [n for _, n in result.series] == [41, 2, 43, 1]
    assert result.as_of == datetime(2026, 6, 2, 0, 5, tzinfo=UTC)


def test_refresh_counts_every_period_and_the_answer_matches_live(history, db_session):  # noqa: F811
    now = datetime(2026, 6, 12, tzinfo=UTC)
    live = {i: queries.actives(db.session, interval=i, start=date(2026, 5, 25), end=date(2026, 6, 12), now=now).series
            for i in ("day", "week", "month")}
    written = active_counts.refresh(db.session, since=date(2026, 6, 11), now=now)
    assert written > 0
    stored = db.session.execute(text("SELECT count(*) FROM analytics_active_counts WHERE interval = 'day'")).scalar()
    assert stored == 12  # 2026-06-01 (first activity) .. 2026-06-12
    for interval, series in live.items():
        cached = queries.actives(db.session, interval=interval, start=date(2026, 5, 25), end=date(2026, 6, 12), now=now)
        assert cached.series == series and cached.as_of == now


def test_rebuild_rollups_command_recomputes_user_days_from_events(app, history, db_session):  # noqa: F811
    db.session.execute(text("DELETE FROM analytics_user_days"))
    db.session.execute(text("UPDATE analytics_persons SET first_seen_at = now()"))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["analytics", "rebuild-rollups", "--since", "2026-05-01"])
    assert result.exit_code == 0, result.output
    assert "user_days: 6" in result.output
    series = queries.actives(db.session, interval="day", start=date(2026, 6, 1), end=date(2026, 6, 4)).series
    assert [n for _, n in series] == [1, 2, 0, 1]
    first = db.session.execute(text("SELECT min(first_seen_at) FROM analytics_persons")).scalar()
    assert first.date() == date(2026, 6, 1)


def test_retention_uses_cached_cells_and_refresh_matches_live(history, db_session):  # noqa: F811
    from backend.analytics import retention_counts

    now = datetime(2026, 6, 12, tzinfo=UTC)
    args = {"interval": "day", "start": date(2026, 6, 1), "end": date(2026, 6, 9), "offsets": 3, "now": now}
    live = queries.retention(db.session, **args).cohorts
    assert retention_counts.refresh(db.session, since=date(2026, 6, 11), now=now) > 0
    assert queries.retention(db.session, **args).cohorts == live
    # A cell computed after its period closed is what the answer uses.
    retention_counts.store(db.session, interval="day", period=date(2026, 6, 2), cells={date(2026, 6, 1): 7}, now=now)
    cohorts = {c: kept for c, _, kept in queries.retention(db.session, **args).cohorts}
    assert cohorts[date(2026, 6, 1)] == [1, 7, 0, 1]


def test_refresh_jobs_fill_both_caches(app, history, db_session):  # noqa: F811
    from jobs.analytics import refresh_late_active_counts, refresh_recent_active_counts

    assert refresh_recent_active_counts() > 0
    assert refresh_late_active_counts() > 0
    for table in ("analytics_active_counts", "analytics_retention_counts"):
        assert db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar() > 0


def test_refresh_backfills_a_bounded_number_of_old_periods_per_run(history, db_session):  # noqa: F811
    now = datetime(2026, 6, 12, tzinfo=UTC)
    active_counts.refresh(db.session, since=date(2026, 6, 11), now=now, backfill=2)
    days = db.session.execute(text(
        "SELECT period FROM analytics_active_counts WHERE interval = 'day' ORDER BY period")).scalars().all()
    assert days == [date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 11), date(2026, 6, 12)]
    active_counts.refresh(db.session, since=date(2026, 6, 11), now=now, backfill=2)  # the next run goes on
    assert db.session.execute(text("SELECT count(*) FROM analytics_active_counts WHERE interval = 'day'")).scalar() == 6
