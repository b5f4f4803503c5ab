"""The alerts' HTTP views: /api/alerts, and acknowledging or resolving one (audited)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from hub.auth import Role
from hub.http.service_call import call_service
from hub.http.view import (
    KEY_HUB,
    ApiError,
    current_user,
    json_response,
    query_int,
    read_json,
    remote,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.alerts import AlertManager


def register_views(ctx: SetupContext, manager: AlertManager, service_domain: str) -> None:
    """Serve the alerts API through the set-up context."""

    async def get_alerts(request: web.Request) -> web.Response:
        """Alerts, optionally of one status; resolved ones newest first."""
        status = request.query.get("status")
        if status not in (None, "open", "acknowledged", "resolved"):
            raise ApiError(400, "invalid", "status must be open, acknowledged or resolved")
        limit = query_int(request, "limit", 100, 1, 1000)
        found: list[Any] = []
        if status in (None, "open", "acknowledged"):
            found.extend(a for a in manager.open() if status is None or a.state == status)
        if status in (None, "resolved"):
            found.extend(manager.history(limit))
        return json_response([alert.as_dict() for alert in found[:limit]])

    async def change(request: web.Request, service: str) -> web.Response:
        hub = request.app[KEY_HUB]
        alert_id = request.match_info["alert_id"]
        body = await read_json(request)
        note = body.get("note")
        if note is not None and not isinstance(note, str):
            raise ApiError(400, "invalid", "note must be a string")
        if manager.get(alert_id) is None:
            raise ApiError(404, "not_found", f"no alert {alert_id!r}")
        data: dict[str, Any] = {"alert": alert_id}
        if note is not None:
            data["note"] = note
        result = await call_service(
            hub, current_user(request), remote(request), service_domain, service, data, None
        )
        return json_response({"result": result})

    async def acknowledge_alert(request: web.Request) -> web.Response:
        """Acknowledge an alert."""
        return await change(request, "acknowledge")

    async def resolve_alert(request: web.Request) -> web.Response:
        """Resolve an alert."""
        return await change(request, "resolve")

    ctx.register_view(
        "GET",
        "/api/alerts",
        get_alerts,
        role=Role.VIEWER,
        summary="Alerts",
        query=("status", "limit"),
    )
    ctx.register_view(
        "POST",
        "/api/alerts/{alert_id}/acknowledge",
        acknowledge_alert,
        role=Role.OPERATOR,
        summary="Acknowledge an alert",
        body={"note": "string"},
    )
    ctx.register_view(
        "POST",
        "/api/alerts/{alert_id}/resolve",
        resolve_alert,
        role=Role.OPERATOR,
        summary="Resolve an alert",
        body={"note": "string"},
    )
