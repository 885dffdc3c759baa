"""audit: append-only staff audit log; user search indexes for the console

The audit log refuses UPDATE, DELETE and TRUNCATE with triggers: history is written
once, by the transaction that made the change, and never rewritten.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_email', sa.String(length=320), nullable=True),
    sa.Column('actor_role', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=128), nullable=True),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_object', 'audit_log', ['object_type', 'object_id', 'id'], unique=False)
    op.create_index('ix_audit_log_actor_id', 'audit_log', ['actor_id', 'id'], unique=False)
    op.execute("""
        CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$;
    """)
    op.execute("CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
               "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()")
    op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()")
    op.create_index('ix_users_created_at_id', 'users', ['created_at', 'id'], unique=False)
    op.create_index('ix_users_email_prefix', 'users', ['email'], unique=False,
                    postgresql_ops={'email': 'varchar_pattern_ops'})
    op.create_index('ix_users_display_name_prefix', 'users', [sa.text('lower(display_name) varchar_pattern_ops')],
                    unique=False)


def downgrade():
    op.drop_index('ix_users_display_name_prefix', table_name='users')
    op.drop_index('ix_users_email_prefix', table_name='users')
    op.drop_index('ix_users_created_at_id', table_name='users')
    op.drop_table('audit_log')  # its triggers go with it
    op.execute("DROP FUNCTION audit_log_refuse_change()")
