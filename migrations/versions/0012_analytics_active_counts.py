"""analytics: cached active counts per day, week and month

Revision ID: 0012_analytics_active_counts
Revises: 0011_media_visibility
"""
import sqlalchemy as sa
from alembic import op

revision = '0012_analytics_active_counts'
down_revision = '0011_media_visibility'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('analytics_active_counts',
    sa.Column('interval', sa.String(length=5), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('actives', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('interval', 'period', name=op.f('pk_analytics_active_counts'))
    )


def downgrade():
    op.drop_table('analytics_active_counts')
