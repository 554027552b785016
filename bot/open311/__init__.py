"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2): other
systems raise calls and read them back over HTTP, under `/open311/v2/`,
in JSON or XML. The rules are `workflows.sources`; this package is the
HTTP side: routes, rendering, the OpenAPI document and media fetching."""

from bot.open311.routes import PREFIX, open311_routes

__all__ = ["PREFIX", "open311_routes"]
