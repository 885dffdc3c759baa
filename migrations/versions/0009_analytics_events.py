"""analytics: partitioned events, event id ledger, installs, persons, user-day roll-up

Revision ID: 0009
Revises: 0008
"""
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _months_around_now(before: int, after: int) -> list[date]:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - before, index + after + 1)]


def upgrade():
    op.execute("CREATE SCHEMA IF NOT EXISTS analytics_partitions")
    op.create_table('analytics_events',
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('install_id', sa.String(length=128), nullable=False),
    sa.Column('session_id', sa.String(length=128), nullable=True),
    sa.Column('platform', sa.String(length=16), nullable=True),
    sa.Column('app_version', sa.String(length=64), nullable=True),
    sa.Column('properties', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    postgresql_partition_by='RANGE (occurred_at)'
    )
    op.create_index('ix_analytics_events_occurred_at_brin', 'analytics_events', ['occurred_at'], unique=False, postgresql_using='brin')
    op.create_index('ix_analytics_events_name_occurred_at', 'analytics_events', ['name', 'occurred_at'], unique=False)
    op.create_index('ix_analytics_events_person_id_occurred_at', 'analytics_events', ['person_id', 'occurred_at'], unique=False)
    for first in _months_around_now(1, 2):
        following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        op.execute(f'CREATE TABLE analytics_partitions."events_{first.year:04d}_{first.month:02d}" '
                   f"PARTITION OF analytics_events FOR VALUES FROM ('{first}T00:00:00+00:00') "
                   f"TO ('{following}T00:00:00+00:00')")
    op.create_table('analytics_event_ids',
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_analytics_event_ids'))
    )
    op.create_index('ix_analytics_event_ids_received_at_brin', 'analytics_event_ids', ['received_at'], unique=False, postgresql_using='brin')
    op.create_table('analytics_installs',
    sa.Column('install_id', sa.String(length=128), nullable=False),
    sa.Column('anonymous_person_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('platform', sa.String(length=16), nullable=True),
    sa.Column('app_version', sa.String(length=64), nullable=True),
    sa.Column('ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_analytics_installs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('install_id', name=op.f('pk_analytics_installs'))
    )
    op.create_index(op.f('ix_analytics_installs_user_id'), 'analytics_installs', ['user_id'], unique=False)
    op.create_table('analytics_persons',
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('is_user', sa.Boolean(), nullable=False),
    sa.Column('properties', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_analytics_persons'))
    )
    op.create_index('ix_analytics_persons_first_seen_at', 'analytics_persons', ['first_seen_at'], unique=False)
    op.create_table('analytics_user_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=True),
    sa.Column('app_version', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('day', 'person_id', name=op.f('pk_analytics_user_days'))
    )
    op.create_index('ix_analytics_user_days_person_id', 'analytics_user_days', ['person_id'], unique=False)


def downgrade():
    op.drop_index('ix_analytics_user_days_person_id', table_name='analytics_user_days')
    op.drop_table('analytics_user_days')
    op.drop_index('ix_analytics_persons_first_seen_at', table_name='analytics_persons')
    op.drop_table('analytics_persons')
    op.drop_index(op.f('ix_analytics_installs_user_id'), table_name='analytics_installs')
    op.drop_table('analytics_installs')
    op.drop_index('ix_analytics_event_ids_received_at_brin', table_name='analytics_event_ids')
    op.drop_table('analytics_event_ids')
    op.drop_table('analytics_events')  # its partitions go with it
    op.execute("DROP SCHEMA IF EXISTS analytics_partitions CASCADE")
