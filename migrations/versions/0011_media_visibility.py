"""media: visibility (private, or shared with signed-in users)

Revision ID: 0011_media_visibility
Revises: 0010_media
"""
from alembic import op
import sqlalchemy as sa

revision = '0011_media_visibility'
down_revision = '0010_media'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('media', sa.Column('visibility', sa.String(length=16), server_default='private', nullable=False))
    op.create_check_constraint(op.f('ck_media_visibility_known'), 'media', "visibility IN ('private', 'users')")


def downgrade():
    op.drop_constraint(op.f('ck_media_visibility_known'), 'media', type_='check')
    op.drop_column('media', 'visibility')
