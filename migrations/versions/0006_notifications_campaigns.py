"""notifications: campaigns, send ledger, stats

In the agreed chain 0001 → 0002 → 0003 → 0004 → 0005 → 0006, so that
domains built in parallel keep one linear history.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaigns',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='draft', nullable=False),
    sa.Column('paused_reason', sa.Text(), nullable=True),
    sa.Column('category', sa.String(length=20), server_default='promotional', nullable=False),
    sa.Column('audience', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('message', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('holdout_percent', sa.Integer(), server_default='0', nullable=False),
    sa.Column('schedule', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('throttle_per_minute', sa.Integer(), nullable=True),
    sa.Column('frequency_cap', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('respect_quiet_hours', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stats_cache', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('launched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("category IN ('transactional', 'social', 'promotional', 're_engagement')", name=op.f('ck_campaigns_category_known')),
    sa.CheckConstraint("status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')", name=op.f('ck_campaigns_status_known')),
    sa.CheckConstraint('holdout_percent BETWEEN 0 AND 50', name=op.f('ck_campaigns_holdout_range')),
    sa.CheckConstraint('throttle_per_minute IS NULL OR throttle_per_minute >= 1', name=op.f('ck_campaigns_throttle_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_index('ix_campaigns_created_at_id', 'campaigns', ['created_at', 'id'], unique=False)
    op.create_index(op.f('ix_campaigns_status'), 'campaigns', ['status'], unique=False)
    op.create_table('campaign_variants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=16), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('message_override', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.CheckConstraint('weight > 0', name=op.f('ck_campaign_variants_weight_positive')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_variants_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_variants')),
    sa.UniqueConstraint('campaign_id', 'key', name=op.f('uq_campaign_variants_campaign_id_key'))
    )
    op.create_table('campaign_deliveries',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('variant', sa.String(length=16), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('locale', sa.String(length=35), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claim_token', sa.Uuid(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fcm_message_id', sa.Text(), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'deferred', 'capped', 'expired', 'held_out', 'suppressed', 'cancelled', 'unknown')", name=op.f('ck_campaign_deliveries_status_known')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_deliveries_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_campaign_deliveries_device_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_deliveries')),
    sa.UniqueConstraint('campaign_id', 'device_id', name=op.f('uq_campaign_deliveries_campaign_id_device_id'))
    )
    op.create_index('ix_campaign_deliveries_campaign_id_status', 'campaign_deliveries', ['campaign_id', 'status'], unique=False)
    op.create_index('ix_campaign_deliveries_due', 'campaign_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status IN ('pending', 'deferred')"))
    op.create_index('ix_campaign_deliveries_campaign_due', 'campaign_deliveries', ['campaign_id', 'next_attempt_at'], unique=False, postgresql_where=sa.text("status IN ('pending', 'deferred')"))
    op.create_index('ix_campaign_deliveries_user_claimed', 'campaign_deliveries', ['user_id', 'claimed_at'], unique=False, postgresql_where=sa.text("status IN ('sent', 'sending')"))


    # For the audience query (see backend/notifications/campaigns/models.py): pushable devices
    # covered for an index-only scan, and the few non-active users for an anti-join.
    op.create_index('ix_devices_pushable', 'devices', ['time_zone', 'platform', 'last_seen_at'], unique=False, postgresql_include=['locale', 'user_id', 'id'], postgresql_where=sa.text("disabled_at IS NULL AND token IS NOT NULL AND push_permission IN ('granted', 'provisional')"))
    op.create_index('ix_users_inactive', 'users', ['id'], unique=False, postgresql_where=sa.text("status <> 'active'"))
    op.create_index('ix_notifications_campaign_openers', 'notifications', ['campaign_id', 'user_id'], unique=False, postgresql_where=sa.text('opened_at IS NOT NULL'))


def downgrade():
    op.drop_index('ix_notifications_campaign_openers', table_name='notifications', postgresql_where=sa.text('opened_at IS NOT NULL'))
    op.drop_index('ix_users_inactive', table_name='users', postgresql_where=sa.text("status <> 'active'"))
    op.drop_index('ix_devices_pushable', table_name='devices', postgresql_where=sa.text("disabled_at IS NULL AND token IS NOT NULL AND push_permission IN ('granted', 'provisional')"))
    op.drop_index('ix_campaign_deliveries_user_claimed', table_name='campaign_deliveries', postgresql_where=sa.text("status IN ('sent', 'sending')"))
    op.drop_index('ix_campaign_deliveries_campaign_due', table_name='campaign_deliveries', postgresql_where=sa.text("status IN ('pending', 'deferred')"))
    op.drop_index('ix_campaign_deliveries_due', table_name='campaign_deliveries', postgresql_where=sa.text("status IN ('pending', 'deferred')"))
    op.drop_index('ix_campaign_deliveries_campaign_id_status', table_name='campaign_deliveries')
    op.drop_table('campaign_deliveries')
    op.drop_table('campaign_variants')
    op.drop_index(op.f('ix_campaigns_status'), table_name='campaigns')
    op.drop_index('ix_campaigns_created_at_id', table_name='campaigns')
    op.drop_table('campaigns')
