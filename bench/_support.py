"""What the benchmarks share: the repository on `sys.path` (so `tests.fakes`
imports), a fresh migrated database with the example org and catalog, bulk
rows, and plain-text tables.

Imported by the scripts as `_support` (they run as `python bench/<name>.py`,
which puts `bench/` first on `sys.path`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from models import make_engine, upgrade_to_head  # noqa: E402
from workflows.directory import load  # noqa: E402
from workflows.orgfile import read_catalog, read_org  # noqa: E402

EXAMPLES = ROOT / "examples"
POSTGRES_ENV = "YOUHU_BENCH_POSTGRES_URL"


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def describe_url(url: str) -> str:
    """The URL without a password, for printing."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def empty_database(url: str) -> None:
    """Bring `url` to the newest schema and empty every youhu table in it."""
    upgrade_to_head(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if is_postgres(url):
                tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
                connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(SQLModel.metadata.sorted_tables):
                    connection.execute(table.delete())
    finally:
        engine.dispose()


def load_example(engine: Engine, now: datetime) -> None:
    """The Baiyun org and catalog of `examples/`, as `youhu init` loads them."""
    org = read_org(EXAMPLES / "org.yaml")
    load(engine, org, read_catalog(EXAMPLES / "catalog.yaml", org), now)


def chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_many(engine: Engine, table: sa.Table, rows: Iterable[dict[str, Any]],
                chunk: int = 5000) -> int:
    """Bulk insert (SQLAlchemy Core executemany, one transaction per chunk)."""
    count = 0
    for batch in chunks(rows, chunk):
        with engine.begin() as connection:
            connection.execute(sa.insert(table), batch)
        count += len(batch)
    return count


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Rows as an aligned text table (numbers right-aligned)."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        parts = [c.rjust(w) if n and _numeric(c) else c.ljust(w) for c, w in zip(row, widths,
                                                                                  strict=True)]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("×", "").replace("%", "").isdigit()


def postgres_url_from(arg: str | None) -> str | None:
    return arg or os.environ.get(POSTGRES_ENV) or None
