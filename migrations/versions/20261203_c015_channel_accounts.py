"""channel accounts: one ChannelAccount table instead of Member.telegram_id and
Member.wecom_userid; every existing binding is kept

Revision ID: c015
Revises: k016
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'c015'
down_revision: str | None = 'k016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables as this migration sees them (not the models: they move on).
member = sa.table(
    'member',
    sa.column('id', sa.Integer()),
    sa.column('telegram_id', sa.BigInteger()),
    sa.column('wecom_userid', sa.String(64)),
)
account = sa.table(
    'channelaccount',
    sa.column('member_id', sa.Integer()),
    sa.column('channel', sa.String(16)),
    sa.column('external_id', sa.String(64)),
)


def upgrade() -> None:
    op.create_table('channelaccount',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('external_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'external_id', name='uq_channelaccount_external'),
    sa.UniqueConstraint('member_id', 'channel', name='uq_channelaccount_member')
    )
    with op.batch_alter_table('channelaccount', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channelaccount_member_id'), ['member_id'],
                              unique=False)

    # Copy the bindings (a Telegram id becomes its decimal string).
    op.execute(account.insert().from_select(
        ['member_id', 'channel', 'external_id'],
        sa.select(member.c.id, sa.literal('telegram'),
                  sa.cast(member.c.telegram_id, sa.String(64)))
        .where(member.c.telegram_id.is_not(None))))
    op.execute(account.insert().from_select(
        ['member_id', 'channel', 'external_id'],
        sa.select(member.c.id, sa.literal('wecom'), member.c.wecom_userid)
        .where(member.c.wecom_userid.is_not(None))))

    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_column('wecom_userid')
        batch_op.drop_column('telegram_id')


def downgrade() -> None:
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('telegram_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('wecom_userid',
                                      sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.create_unique_constraint('uq_member_telegram_id', ['telegram_id'])
        batch_op.create_unique_constraint('uq_member_wecom_userid', ['wecom_userid'])

    for channel, column, type_ in (('telegram', member.c.telegram_id, sa.BigInteger()),
                                   ('wecom', member.c.wecom_userid, sa.String(64))):
        bound = (sa.select(sa.cast(account.c.external_id, type_))
                 .where(account.c.member_id == member.c.id, account.c.channel == channel)
                 .scalar_subquery())
        op.execute(member.update().values({column.name: bound}))

    with op.batch_alter_table('channelaccount', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channelaccount_member_id'))

    op.drop_table('channelaccount')
