"""analytics: cached retention cells per day and week

Revision ID: 0016_analytics_retention_counts
Revises: 0015_webhooks
"""
import sqlalchemy as sa
from alembic import op

revision = '0016_analytics_retention_counts'
down_revision = '0015_webhooks'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('analytics_retention_counts',
    sa.Column('interval', sa.String(length=5), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('cohort', sa.Date(), nullable=False),
    sa.Column('retained', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('interval', 'period', 'cohort', name=op.f('pk_analytics_retention_counts'))
    )


def downgrade():
    op.drop_table('analytics_retention_counts')
