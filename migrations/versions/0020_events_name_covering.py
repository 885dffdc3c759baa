"""analytics: the (name, occurred_at) index of events carries person_id, so funnels and attribution read no heap

A funnel step, a conversion lookup and a per-name count need only name, time and person
of each matching event. With person_id in the index (INCLUDE) they are index-only scans
of the month partitions; without it every match fetched its heap page: at 86M events a
3-step funnel over 30 days read 1.86M pages (14.5 GB) and took 14 s warm, with it 7 s
(bench/RESULTS-b11.md). Events are append-only, so autovacuum keeps the visibility map
set and the heap stays unread.

On a large installation this rebuilds the index of every partition, blocking event
writes while it runs (about 2.5 minutes a month at 30M events on 2 cores). To avoid that
pause: create the new index on each partition CONCURRENTLY first, then attach them (see
the README, analytics, "How it grows").

Revision ID: 0020_events_name_covering
Revises: 0019_notifications_campaign_user
"""
from alembic import op

revision = '0020_events_name_covering'
down_revision = '0019_notifications_campaign_user'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_analytics_events_name_occurred_at', table_name='analytics_events')
    op.create_index('ix_analytics_events_name_occurred_at', 'analytics_events', ['name', 'occurred_at'],
                    postgresql_include=['person_id'])


def downgrade():
    op.drop_index('ix_analytics_events_name_occurred_at', table_name='analytics_events')
    op.create_index('ix_analytics_events_name_occurred_at', 'analytics_events', ['name', 'occurred_at'])
