"""What the benchmarks share: the repository on `sys.path` (so `tests.fakes`
imports), a fresh migrated database with the example org and catalog, bulk
rows, and plain-text tables.

Imported by the scripts as `_support` (they run as `python bench/<name>.py`,
which puts `bench/` first on `sys.path`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from models import make_engine, upgrade_to_head  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
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


KEEP_ALIVE = 75  # seconds the fake server keeps an idle connection (nginx's default)


def _start_fake(**options: Any) -> FakeTelegram:
    """Start a FakeTelegram whose server keeps idle connections `KEEP_ALIVE` s.

    uvicorn's default of 5 s is exactly httpx's keep-alive expiry, so PTB may
    reuse a connection at the moment the server closes it: httpx.ReadError,
    and the message is lost (neither PTB nor youhu retries a reply). Telegram
    keeps connections far longer; so does the fake here, for the benchmarks
    only (uvicorn.Config is patched while the server starts).
    """
    config = uvicorn.Config

    def longer(*args: Any, **kwargs: Any) -> uvicorn.Config:
        kwargs.setdefault("timeout_keep_alive", KEEP_ALIVE)
        return config(*args, **kwargs)

    tg = FakeTelegram(**options)
    setattr(uvicorn, "Config", longer)  # noqa: B010
    try:
        return tg.start()
    finally:
        setattr(uvicorn, "Config", config)  # noqa: B010


@asynccontextmanager
async def fake_telegram(**options: Any) -> AsyncIterator[FakeTelegram]:
    """`async with fake_telegram(...) as tg`: a running FakeTelegram (see `_start_fake`)."""
    tg = await asyncio.to_thread(_start_fake, **options)
    try:
        yield tg
    finally:
        await asyncio.to_thread(tg.stop)


def postgres_url_from(arg: str | None) -> str | None:
    return arg or os.environ.get(POSTGRES_ENV) or None
