"""push_deliveries: a sending lane renews its claim's lease (renewed_at), so the reconciler
expires only claims whose holder stopped renewing

Revision ID: 0018_push_lease_renewal
Revises: 0017_webhook_secret_overlap
"""
from alembic import op
import sqlalchemy as sa

revision = '0018_push_lease_renewal'
down_revision = '0017_webhook_secret_overlap'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('push_deliveries', sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column('push_deliveries', 'renewed_at')
