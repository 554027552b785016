"""GeoReport v2's two formats. A response is a list of flat records (or one
record of nested lists, for a service definition); JSON gives it as is,
XML wraps it in the spec's root and element names."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

from starlette.responses import Response

FORMATS = ("json", "xml")
MEDIA_TYPES = {"json": "application/json; charset=utf-8",
               "xml": "application/xml; charset=utf-8"}


def _element(parent: ElementTree.Element, name: str, value: Any) -> None:
    child = ElementTree.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _element(child, key, inner)
    elif isinstance(value, list | tuple):
        # Lists inside a record: <attributes><attribute>…</attribute></attributes>.
        singular = name[:-1] if name.endswith("s") else name
        for inner in value:
            _element(child, singular, inner)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    elif value is not None:
        child.text = str(value)


def to_xml(root: str, item: str, records: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> bytes:
    """`<root><item>…</item>…</root>`, or `<root>…</root>` for one record."""
    top = ElementTree.Element(root)
    if isinstance(records, Mapping):
        for key, value in records.items():
            _element(top, key, value)
    else:
        for record in records:
            _element(top, item, record)
    body: bytes = ElementTree.tostring(top, encoding="utf-8", xml_declaration=True)
    return body


def respond(fmt: str, root: str, item: str,
            records: Sequence[Mapping[str, Any]] | Mapping[str, Any],
            status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    if fmt == "xml":
        body = to_xml(root, item, records)
    else:
        body = json.dumps(records, ensure_ascii=False).encode()
    return Response(body, status_code=status_code, headers=dict(headers or {}),
                    media_type=MEDIA_TYPES.get(fmt, MEDIA_TYPES["json"]))


def error(fmt: str, status_code: int, description: str,
          headers: Mapping[str, str] | None = None) -> Response:
    """The spec's error format: a list of {code, description}."""
    return respond(fmt if fmt in FORMATS else "json", "errors", "error",
                   [{"code": status_code, "description": description}], status_code, headers)
