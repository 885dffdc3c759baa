"""Monthly partitions: created ahead, expired ones dropped, queries pruned to their months."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import text

from backend.analytics import partitions
from backend.analytics.models import PARTITION_SCHEMA
from backend.extensions import db


def test_partitions_are_created_ahead_and_dropped_after_retention(db_session):
    session = db.session
    created = partitions.ensure_partitions(session, start=datetime(2020, 11, 5, tzinfo=UTC),
                                           end=datetime(2021, 2, 1, tzinfo=UTC))
    assert created == [date(2020, 11, 1), date(2020, 12, 1), date(2021, 1, 1), date(2021, 2, 1)]
    assert partitions.ensure_partitions(session, start=datetime(2020, 12, 1, tzinfo=UTC),
                                        end=datetime(2020, 12, 31, tzinfo=UTC)) == []
    dropped = partitions.drop_expired_partitions(session, retention_days=30, now=datetime(2021, 2, 1, tzinfo=UTC))
    assert dropped == [date(2020, 11, 1), date(2020, 12, 1)]  # January still has days within 30 days
    months = partitions.existing_partitions(session)
    assert date(2021, 1, 1) in months and date(2020, 12, 1) not in months


def test_a_query_over_one_month_scans_that_month_only(db_session):
    session = db.session
    partitions.ensure_partitions(session, start=datetime(2021, 1, 1, tzinfo=UTC), end=datetime(2021, 3, 1, tzinfo=UTC))
    plan = "\n".join(session.execute(text(
        "EXPLAIN SELECT count(*) FROM analytics_events "
        "WHERE occurred_at >= '2021-02-01T00:00:00Z' AND occurred_at < '2021-03-01T00:00:00Z'")).scalars())
    assert "events_2021_02" in plan
    assert "events_2021_01" not in plan and "events_2021_03" not in plan


def test_periodic_table_maintains_partitions_and_prunes_event_ids(app, db_session):
    from jobs.analytics import maintain_event_partitions, prune_event_ids
    from jobs.periodic import PERIODIC

    assert {"jobs.analytics.maintain_event_partitions", "jobs.analytics.prune_event_ids"} <= {p.func for p in PERIODIC}
    now = datetime.now(UTC)
    session = db.session
    session.execute(text("INSERT INTO analytics_event_ids VALUES (gen_random_uuid(), '2020-01-01Z'), "
                         "(gen_random_uuid(), now())"))
    maintain_event_partitions()
    months = partitions.existing_partitions(session)
    ahead = partitions.next_month(partitions.next_month(partitions.month_start(now)))
    assert partitions.month_start(now) in months and ahead in months
    assert prune_event_ids() == 1
    assert session.execute(text("SELECT count(*) FROM analytics_event_ids")).scalar() == 1


def test_ingest_with_a_stale_month_cache_redoes_the_batch_once(app, db_session):
    from datetime import timedelta

    from backend.analytics import ingest

    now = datetime(2021, 6, 15, tzinfo=UTC)  # no partition for June 2021 exists
    # as if it had been seen, then dropped
    partitions._KNOWN_MONTHS.add((partitions.database_key(db.session), date(2021, 6, 1)))
    batch = ingest.Batch(install_id="install-stale-1", events=[{"event_id": str(uuid.uuid4()),
                                                                "name": "x"}])
    result = ingest.ingest_batch(db.session, batch=batch, user_id=None, client_ip=None,
                                 limits=ingest.limits_from(app.config), now=now - timedelta(seconds=1))
    assert result.accepted == 1
    assert date(2021, 6, 1) in partitions.existing_partitions(db.session)


def test_retention_shorter_than_the_accepted_age_is_refused_at_startup():
    import pytest

    from backend.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="ANALYTICS_RETENTION_DAYS"):
        load_config({"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x", "ANALYTICS_RETENTION_DAYS": "20"})


def test_autocommit_write_with_a_stale_month_cache_creates_the_month_and_stores_once(committed_app):
    """The same on the anonymous path's own autocommit connection (PostgreSQL refuses the row: redo once)."""
    from backend.analytics import ingest

    month = date(2019, 3, 1)  # a month no other test uses
    with committed_app.app_context():
        partitions._KNOWN_MONTHS.add((partitions.database_key(db.session), month))
        try:
            batch = ingest.Batch(install_id="install-stale-2", events=[{"event_id": str(uuid.uuid4()), "name": "x"}])
            result = ingest.ingest_batch(db.session, batch=batch, user_id=None, client_ip=None,
                                         limits=ingest.limits_from(committed_app.config),
                                         now=datetime(2019, 3, 15, tzinfo=UTC))
            assert (result.accepted, result.duplicates) == (1, 0)
            assert month in partitions.existing_partitions(db.session)
            assert db.session.execute(text(
                "SELECT count(*) FROM analytics_events WHERE install_id = 'install-stale-2'")).scalar() == 1
        finally:
            db.session.rollback()
            db.session.execute(text(f'DROP TABLE IF EXISTS {PARTITION_SCHEMA}."{partitions.partition_name(month)}"'))
            db.session.commit()
            partitions.forget_months()
