"""notifications: index (campaign_id, user_id), replacing the index on campaign_id alone

A campaign lane checks, for each batch, which of its users already have the campaign's
inbox entry. With campaign_id alone the check read every entry the campaign had written
so far (15,000 rows filtered away at 15,000 sent: quadratic over a campaign); with the
pair it reads one index entry per user. The pair's prefix serves every query the old
index served.

Revision ID: 0019_notifications_campaign_user
Revises: 0018_push_lease_renewal
"""
from alembic import op

revision = '0019_notifications_campaign_user'
down_revision = '0018_push_lease_renewal'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_notifications_campaign_user', 'notifications', ['campaign_id', 'user_id'])
    op.drop_index('ix_notifications_campaign_id', table_name='notifications')


def downgrade():
    op.create_index('ix_notifications_campaign_id', 'notifications', ['campaign_id'])
    op.drop_index('ix_notifications_campaign_user', table_name='notifications')
