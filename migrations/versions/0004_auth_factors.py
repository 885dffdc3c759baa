"""auth: social identities, TOTP, recovery codes, email codes

Placeholder in the agreed chain 0001 → 0002 → 0003 → 0004 → 0005 → 0006, so that
domains built in parallel keep one linear history. Filled by the accounts (factors) work.

Revision ID: 0004
Revises: 0003
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
