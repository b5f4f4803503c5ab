"""Monitoring data from the recorder: state history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hub.auth import Role
from hub.clock import clock
from hub.core import valid_entity_id
from hub.http.view import KEY_HUB, ApiError, Route, json_response

MAX_ENTITIES = 100
DAY = 86400.0


def parse_time(request: web.Request, name: str, default: float) -> float:
    """An ISO 8601 query parameter as POSIX seconds (naive times are UTC), or a 400."""
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid", f"{name} must be an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def recorder(request: web.Request) -> Any:
    """The hub's recorder, or a 503 when it does not run."""
    from hub.recorder import RecorderError, get_recorder

    try:
        return get_recorder(request.app[KEY_HUB])
    except RecorderError:
        raise ApiError(503, "unavailable", "the recorder is not running") from None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


async def get_history(request: web.Request) -> web.Response:
    """The states of entities between start and end (default: the last day)."""
    raw = request.query.get("entity_id", "")
    entity_ids = [e.strip() for e in raw.split(",") if e.strip()]
    if not entity_ids:
        raise ApiError(400, "invalid", "entity_id is required (comma-separated)")
    if len(entity_ids) > MAX_ENTITIES:
        raise ApiError(400, "invalid", f"at most {MAX_ENTITIES} entities at once")
    bad = [e for e in entity_ids if not valid_entity_id(e)]
    if bad:
        raise ApiError(400, "invalid", f"invalid entity id {bad[0]!r}")
    now = clock(request.app[KEY_HUB]).time()
    end = parse_time(request, "end", now)
    start = parse_time(request, "start", end - DAY)
    if start >= end:
        raise ApiError(400, "invalid", "start must be before end")
    rows = await recorder(request).history(entity_ids, start, end)
    return json_response(
        {
            entity_id: [
                {
                    "state": row["state"],
                    "attributes": row["attributes"],
                    "last_changed": _iso(row["last_changed"]),
                }
                for row in found
            ]
            for entity_id, found in rows.items()
        }
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/history",
        get_history,
        Role.VIEWER,
        "State history of entities",
        query=("entity_id", "start", "end"),
        tag="monitoring",
    ),
)
