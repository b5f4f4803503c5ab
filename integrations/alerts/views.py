"""The alerts' HTTP views: /api/alerts, and acknowledging or resolving one (audited)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from hub.auth import Role, auth_manager
from hub.http.schemas import (
    INTEGER,
    NUMBER,
    OPT_NUMBER,
    OPT_STRING,
    STRING,
    Schema,
    array,
    json_ok,
    nullable,
    obj,
    one_of,
)
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


def alert_schema() -> Schema:
    """What Alert.as_dict() answers (the OpenAPI description; tests validate real answers)."""
    # Imported here: integrations.alerts imports this module.
    from integrations.alerts import (
        RESOLUTION_AUTO,
        RESOLUTION_MANUAL,
        SEVERITIES,
        STATE_ACKNOWLEDGED,
        STATE_OPEN,
        STATE_RESOLVED,
    )

    return obj(
        {
            "id": STRING,
            "key": STRING,
            "title": STRING,
            "message": STRING,
            "severity": one_of(*SEVERITIES),
            # Who raised it: "service", an automation, a built-in rule...
            "source": STRING,
            "raised_at": NUMBER,
            "last_seen_at": NUMBER,
            "station_id": OPT_STRING,
            "device_id": OPT_STRING,
            "entity_id": OPT_STRING,
            "state": one_of(STATE_OPEN, STATE_ACKNOWLEDGED, STATE_RESOLVED),
            "count": INTEGER,
            "acknowledged_at": OPT_NUMBER,
            "acknowledged_by": OPT_STRING,  # a user id (None: not yet, or by no user)
            "resolved_at": OPT_NUMBER,
            "resolved_by": OPT_STRING,
            "resolution": nullable(one_of(RESOLUTION_MANUAL, RESOLUTION_AUTO)),
            "history": array(
                obj(
                    {
                        "time": NUMBER,
                        "action": one_of("raised", "updated", "acknowledged", "resolved"),
                        "by": OPT_STRING,
                        "note": OPT_STRING,
                    }
                )
            ),
        }
    )


def listed_alert_schema() -> Schema:
    """An alert as /api/alerts lists it: with who acknowledged and resolved it by name (the
    user id where the user is gone, None where nobody did)."""
    alert = alert_schema()
    names = {"acknowledged_by_name": OPT_STRING, "resolved_by_name": OPT_STRING}
    return {
        **alert,
        "properties": {**alert["properties"], **names},
        "required": [*alert["required"], *names],
    }


def with_names(request: web.Request, alert: dict[str, Any]) -> dict[str, Any]:
    """An alert with the usernames of who acknowledged and resolved it (the ids stay)."""
    auth = auth_manager(request.app[KEY_HUB])
    for key in ("acknowledged_by", "resolved_by"):
        by = alert.get(key)
        user = auth.get_user(by) if isinstance(by, str) else None
        alert[f"{key}_name"] = user.username if user is not None else by
    return alert


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
        return json_response([with_names(request, alert.as_dict()) for alert in found[:limit]])

    async def change(request: web.Request, service: str) -> web.Response:
        hub = request.app[KEY_HUB]
        alert_id = request.match_info["alert_id"]
        body = await read_json(request)
        note = body.get("note")
        if note is not None and not isinstance(note, str):
            raise ApiError(400, "invalid", "note must be a string")
        alert = manager.get(alert_id)
        if alert is None:
            raise ApiError(404, "not_found", f"no alert {alert_id!r}")
        data: dict[str, Any] = {"alert": alert_id}
        if note is not None:
            data["note"] = note
        result = await call_service(
            hub,
            current_user(request),
            remote(request),
            service_domain,
            service,
            data,
            None,
            target_name=alert.title,
        )
        return json_response({"result": result})

    async def acknowledge_alert(request: web.Request) -> web.Response:
        """Acknowledge an alert."""
        return await change(request, "acknowledge")

    async def resolve_alert(request: web.Request) -> web.Response:
        """Resolve an alert."""
        return await change(request, "resolve")

    # acknowledge and resolve answer the alert.* service's result: the alert as it is now.
    changed = json_ok(obj({"result": alert_schema()}))
    ctx.register_view(
        "GET",
        "/api/alerts",
        get_alerts,
        role=Role.VIEWER,
        summary="Alerts: the open and acknowledged ones (oldest first), then the resolved ones"
        " (most recently resolved first)",
        query=("status", "limit"),
        responses=json_ok(array(listed_alert_schema())),
    )
    ctx.register_view(
        "POST",
        "/api/alerts/{alert_id}/acknowledge",
        acknowledge_alert,
        role=Role.OPERATOR,
        summary="Acknowledge an alert (again: no change; a resolved one: 409)",
        body={"note": "string"},
        responses=changed,
    )
    ctx.register_view(
        "POST",
        "/api/alerts/{alert_id}/resolve",
        resolve_alert,
        role=Role.OPERATOR,
        summary="Resolve an alert (a resolved one: 409)",
        body={"note": "string"},
        responses=changed,
    )
