"""routine runs: one row per routine and day

Revision ID: p011
Revises: b014
Create Date: 2026-12-02 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'p011'
down_revision: str | None = 'b014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('routinerun',
    sa.Column('routine', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('routine', 'day')
    )


def downgrade() -> None:
    op.drop_table('routinerun')
