"""Service calls from the API (REST and WebSocket): the role they need, and their audit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.auth import Role, User
from hub.core import Context, Hub
from hub.exceptions import ForbiddenError
from hub.redact import redact_text, secret_values
from hub.security import audit


class ServiceForbiddenError(ForbiddenError):
    """The user's role is too low for this service."""


def role_for_service(hub: Hub, domain: str, service: str) -> Role:
    """The least role allowed to call a service: what its integration registered it with."""
    return Role(hub.services.role(domain, service))


def describe_target(target: Mapping[str, Any] | None, data: Mapping[str, Any]) -> str | None:
    """A short text naming what a call acted on, for the audit log."""
    parts: list[str] = []
    for source in (target or {}, data):
        for key in ("device_id", "entity_id", "charge_point_id", "automation_id", "alert"):
            value = source.get(key)
            if value is None:
                continue
            values = [value] if isinstance(value, str) else list(value)
            parts.extend(f"{key}={v}" for v in values)
    return ", ".join(dict.fromkeys(parts)) or None


async def call_service(
    hub: Hub,
    user: User,
    source: str,
    domain: str,
    service: str,
    data: Mapping[str, Any],
    target: Mapping[str, Any] | None,
) -> Any:
    """Check the role, call the service with the user's context, audit the outcome."""
    action = f"{domain}.{service}"
    described = describe_target(target, data)
    context = Context(user_id=user.id)
    needed = role_for_service(hub, domain, service)
    # An unknown service needs an admin: others learn nothing of what exists.
    if not user.role.allows(needed):
        audit(
            hub,
            action,
            user=user,
            source=source,
            target=described,
            result="error: forbidden",
            context=context,
        )
        raise ServiceForbiddenError(f"{action} needs the {needed} role; you are {user.role}")
    try:
        result = await hub.services.call(domain, service, data, target, context)
    except Exception as err:
        # A validator or a charger may echo what it refused: the secrets sent stay out.
        secrets = secret_values(data, hub.services.secret_paths(domain, service))
        audit(
            hub,
            action,
            user=user,
            source=source,
            target=described,
            result=redact_text(f"error: {err}", secrets),
            context=context,
        )
        raise
    audit(hub, action, user=user, source=source, target=described, result="ok", context=context)
    return result
