"""catalog item attributes (what other systems send with a call, Open311)

Revision ID: o013b
Revises: o013
Create Date: 2026-12-02 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'o013b'
down_revision: str | None = 'o013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('catalogitem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attributes', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('catalogitem', schema=None) as batch_op:
        batch_op.drop_column('attributes')
