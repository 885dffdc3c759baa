"""webhooks: the previous secret keeps signing for a while after a rotation

Revision ID: 0017_webhook_secret_overlap
Revises: 0016_analytics_retention_counts
"""
from alembic import op
import sqlalchemy as sa

revision = '0017_webhook_secret_overlap'
down_revision = '0016_analytics_retention_counts'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('webhook_endpoints', sa.Column('previous_secret', sa.String(length=100), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column('webhook_endpoints', 'previous_secret_expires_at')
    op.drop_column('webhook_endpoints', 'previous_secret')
