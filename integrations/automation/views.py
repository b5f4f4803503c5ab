"""The automations' HTTP views: list, enable, disable, trigger (audited) and traces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from hub.auth import Role
from hub.http.schemas import (
    BOOLEAN,
    NUMBER,
    OBJECT,
    OPT_NUMBER,
    OPT_STRING,
    STRING,
    array,
    json_ok,
    nullable,
    obj,
    ref,
)
from hub.http.service_call import call_service
from hub.http.view import KEY_HUB, ApiError, current_user, json_response, remote

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.automation import Automation, AutomationManager


_LAST_RUN = obj(
    {
        "run_id": STRING,
        "started": NUMBER,
        "finished": NUMBER,
        "outcome": STRING,
        "error": OPT_STRING,
    }
)
AUTOMATION_SCHEMA = obj(
    {
        "id": STRING,
        "alias": STRING,
        "description": OPT_STRING,
        "enabled": BOOLEAN,
        "mode": STRING,
        "last_triggered": OPT_NUMBER,
        "running": BOOLEAN,
        "last_run": nullable(_LAST_RUN),
    }
)
TRACE_SCHEMA = obj(
    {
        "automation_id": STRING,
        "run_id": STRING,
        "trigger": OBJECT,
        "started": NUMBER,
        "finished": OPT_NUMBER,
        "outcome": STRING,
        "error": OPT_STRING,
        "conditions": array(OBJECT),
        "steps": array(
            obj(
                {
                    "path": STRING,
                    "kind": STRING,
                    "started": NUMBER,
                    "duration": NUMBER,
                    "result": {},
                    "error": OPT_STRING,
                }
            )
        ),
    }
)


def _last_run(automation: Automation) -> dict[str, Any] | None:
    """How the latest finished run ended (a run in progress is not judged yet)."""
    for trace in reversed(automation.traces):
        if trace.finished is not None:
            return {
                "run_id": trace.run_id,
                "started": trace.started,
                "finished": trace.finished,
                "outcome": trace.outcome,
                "error": trace.error,
            }
    return None


def register_views(ctx: SetupContext, manager: AutomationManager, service_domain: str) -> None:
    """Serve the automations API through the set-up context."""

    def automation(request: web.Request) -> Automation:
        automation_id = request.match_info["automation_id"]
        found = manager.automations.get(automation_id)
        if found is None:
            raise ApiError(404, "not_found", f"no automation {automation_id!r}")
        return found

    async def get_automations(request: web.Request) -> web.Response:
        """Every automation with its state."""
        return json_response(
            [
                {
                    "id": a.id,
                    "alias": a.alias,
                    "description": a.config.get("description"),
                    "enabled": a.enabled,
                    "mode": a.mode,
                    "last_triggered": a.last_triggered,
                    "running": a.running > 0,
                    "last_run": _last_run(a),
                }
                for a in manager.automations.values()
            ]
        )

    async def call(request: web.Request, service: str) -> web.Response:
        found = automation(request)
        result: Any = await call_service(
            request.app[KEY_HUB],
            current_user(request),
            remote(request),
            service_domain,
            service,
            {"automation_id": found.id},
            None,
        )
        return json_response({"result": result})

    async def enable_automation(request: web.Request) -> web.Response:
        """Turn an automation on."""
        return await call(request, "turn_on")

    async def disable_automation(request: web.Request) -> web.Response:
        """Turn an automation off."""
        return await call(request, "turn_off")

    async def trigger_automation(request: web.Request) -> web.Response:
        """Run an automation now (conditions skipped)."""
        return await call(request, "trigger")

    async def get_traces(request: web.Request) -> web.Response:
        """The recent runs of an automation, oldest first."""
        return json_response([trace.as_dict() for trace in automation(request).traces])

    ctx.register_view(
        "GET",
        "/api/automations",
        get_automations,
        role=Role.VIEWER,
        summary="Automations, each with how its last run ended",
        responses=json_ok(array(AUTOMATION_SCHEMA)),
    )
    for action, handler, summary in (
        ("enable", enable_automation, "Enable an automation"),
        ("disable", disable_automation, "Disable an automation"),
        ("trigger", trigger_automation, "Run an automation now"),
    ):
        ctx.register_view(
            "POST",
            f"/api/automations/{{automation_id}}/{action}",
            handler,
            role=Role.OPERATOR,
            summary=summary,
            responses=json_ok(ref("ServiceResult")),
        )
    ctx.register_view(
        "GET",
        "/api/automations/{automation_id}/traces",
        get_traces,
        role=Role.VIEWER,
        summary="Recent runs of an automation",
        responses=json_ok(array(TRACE_SCHEMA)),
    )
