"""The hub's persistent notifications over REST: list, dismiss, mark read (audited).

Dismissing and marking read call the ``notify.dismiss`` and ``notify.mark_read`` services
(operator, as those services need) and are audited with the notification they acted on.
Changes reach open pages as ``persistent_notifications_updated`` events on the WebSocket.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from hub.auth import Role
from hub.core import Context
from hub.http.schemas import NO_CONTENT, OPT_STRING, STRING, array, json_ok, obj
from hub.http.view import KEY_HUB, ApiError, Route, current_user, json_response, remote
from hub.notify import (
    ATTR_ID,
    DOMAIN,
    SERVICE_DISMISS,
    SERVICE_MARK_READ,
    PersistentNotification,
    PersistentStatus,
    persistent_notifications,
)
from hub.redact import redact_text
from hub.security import audit

# A notification id as notify.persistent accepts it (1-64 characters).
MAX_ID_LENGTH: Final = 64

NOTIFICATION_SCHEMA: Final = obj(
    {
        "id": STRING,
        "title": OPT_STRING,
        "message": STRING,
        "status": {"type": "string", "enum": [str(s) for s in PersistentStatus]},
        "created_at": {"type": "number"},
        "notifier": OPT_STRING,
        "error": OPT_STRING,
    }
)


def notification_json(item: PersistentNotification) -> dict[str, Any]:
    """A persistent notification of the API contract (credentials in URLs redacted)."""
    return {
        "id": item.id,
        "title": item.title,
        "message": redact_text(item.message),
        "status": str(item.status),
        "created_at": item.created_at,
        "notifier": item.notifier,
        "error": redact_text(item.error) if item.error is not None else None,
    }


async def list_notifications(request: web.Request) -> web.Response:
    """The persistent notifications, newest first; ``status`` filters (unread, read, failed)."""
    wanted = request.query.get("status") or None
    if wanted is not None and wanted not in set(PersistentStatus):
        raise ApiError(
            400,
            "invalid",
            f"status must be one of {', '.join(PersistentStatus)}, not {wanted[:40]!r}",
        )
    items = [
        item
        for item in reversed(persistent_notifications(request.app[KEY_HUB]))
        if wanted is None or item.status == wanted
    ]
    return json_response([notification_json(item) for item in items])


async def _act(request: web.Request, service: str) -> web.Response:
    """Call notify.<service> for the notification in the path, as the caller, audited."""
    hub = request.app[KEY_HUB]
    user = current_user(request)
    notification_id = request.match_info["notification_id"]
    action = f"{DOMAIN}.{service}"
    context = Context(user_id=user.id)

    def record(target: str, result: str = "ok") -> None:
        audit(
            hub,
            action,
            user=user,
            source=remote(request),
            target=target,
            result=result,
            context=context,
        )

    if len(notification_id) > MAX_ID_LENGTH:
        raise ApiError(400, "invalid", f"a notification id has at most {MAX_ID_LENGTH} characters")
    item = next((n for n in persistent_notifications(hub) if n.id == notification_id), None)
    if item is None:
        record(notification_id, "error: not found")
        raise ApiError(404, "not_found", f"no persistent notification {notification_id!r}")
    target = f"{item.title or item.message[:60]} ({item.id})"
    try:
        await hub.services.call(DOMAIN, service, {ATTR_ID: notification_id}, None, context)
    except Exception as err:
        record(target, f"error: {err}")
        raise
    record(target)
    return web.Response(status=204)


async def dismiss_notification(request: web.Request) -> web.Response:
    """Remove a persistent notification."""
    return await _act(request, SERVICE_DISMISS)


async def read_notification(request: web.Request) -> web.Response:
    """Mark an unread persistent notification read (a failed one keeps its status)."""
    return await _act(request, SERVICE_MARK_READ)


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/notifications",
        list_notifications,
        Role.VIEWER,
        "Persistent notifications (failed deliveries included), newest first",
        query=("status",),
        tag="notifications",
        responses=json_ok(array(NOTIFICATION_SCHEMA)),
    ),
    Route(
        "POST",
        "/api/notifications/{notification_id}/dismiss",
        dismiss_notification,
        Role.OPERATOR,
        "Dismiss a persistent notification",
        tag="notifications",
        responses=NO_CONTENT,
    ),
    Route(
        "POST",
        "/api/notifications/{notification_id}/read",
        read_notification,
        Role.OPERATOR,
        "Mark a persistent notification read",
        tag="notifications",
        responses=NO_CONTENT,
    ),
)
