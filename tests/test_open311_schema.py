"""The served OpenAPI document, checked by schemathesis against the ASGI app
in-process: property-based requests to every operation (a bounded number of
examples each), each response checked against the document — status codes,
content types, headers, JSON bodies — and never a server error."""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from sqlmodel import Session, select

from bot.open311 import open311_routes
from bot.web import build_app
from models import SourceEvent
from tests.conftest import T0, Org
from workflows import sources
from workflows.context import Context
from workflows.sources import FetchedMedia

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient (used by schemathesis) on httpx
    import schemathesis

MAX_EXAMPLES = 25


def no_fetch(_url: str) -> FetchedMedia:
    """Generated media_urls point nowhere: never leave the machine."""
    return FetchedMedia(error=sources.MEDIA_UNREACHABLE)


def test_the_api_matches_its_openapi_document(ctx: Context, org: Org) -> None:
    # schemathesis' pytest plugin (`from_fixture`) does not run on pytest 9.2
    # (it reads a private node attribute), so each operation gets its own
    # hypothesis test here, from the operation's strategy.
    key = sources.create_key(ctx, "fuzz", "taihe-dayuan", T0, per_minute=10_000).key
    acting = sources.authenticate(ctx, key)
    assert acting is not None
    # One call to read back, so the read operations have a body to check.
    sources.accept(ctx, acting, sources.SourceReport("drain", "堵塞", address="大源村"), T0,
                   no_fetch)

    def now() -> datetime:
        return T0

    app = build_app(open311_routes(ctx, now, fetch=no_fetch))
    api = schemathesis.openapi.from_asgi("/open311/v2/openapi.json", app)
    checked = []
    for result in api.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err fails the test here

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def conforms(case: Any) -> None:
            case.call_and_validate(headers={"X-Api-Key": key})

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            conforms()
        checked.append(operation.label)
    assert len(checked) == 6, checked
    # The generated POSTs were not all refused: schema-valid ones raised calls.
    with Session(ctx.engine) as session:
        assert len(session.exec(select(SourceEvent)).all()) > 5
