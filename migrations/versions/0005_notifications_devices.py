"""notifications: devices, preferences, topics, inbox

In the agreed chain 0001 → 0002 → 0003 → 0004 → 0005 → 0006, so that
domains built in parallel keep one linear history. Extended by the notifications work.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('devices',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('installation_id', sa.String(length=128), nullable=False),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('platform', sa.String(length=10), nullable=False),
    sa.Column('app_version', sa.String(length=32), nullable=True),
    sa.Column('locale', sa.String(length=35), server_default='en', nullable=False),
    sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('push_permission', sa.String(length=16), server_default='granted', nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("platform IN ('ios','android','web')", name=op.f('ck_devices_platform_known')),
    sa.CheckConstraint("push_permission IN ('granted','denied','provisional','not_determined')", name=op.f('ck_devices_permission_known')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_devices_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('installation_id', name=op.f('uq_devices_installation_id')),
    sa.UniqueConstraint('token', name=op.f('uq_devices_token'))
    )
    op.create_index('ix_devices_audience', 'devices', ['time_zone', 'platform', 'locale'], unique=False, postgresql_where=sa.text('disabled_at IS NULL'))
    op.create_index(op.f('ix_devices_last_seen_at'), 'devices', ['last_seen_at'], unique=False)
    op.create_index(op.f('ix_devices_user_id'), 'devices', ['user_id'], unique=False)

    op.create_table('notification_preferences',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("category IN ('transactional', 'social', 'promotional', 're_engagement')", name=op.f('ck_notification_preferences_category_known')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_preferences_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'category', name=op.f('pk_notification_preferences'))
    )
    op.create_table('notification_quiet_hours',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('start_local', sa.Time(), nullable=False),
    sa.Column('end_local', sa.Time(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notification_quiet_hours_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_quiet_hours'))
    )
    op.create_table('topics',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topics')),
    sa.UniqueConstraint('name', name=op.f('uq_topics_name'))
    )
    op.create_table('topic_subscriptions',
    sa.Column('topic_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['topic_id'], ['topics.id'], name=op.f('fk_topic_subscriptions_topic_id_topics'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_topic_subscriptions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('topic_id', 'user_id', name=op.f('pk_topic_subscriptions'))
    )
    op.create_index(op.f('ix_topic_subscriptions_user_id'), 'topic_subscriptions', ['user_id'], unique=False)
    op.create_table('notifications',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('body', sa.String(length=2000), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('deep_link', sa.String(length=2000), nullable=True),
    sa.Column('image_url', sa.String(length=2000), nullable=True),
    sa.Column('campaign_id', sa.Uuid(), nullable=True),
    sa.Column('variant', sa.String(length=32), nullable=True),
    sa.Column('topic', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.String(length=6), server_default='high', nullable=False),
    sa.Column('ttl_seconds', sa.Integer(), nullable=True),
    sa.Column('collapse_key', sa.String(length=64), nullable=True),
    sa.Column('silent', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('badge', sa.Integer(), nullable=True),
    sa.Column('push_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("category IN ('transactional', 'social', 'promotional', 're_engagement')", name=op.f('ck_notifications_category_known')),
    sa.CheckConstraint("priority IN ('high', 'normal')", name=op.f('ck_notifications_priority_known')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    op.create_index(op.f('ix_notifications_campaign_id'), 'notifications', ['campaign_id'], unique=False)
    op.create_index('ix_notifications_user_created', 'notifications', ['user_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_notifications_user_unread', 'notifications', ['user_id'], unique=False, postgresql_where=sa.text('read_at IS NULL'))
    op.create_index('ix_notifications_push_due_at', 'notifications', ['push_due_at'], unique=False, postgresql_where=sa.text('campaign_id IS NULL'))
    op.create_table('notification_deliveries',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('notification_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('error', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('provider_message_id', sa.String(length=255), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'deferred', 'failed', 'expired', 'suppressed', 'unknown')", name=op.f('ck_notification_deliveries_status_known')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_notification_deliveries_device_id_devices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_notification_deliveries_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
    sa.UniqueConstraint('notification_id', 'device_id', name=op.f('uq_notification_deliveries_notification_id_device_id'))
    )
    op.create_index(op.f('ix_notification_deliveries_device_id'), 'notification_deliveries', ['device_id'], unique=False)
    op.create_index('ix_notification_deliveries_retry', 'notification_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'deferred'"))
    op.create_table('push_outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('topic', sa.String(length=64), nullable=True),
    sa.Column('message', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_push_outbox'))
    )
    op.create_index(op.f('ix_push_outbox_created_at'), 'push_outbox', ['created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_push_outbox_created_at'), table_name='push_outbox')
    op.drop_table('push_outbox')
    op.drop_index('ix_notification_deliveries_retry', table_name='notification_deliveries', postgresql_where=sa.text("status = 'deferred'"))
    op.drop_index(op.f('ix_notification_deliveries_device_id'), table_name='notification_deliveries')
    op.drop_table('notification_deliveries')
    op.drop_index('ix_notifications_push_due_at', table_name='notifications', postgresql_where=sa.text('campaign_id IS NULL'))
    op.drop_index('ix_notifications_user_unread', table_name='notifications', postgresql_where=sa.text('read_at IS NULL'))
    op.drop_index('ix_notifications_user_created', table_name='notifications')
    op.drop_index(op.f('ix_notifications_campaign_id'), table_name='notifications')
    op.drop_table('notifications')
    op.drop_index(op.f('ix_topic_subscriptions_user_id'), table_name='topic_subscriptions')
    op.drop_table('topic_subscriptions')
    op.drop_table('topics')
    op.drop_table('notification_quiet_hours')
    op.drop_table('notification_preferences')
    op.drop_index(op.f('ix_devices_user_id'), table_name='devices')
    op.drop_index(op.f('ix_devices_last_seen_at'), table_name='devices')
    op.drop_index('ix_devices_audience', table_name='devices', postgresql_where=sa.text('disabled_at IS NULL'))
    op.drop_table('devices')
