"""catalog item keywords (the words a caller's description is matched on)

Revision ID: k016
Revises: d010
Create Date: 2026-12-03 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'k016'
down_revision: str | None = 'd010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('catalogitem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keywords', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('catalogitem', schema=None) as batch_op:
        batch_op.drop_column('keywords')
