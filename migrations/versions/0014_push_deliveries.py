"""notifications: one push ledger (push_deliveries) for campaigns and transactional sends

campaign_deliveries becomes push_deliveries (renamed in place: no campaign row moves);
notification_deliveries' rows move into it (notification_id set, campaign_id NULL) and
the old table goes. A row's device may vanish (sign-out) without the row: device_id is
set NULL and the engine suppresses the row with its reason.

Revision ID: 0014_push_deliveries
Revises: 0013_moderation
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0014_push_deliveries'
down_revision = '0013_moderation'
branch_labels = None
depends_on = None

_INDEXES = ('campaign_id_status', 'due', 'campaign_due', 'user_claimed')
_CONSTRAINTS = ('pk_{}', 'fk_{}_campaign_id_campaigns', 'uq_{}_campaign_id_device_id', 'ck_{}_status_known')
_OLD_STATUSES = "('pending', 'sending', 'sent', 'deferred', 'failed', 'expired', 'suppressed', 'unknown')"


def _rename(old: str, new: str) -> None:
    op.execute(f'ALTER TABLE {old} RENAME TO {new}')
    op.execute(f'ALTER SEQUENCE {old}_id_seq RENAME TO {new}_id_seq')
    for name in _INDEXES:
        op.execute(f'ALTER INDEX ix_{old}_{name} RENAME TO ix_{new}_{name}')
    for pattern in _CONSTRAINTS:
        op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT {pattern.format(old)} TO {pattern.format(new)}')


def upgrade():
    _rename('campaign_deliveries', 'push_deliveries')
    op.alter_column('push_deliveries', 'campaign_id', existing_type=sa.Uuid(), nullable=True)
    op.alter_column('push_deliveries', 'variant', existing_type=sa.String(length=16), nullable=True)
    op.alter_column('push_deliveries', 'device_id', existing_type=sa.Uuid(), nullable=True)
    op.drop_constraint('fk_campaign_deliveries_device_id_devices', 'push_deliveries', type_='foreignkey')
    op.create_foreign_key(op.f('fk_push_deliveries_device_id_devices'), 'push_deliveries', 'devices',
                          ['device_id'], ['id'], ondelete='SET NULL')
    op.add_column('push_deliveries', sa.Column('notification_id', sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f('fk_push_deliveries_notification_id_notifications'), 'push_deliveries',
                          'notifications', ['notification_id'], ['id'], ondelete='CASCADE')
    op.create_unique_constraint(op.f('uq_push_deliveries_notification_id_device_id'), 'push_deliveries',
                                ['notification_id', 'device_id'])
    op.create_check_constraint(op.f('ck_push_deliveries_one_origin'), 'push_deliveries',
                               '(campaign_id IS NULL) <> (notification_id IS NULL)')
    op.create_index('ix_push_deliveries_transactional_due', 'push_deliveries', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("campaign_id IS NULL AND status IN ('pending', 'deferred')"))
    op.create_index('ix_push_deliveries_device_id', 'push_deliveries', ['device_id'], unique=False)
    op.create_index('ix_push_deliveries_sending', 'push_deliveries', ['claimed_at'], unique=False,
                    postgresql_where=sa.text("status = 'sending'"))
    # The transactional ledger moves in; a claim in flight keeps its time so its lease still runs.
    op.execute(
        "INSERT INTO push_deliveries (notification_id, device_id, user_id, time_zone, locale, status, due_at, "
        "next_attempt_at, claimed_at, attempts, sent_at, fcm_message_id, error_code) "
        "SELECT nd.notification_id, nd.device_id, n.user_id, dv.time_zone, dv.locale, nd.status, "
        "COALESCE(n.push_due_at, nd.created_at), COALESCE(nd.next_attempt_at, n.push_due_at, nd.created_at), "
        "CASE WHEN nd.status = 'sending' THEN nd.updated_at END, nd.attempts, nd.sent_at, "
        "nd.provider_message_id, nd.error "
        "FROM notification_deliveries nd JOIN notifications n ON n.id = nd.notification_id "
        "JOIN devices dv ON dv.id = nd.device_id")
    op.drop_index('ix_notification_deliveries_retry', table_name='notification_deliveries',
                  postgresql_where=sa.text("status = 'deferred'"))
    op.drop_index(op.f('ix_notification_deliveries_device_id'), table_name='notification_deliveries')
    op.drop_table('notification_deliveries')


def downgrade():
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
    sa.CheckConstraint(f"status IN {_OLD_STATUSES}", name=op.f('ck_notification_deliveries_status_known')),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_notification_deliveries_device_id_devices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_notification_deliveries_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
    sa.UniqueConstraint('notification_id', 'device_id', name=op.f('uq_notification_deliveries_notification_id_device_id'))
    )
    op.create_index(op.f('ix_notification_deliveries_device_id'), 'notification_deliveries', ['device_id'], unique=False)
    op.create_index('ix_notification_deliveries_retry', 'notification_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'deferred'"))
    op.execute(
        "INSERT INTO notification_deliveries (notification_id, device_id, status, error, attempts, next_attempt_at, "
        "provider_message_id, sent_at, created_at, updated_at) "
        f"SELECT notification_id, device_id, CASE WHEN status IN {_OLD_STATUSES} THEN status ELSE 'failed' END, "
        "error_code, attempts, next_attempt_at, fcm_message_id, sent_at, due_at, COALESCE(claimed_at, due_at) "
        "FROM push_deliveries WHERE notification_id IS NOT NULL AND device_id IS NOT NULL")
    # Rows the old tables cannot hold: transactional ones (moved above) and rows whose device went.
    op.execute("DELETE FROM push_deliveries WHERE notification_id IS NOT NULL OR device_id IS NULL")
    op.execute("UPDATE push_deliveries SET variant = 'A' WHERE variant IS NULL")
    op.drop_index('ix_push_deliveries_sending', table_name='push_deliveries',
                  postgresql_where=sa.text("status = 'sending'"))
    op.drop_index('ix_push_deliveries_device_id', table_name='push_deliveries')
    op.drop_index('ix_push_deliveries_transactional_due', table_name='push_deliveries',
                  postgresql_where=sa.text("campaign_id IS NULL AND status IN ('pending', 'deferred')"))
    op.drop_constraint(op.f('ck_push_deliveries_one_origin'), 'push_deliveries', type_='check')
    op.drop_constraint(op.f('uq_push_deliveries_notification_id_device_id'), 'push_deliveries', type_='unique')
    op.drop_constraint(op.f('fk_push_deliveries_notification_id_notifications'), 'push_deliveries',
                       type_='foreignkey')
    op.drop_column('push_deliveries', 'notification_id')
    op.drop_constraint(op.f('fk_push_deliveries_device_id_devices'), 'push_deliveries', type_='foreignkey')
    op.create_foreign_key('fk_campaign_deliveries_device_id_devices', 'push_deliveries', 'devices',
                          ['device_id'], ['id'], ondelete='CASCADE')
    op.alter_column('push_deliveries', 'device_id', existing_type=sa.Uuid(), nullable=False)
    op.alter_column('push_deliveries', 'variant', existing_type=sa.String(length=16), nullable=False)
    op.alter_column('push_deliveries', 'campaign_id', existing_type=sa.Uuid(), nullable=False)
    _rename('push_deliveries', 'campaign_deliveries')
