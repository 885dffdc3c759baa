"""notifications: devices, preferences, topics, inbox

In the agreed chain 0001 → 0002 → 0003 → 0004 → 0005 → 0006, so that
domains built in parallel keep one linear history. Extended by the notifications work.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

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


def downgrade():
    op.drop_index(op.f('ix_devices_user_id'), table_name='devices')
    op.drop_index(op.f('ix_devices_last_seen_at'), table_name='devices')
    op.drop_index('ix_devices_audience', table_name='devices', postgresql_where=sa.text('disabled_at IS NULL'))
    op.drop_table('devices')
