"""The OpenAPI description of the routes, built from the same table that registers them."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from hub import __version__
from hub.http.extensions import extensions
from hub.http.schemas import COMPONENTS, JSON, json_ok, ref
from hub.http.view import KEY_HUB, KEY_ROUTES, Route, json_response

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_DESCRIPTIONS = {
    "101": "Switching to the WebSocket protocol",
    "200": "OK",
    "201": "Created",
    "204": "Done, no content",
    "304": "Not modified since the ETag sent in If-None-Match",
}


def openapi_path(path: str) -> str:
    """An aiohttp path in OpenAPI form: {name:regex} becomes {name}."""
    return _PARAM.sub(r"{\1}", path)


def _operation(route: Route) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    parameters.extend(
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in route.query
    )
    responses: dict[str, Any] = {}
    for status, content in route.responses.items():
        entry: dict[str, Any] = {"description": _DESCRIPTIONS.get(status, "OK")}
        if content:
            entry["content"] = {media: {"schema": schema} for media, schema in content.items()}
        responses[status] = entry
    if not responses:
        # tests/hub/http/test_openapi_responses.py fails on this: every route says what it
        # answers.
        responses["default"] = {"description": "Not documented"}
    refused = {"content": {JSON: {"schema": ref("Error")}}}
    responses["4XX"] = {"description": "Refused: {error, message}", **refused}
    responses["5XX"] = {"description": "Unavailable or failed: {error, message}", **refused}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "tags": [route.tag],
        "x-evhub-role": str(route.role) if route.role is not None else "public",
        "responses": responses,
    }
    if route.role is not None:
        operation["security"] = [{"session": [], "csrf": []}, {"bearer": []}]
    if parameters:
        operation["parameters"] = parameters
    if route.body:
        # "*": any JSON object (an event's data), described by its text.
        fields = {key: kind for key, kind in route.body.items() if key != "*"}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                key: {"type": "string", "description": kind}
                if kind not in ("object", "string")
                else {"type": kind}
                for key, kind in fields.items()
            },
        }
        if "*" in route.body:
            schema["description"] = route.body["*"]
        operation["requestBody"] = {"content": {JSON: {"schema": schema}}}
    return operation


def build_openapi(routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of routes."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.method == "*":
            continue  # the dispatcher of integrations' views: they are listed themselves
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "evhub API", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "evhub_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": COMPONENTS,
        },
    }


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of this server."""
    views = extensions(request.app[KEY_HUB]).views
    added = [
        Route(
            v.method,
            v.path,
            v.handler,
            v.role,
            v.summary,
            v.query,
            v.body,
            tag=v.domain,
            responses=v.responses,
        )
        for v in views
    ]
    return json_response(build_openapi([*request.app[KEY_ROUTES], *added]))


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/openapi.json",
        openapi,
        None,
        "This OpenAPI document",
        responses=json_ok(
            {
                "type": "object",
                "properties": {"openapi": {"type": "string"}, "paths": {"type": "object"}},
                "required": ["openapi", "info", "paths", "components"],
            }
        ),
    ),
)
