"""Service calls from the API (REST and WebSocket): the role they need, and their audit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hub.auth import Role, User
from hub.core import Context, Hub
from hub.exceptions import ForbiddenError
from hub.redact import redact_text, secret_values
from hub.security import audit

# Domains an operator may call: control chargers, handle alerts, run automations. Every
# other service (configuration, notifications, raw protocol calls) needs an admin; an
# operator may also approve chargers, dismiss notifications and manage uptime exclusions.
OPERATOR_DOMAINS: Final = frozenset({"charger", "alert", "automation"})
OPERATOR_SERVICES: Final = frozenset(
    {
        ("ocpp", "approve_charger"),
        ("ocpp", "reject_charger"),
        ("notify", "dismiss"),
        ("notify", "mark_read"),
        ("uptime", "add_exclusion"),
        ("uptime", "remove_exclusion"),
    }
)
ADMIN_SERVICES: Final = frozenset({("automation", "reload")})


class ServiceForbiddenError(ForbiddenError):
    """The user's role is too low for this service."""


def role_for_service(domain: str, service: str) -> Role:
    """The least role allowed to call a service."""
    if (domain, service) in ADMIN_SERVICES:
        return Role.ADMIN
    if domain in OPERATOR_DOMAINS or (domain, service) in OPERATOR_SERVICES:
        return Role.OPERATOR
    return Role.ADMIN


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
    needed = role_for_service(domain, service)
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
