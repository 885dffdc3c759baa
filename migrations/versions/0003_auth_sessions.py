"""auth: sessions, refresh tokens, one-time tokens, mail outbox

Placeholder in the agreed chain 0001 → 0002 → 0003 → 0004 → 0005 → 0006, so that
domains built in parallel keep one linear history. Filled by the accounts work.

Revision ID: 0003
Revises: 0002
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
