"""media: uploaded images and videos, from the upload request to their variants

Revision ID: 0010_media
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0010_media'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('media',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='uploading', nullable=False),
    sa.Column('moderation', sa.String(length=16), server_default='none', nullable=False),
    sa.Column('progress', sa.Integer(), server_default='0', nullable=False),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('declared_type', sa.String(length=100), nullable=False),
    sa.Column('detected_type', sa.String(length=100), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('checksum_sha256', sa.String(length=64), nullable=True),
    sa.Column('key_prefix', sa.String(length=200), nullable=False),
    sa.Column('original_key', sa.String(length=255), nullable=False),
    sa.Column('upload_id', sa.String(length=255), nullable=True),
    sa.Column('part_size', sa.Integer(), nullable=True),
    sa.Column('upload_expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('placeholder', sa.String(length=100), nullable=True),
    sa.Column('variants', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('avatar', 'photo', 'video')", name=op.f('ck_media_kind_known')),
    sa.CheckConstraint("moderation IN ('none', 'quarantined', 'approved', 'removed')", name=op.f('ck_media_moderation_known')),
    sa.CheckConstraint('progress BETWEEN 0 AND 100', name=op.f('ck_media_progress_percent')),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_media_size_positive')),
    sa.CheckConstraint("status IN ('uploading', 'pending', 'processing', 'ready', 'failed', 'aborted', 'expired')", name=op.f('ck_media_status_known')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_media_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media'))
    )
    op.create_index('ix_media_owner_created', 'media', ['owner_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_media_status_updated', 'media', ['status', 'updated_at'], unique=False,
                    postgresql_where=sa.text("status IN ('uploading', 'pending', 'processing')"))


def downgrade():
    op.drop_index('ix_media_status_updated', table_name='media', postgresql_where=sa.text("status IN ('uploading', 'pending', 'processing')"))
    op.drop_index('ix_media_owner_created', table_name='media')
    op.drop_table('media')
