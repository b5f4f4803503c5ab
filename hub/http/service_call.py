"""Service calls from the API (REST and WebSocket): the role they need, and their audit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.auth import Role, User
from hub.core import Context, Hub
from hub.exceptions import ForbiddenError
from hub.redact import redact_text, secret_values
from hub.registry import device_registry
from hub.security import audit


class ServiceForbiddenError(ForbiddenError):
    """The user's role is too low for this service."""


def role_for_service(hub: Hub, domain: str, service: str) -> Role:
    """The least role allowed to call a service: what its integration registered it with."""
    return Role(hub.services.role(domain, service))


def describe_target(
    target: Mapping[str, Any] | None, data: Mapping[str, Any], hub: Hub | None = None
) -> str | None:
    """A short text naming what a call acted on, for the audit log: a device's or entity's
    name where the hub knows it (the ids stay in the entry's data), else key=id."""
    parts: list[str] = []
    for source in (target or {}, data):
        for key in ("device_id", "entity_id", "charge_point_id", "automation_id", "alert"):
            value = source.get(key)
            if value is None:
                continue
            values = [value] if isinstance(value, str) else list(value)
            parts.extend(_name_of(hub, key, v) for v in values)
    return ", ".join(dict.fromkeys(parts)) or None


def device_label(hub: Hub, device_id: str) -> str | None:
    """A device's name for people: a port's with its station's ("Depot · Bay 1"), or None."""
    devices = device_registry(hub)
    device = devices.get(device_id)
    if device is None or not device.name:
        return None
    station = devices.station_of(device_id)
    if (
        station is not None
        and station.id != device.id
        and station.name
        and not device.name.startswith(station.name)
    ):
        return f"{station.name} · {device.name}"
    return device.name


def _name_of(hub: Hub | None, key: str, value: Any) -> str:
    """A device's label, an entity's friendly name, or key=id where the hub knows no name."""
    if hub is not None and isinstance(value, str):
        if key == "device_id":
            label = device_label(hub, value)
            if label is not None:
                return label
        elif key == "entity_id":
            state = hub.states.get(value)
            name = state.attributes.get("friendly_name") if state is not None else None
            if isinstance(name, str) and name:
                return name
    return f"{key}={value}"


def audit_call_data(
    target: Mapping[str, Any] | None, data: Mapping[str, Any]
) -> dict[str, Any] | None:
    """What a call's audit entry keeps of it: the target's ids and the data sent."""
    merged = {**(target or {}), **data}
    return merged or None


async def call_service(
    hub: Hub,
    user: User,
    source: str,
    domain: str,
    service: str,
    data: Mapping[str, Any],
    target: Mapping[str, Any] | None,
    *,
    target_name: str | None = None,
) -> Any:
    """Check the role, call the service with the user's context, audit the outcome.

    target_name names what the call acts on in the audit log when the caller knows it
    better than the ids do (an alert's title); the data sent is kept, secrets redacted.
    """
    action = f"{domain}.{service}"
    described = target_name or describe_target(target, data, hub)
    sent = audit_call_data(target, data)
    context = Context(user_id=user.id)

    def record(result: str) -> None:
        audit(
            hub,
            action,
            user=user,
            source=source,
            target=described,
            result=result,
            context=context,
            data=sent,
            secret_paths=hub.services.secret_paths(domain, service),
        )

    needed = role_for_service(hub, domain, service)
    # An unknown service needs an admin: others learn nothing of what exists.
    if not user.role.allows(needed):
        record("error: forbidden")
        raise ServiceForbiddenError(f"{action} needs the {needed} role; you are {user.role}")
    try:
        result = await hub.services.call(domain, service, data, target, context)
    except Exception as err:
        # A validator or a charger may echo what it refused: the secrets sent stay out.
        secrets = secret_values(data, hub.services.secret_paths(domain, service))
        record(redact_text(f"error: {err}", secrets))
        raise
    record("ok")
    return result
