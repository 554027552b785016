"""Open311 sources: API keys, the events systems sent, a call's source and
system members

Revision ID: o013
Revises: 0004
Create Date: 2026-12-02 16:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'o013'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('system', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=48),
                                      nullable=True))
    op.create_table(
        'apikey',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('items', sa.JSON(), nullable=True),
        sa.Column('per_minute', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
        sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('member_id'),
    )
    with op.batch_alter_table('apikey', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_apikey_key_hash'), ['key_hash'], unique=True)
        batch_op.create_index(batch_op.f('ix_apikey_name'), ['name'], unique=True)
    op.create_table(
        'sourceevent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column('call_id', sa.Integer(), nullable=True),
        sa.Column('added_to_existing', sa.Boolean(), nullable=False),
        sa.Column('media_url', sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.Column('media_error', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['apikey.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['call.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('api_key_id', 'external_id', name='uq_source_event_external'),
    )
    with op.batch_alter_table('sourceevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sourceevent_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sourceevent_token'), ['token'], unique=True)
        batch_op.create_index('ix_source_event_key_received', ['api_key_id', 'received_at'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('sourceevent')
    op.drop_table('apikey')
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_column('source')
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_column('system')
