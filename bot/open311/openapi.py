"""The API described as OpenAPI 3.1, served at `/open311/v2/openapi.json`
and checked against the running app by schemathesis (tests/test_open311_schema.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workflows.sources import (
    ATTRIBUTE_PATTERN,
    EXTERNAL_ID_PATTERN,
    MAX_ADDRESS,
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_DESCRIPTION,
    MAX_MEDIA_URL,
    MAX_PAGE,
    MEDIA_URL_PATTERN,
    SOME_TEXT_PATTERN,
)

PREFIX = "/open311/v2"

_NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
_NULLABLE_NUMBER: dict[str, Any] = {"type": ["number", "null"]}

_ERRORS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}

_SERVICE: dict[str, Any] = {
    "type": "object",
    "required": ["service_code", "service_name", "metadata", "type", "keywords", "group"],
    "properties": {
        "service_code": {"type": "string"},
        "service_name": {"type": "string"},
        "description": {"type": "string"},
        "metadata": {"type": "boolean"},
        "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
        "keywords": {"type": "string"},
        "group": {"type": "string"},
    },
}

_ATTRIBUTE: dict[str, Any] = {
    "type": "object",
    "required": ["variable", "code", "datatype", "required", "order", "description", "values"],
    "properties": {
        "variable": {"type": "boolean"},
        "code": {"type": "string"},
        "datatype": {"type": "string", "enum": ["string", "number", "datetime", "text",
                                                "singlevaluelist", "multivaluelist"]},
        "required": {"type": "boolean"},
        "datatype_description": _NULLABLE_STRING,
        "order": {"type": "integer"},
        "description": {"type": "string"},
        "values": {"type": "array", "items": {
            "type": "object", "required": ["key", "name"],
            "properties": {"key": {"type": "string"}, "name": {"type": "string"}}}},
    },
}

_DEFINITION: dict[str, Any] = {
    "type": "object",
    "required": ["service_code", "attributes"],
    "properties": {
        "service_code": {"type": "string"},
        "attributes": {"type": "array", "items": _ATTRIBUTE},
    },
}

_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["service_request_id", "status", "requested_datetime"],
    "properties": {
        "service_request_id": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "status_notes": _NULLABLE_STRING,
        "service_name": _NULLABLE_STRING,
        "service_code": _NULLABLE_STRING,
        "description": _NULLABLE_STRING,
        "agency_responsible": _NULLABLE_STRING,
        "service_notice": _NULLABLE_STRING,
        "requested_datetime": {"type": "string", "format": "date-time"},
        "updated_datetime": {"type": ["string", "null"], "format": "date-time"},
        "expected_datetime": {"type": ["string", "null"], "format": "date-time"},
        "address": _NULLABLE_STRING,
        "address_id": _NULLABLE_STRING,
        "zipcode": _NULLABLE_STRING,
        "lat": _NULLABLE_NUMBER,
        "long": _NULLABLE_NUMBER,
        "media_url": _NULLABLE_STRING,
    },
}

_CREATED: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["token"],
        "properties": {
            "service_request_id": _NULLABLE_STRING,
            "token": {"type": "string"},
            "service_notice": _NULLABLE_STRING,
            "account_id": _NULLABLE_STRING,
        },
    },
}

_TOKEN: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["token"],
        "properties": {"service_request_id": _NULLABLE_STRING, "token": {"type": "string"}},
    },
}


def _format() -> dict[str, Any]:
    return {"name": "format", "in": "path", "required": True,
            "schema": {"type": "string", "enum": ["json", "xml"]}}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _responses(ok: dict[str, Any] | None, *errors: int, ok_code: str = "200",
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": ok}, "application/xml": {}} if ok else {}
    responses: dict[str, Any] = {ok_code: {"description": "OK", "content": content}}
    responses.update(extra or {})
    reasons = {400: "Bad request (the description names the field)",
               403: "Missing, unknown or revoked API key, or not allowed",
               404: "Not found", 405: "Method not allowed",
               429: "Too many events from this key; see Retry-After"}
    for code in errors:
        responses[str(code)] = {
            "description": reasons[code],
            "content": {"application/json": {"schema": _ERRORS}, "application/xml": {}},
            **({"headers": {"Retry-After": {"schema": {"type": "integer"}}}}
               if code == 429 else {}),
        }
    return responses


_KEY_QUERY = _query("api_key", "The system's API key (or the X-Api-Key header)")
_JURISDICTION = _query("jurisdiction_id", "Accepted and ignored: one district per server")


def openapi_document(server: str = "", service_codes: Sequence[str] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the GeoReport v2 endpoints youhu serves;
    `service_codes` (the catalog's active items) make `service_code` an enum,
    so a request valid by the document is one the API accepts."""
    service_code: dict[str, Any] = {"type": "string", "description": "a catalog item code"}
    if service_codes:
        service_code["enum"] = list(service_codes)
    post_form = {
        "type": "object",
        "required": ["service_code"],
        "properties": {
            "api_key": {"type": "string"},
            "jurisdiction_id": {"type": "string"},
            "service_code": service_code,
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "address_string": {"type": "string", "maxLength": MAX_ADDRESS,
                               "pattern": SOME_TEXT_PATTERN},
            "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
            "media_url": {"type": "string", "maxLength": MAX_MEDIA_URL,
                          "pattern": MEDIA_URL_PATTERN},
            "external_id": {
                "type": "string", "pattern": EXTERNAL_ID_PATTERN,
                "description": "the event's id in the source (visible ASCII); the same id "
                               "again returns the same request (idempotent)",
            },
        },
        "dependentRequired": {"lat": ["long"], "long": ["lat"]},
        "anyOf": [{"required": ["lat", "long"]}, {"required": ["address_string"]}],
        "patternProperties": {
            ATTRIBUTE_PATTERN: {"type": "string", "maxLength": MAX_ATTRIBUTE_VALUE},
        },
        "maxProperties": 9 + MAX_ATTRIBUTES,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "youhu Open311 GeoReport v2",
            "version": "2",
            "description": "Other systems raise calls (有呼必应) for a town or village "
                           "with an API key; see the README, 'Calls from other systems'.",
        },
        "servers": [{"url": server or "/"}],
        "components": {"securitySchemes": {
            "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        }},
        "paths": {
            f"{PREFIX}/services.{{format}}": {"get": {
                "summary": "The catalog's items",
                "parameters": [_format(), _JURISDICTION, _KEY_QUERY],
                "responses": _responses({"type": "array", "items": _SERVICE}, 400, 403, 404,
                                        405),
            }},
            f"{PREFIX}/services/{{service_code}}.{{format}}": {"get": {
                "summary": "An item's attribute definitions",
                "parameters": [_path("service_code"), _format(), _JURISDICTION, _KEY_QUERY],
                "responses": _responses(_DEFINITION, 400, 403, 404, 405),
            }},
            f"{PREFIX}/requests.{{format}}": {
                "get": {
                    "summary": "The requests this key raised",
                    "security": [{"apiKeyHeader": []}],
                    "parameters": [
                        _format(), _JURISDICTION, _KEY_QUERY,
                        _query("service_request_id", "comma-separated request ids"),
                        _query("service_code", "a catalog item code"),
                        _query("start_date", "raised at or after (W3C date-time)",
                               type="string", format="date-time"),
                        _query("end_date", "raised at or before (W3C date-time)",
                               type="string", format="date-time"),
                        _query("status", "open, closed, or both comma-separated",
                               type="string", pattern="^(open|closed)(,(open|closed))?$"),
                        _query("page", "from 1", type="integer", minimum=1,
                               maximum=MAX_PAGE),
                        _query("page_size", "1 to 200 (default 50)", type="integer",
                               minimum=1, maximum=200),
                    ],
                    "responses": _responses({"type": "array", "items": _REQUEST}, 400, 403,
                                            404, 405),
                },
                "post": {
                    "summary": "Raise a call (or add to the open call it repeats)",
                    "security": [{"apiKeyHeader": []}, {}],
                    "parameters": [_format()],
                    "requestBody": {"required": True, "content": {
                        "application/x-www-form-urlencoded": {"schema": post_form}}},
                    "responses": _responses(
                        _CREATED, 400, 403, 404, 405, 429, ok_code="201",
                        extra={"200": {
                            "description": "A repeat added to an open request, or a retry "
                                           "of an event already accepted",
                            "content": {"application/json": {"schema": _CREATED},
                                        "application/xml": {}}}}),
                },
            },
            f"{PREFIX}/requests/{{service_request_id}}.{{format}}": {"get": {
                "summary": "One request this key raised",
                "security": [{"apiKeyHeader": []}],
                "parameters": [_path("service_request_id"), _format(), _JURISDICTION,
                               _KEY_QUERY],
                "responses": _responses({"type": "array", "items": _REQUEST}, 400, 403, 404,
                                        405),
            }},
            f"{PREFIX}/tokens/{{token}}.{{format}}": {"get": {
                "summary": "The request a token stands for",
                "security": [{"apiKeyHeader": []}],
                "parameters": [_path("token"), _format(), _JURISDICTION, _KEY_QUERY],
                "responses": _responses(_TOKEN, 400, 403, 404, 405),
            }},
        },
    }
