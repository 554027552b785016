"""Column types shared by the tables."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa


def str_enum(enum: type[StrEnum]) -> sa.Enum:
    """A string column holding an enum's *values* (not names), without a native
    database enum type, so adding a member needs no migration of a type."""
    return sa.Enum(
        enum,
        native_enum=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
