"""Home Assistant's REST endpoints, as its users know them: config, services, events, templates
and the error log.

``GET /api/config`` and ``GET /api/services`` describe the hub; ``POST /api/events/<type>``
fires an event of the caller's own (never one of the hub's: see ``reserved_event``);
``POST /api/template`` renders a template in the hub's sandbox (hub.template);
``GET /api/error_log`` shows the recent WARNING and worse log records (hub.logbuffer).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson
import voluptuous as vol
from aiohttp import web

from hub import __version__
from hub.auth import Role, User
from hub.config import SECRETS_FILE, ConfigError, load_yaml
from hub.const import MATCH_ALL
from hub.core import Context, Hub
from hub.exceptions import TemplateError
from hub.http.schemas import (
    JSON,
    TEXT,
    array,
    json_ok,
    obj,
    ref,
)
from hub.http.template_render import TEMPLATE_ROLE, render_tracked
from hub.http.view import (
    KEY_HUB,
    ApiError,
    Route,
    current_user,
    json_response,
    read_json,
    remote,
    validate,
)
from hub.logbuffer import log_buffer
from hub.redact import Secret, redact, redact_text
from hub.security import audit
from hub.template import MAX_TEMPLATE_LENGTH

# The units the hub's entities use (hub.entity's port tables, the uptime and charge success
# figures): Home Assistant's unit_system, for what a charging hub measures.
UNIT_SYSTEM: Final = {
    "power": "W",
    "energy": "Wh",
    "current": "A",
    "voltage": "V",
    "temperature": "°C",
    "duration": "s",
    "percentage": "%",
}

# A caller's own event: lower case, digits and underscores, a letter first.
_EVENT_TYPE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
# What the hub and its integrations fire: a caller could otherwise forge a state change, a
# charger going offline (uptime, alerts, automations), a security event or an audit entry.
RESERVED_EVENT_PREFIXES: Final = (
    "hub_",
    "state_",
    "service_",
    "call_service",
    "integration_",
    "charger_",
    "security_",
    "audit_",
    "device_registry_",
    "entity_registry_",
    "uptime_",
    "alert_",
    "automation_",
    "notification_",
    "persistent_notification",
)
MAX_EVENT_DATA: Final = 64 * 1024


@functools.cache
def _installed_domains() -> frozenset[str]:
    # Scanned once: entry points are read from disk; installing one needs a restart.
    from hub.plugins import PluginLoader

    return frozenset(PluginLoader.available())


def malformed_event(event_type: str) -> str | None:
    """Why event_type is no event type a caller may name, or None."""
    if event_type == MATCH_ALL or not _EVENT_TYPE.fullmatch(event_type):
        return (
            "an event type is 1 to 64 lower-case letters, digits and underscores, "
            "starting with a letter"
        )
    return None


def reserved_event(hub: Hub, event_type: str) -> str | None:
    """Why a caller may not fire event_type, or None when it is the caller's own to fire."""
    for prefix in RESERVED_EVENT_PREFIXES:
        if event_type.startswith(prefix):
            return f"{prefix}* events are the hub's own and cannot be fired through the API"
    from hub.plugins import plugin_registry

    domains = _installed_domains() | set(plugin_registry(hub).statuses())
    for domain in sorted(domains):
        if event_type == domain or event_type.startswith(f"{domain}_"):
            return (
                f"{domain}_* events belong to the {domain} integration and cannot be fired "
                "through the API"
            )
    return None


# Config ---------------------------------------------------------------------------------


def config_json(hub: Hub) -> dict[str, Any]:
    """The hub's configuration as Home Assistant's /api/config shows it; no secrets, no paths."""
    from hub.plugins import SetupState, plugin_registry

    loaded = sorted(
        domain
        for domain, status in plugin_registry(hub).statuses().items()
        if status.state is SetupState.loaded
    )
    config = hub.config
    return {
        "location_name": config.name if config is not None else "evhub",
        "time_zone": config.time_zone if config is not None else "UTC",
        "version": __version__,
        "state": str(hub.state).upper(),
        "unit_system": dict(UNIT_SYSTEM),
        "components": loaded,
        # The hub has no coordinates, elevation or currency setting.
        "latitude": None,
        "longitude": None,
        "elevation": None,
        "currency": None,
    }


async def get_config(request: web.Request) -> web.Response:
    """The hub's name, time zone, version, units and the integrations loaded."""
    return json_response(config_json(request.app[KEY_HUB]))


# Services -------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    try:
        orjson.dumps(value)
    except TypeError:
        return str(value)
    return value


def _selector(validator: Any, depth: int = 0) -> dict[str, Any]:
    """Home Assistant's selector for a voluptuous validator, as near as it can be told."""
    if depth > 8:
        return {}
    if isinstance(validator, Secret):
        return {"text": {"type": "password"}}
    if validator is bool:
        return {"boolean": {}}
    if validator is int or validator is float:
        return {"number": {"mode": "box"} if validator is float else {"step": 1}}
    if validator is str:
        return {"text": {}}
    if isinstance(validator, list):
        inner = _selector(validator[0], depth + 1) if validator else {}
        return {"object": {}} if not inner else {**inner, "multiple": True}
    if isinstance(validator, dict | vol.Schema):
        return {"object": {}}
    if isinstance(validator, vol.In):
        options = validator.container
        if isinstance(options, Mapping):
            options = list(options)
        if isinstance(options, list | tuple | set | frozenset):
            return {"select": {"options": [_jsonable(option) for option in options]}}
        return {}
    if isinstance(validator, vol.Coerce):
        return _selector(validator.type, depth + 1)
    if isinstance(validator, vol.Range):
        found: dict[str, Any] = {}
        if validator.min is not None:
            found["min"] = _jsonable(validator.min)
        if validator.max is not None:
            found["max"] = _jsonable(validator.max)
        return {"number": found}
    validators = getattr(validator, "validators", None)  # vol.All, vol.Any
    if isinstance(validators, list | tuple):
        merged: dict[str, Any] = {}
        for item in validators:
            part = _selector(item, depth + 1)
            for kind, options in part.items():
                if isinstance(options, dict) and isinstance(merged.get(kind), dict):
                    merged[kind] = {**merged[kind], **options}
                else:
                    merged.setdefault(kind, options)
            if isinstance(validator, vol.Any) and merged:
                break  # the first alternative that says something
        return merged
    return {}


def _mapping_of(schema: Any, depth: int = 0) -> Mapping[Any, Any] | None:
    """The dict a service schema validates, found through vol.Schema, vol.All and vol.Any."""
    if depth > 8 or schema is None:
        return None
    if isinstance(schema, vol.Schema):
        return _mapping_of(schema.schema, depth + 1)
    if isinstance(schema, Mapping):
        return schema
    for item in getattr(schema, "validators", None) or ():
        found = _mapping_of(item, depth + 1)
        if found is not None:
            return found
    return None


def describe_fields(schema: Any) -> dict[str, dict[str, Any]]:
    """Each field of a service schema: required, description, default and selector."""
    mapping = _mapping_of(schema)
    if mapping is None:
        return {}
    required_by_default = bool(getattr(schema, "required", False))
    fields: dict[str, dict[str, Any]] = {}
    for marker, validator in mapping.items():
        key = marker.schema if isinstance(marker, vol.Marker) else marker
        if not isinstance(key, str):
            continue  # vol.Extra, a validator as key
        field: dict[str, Any] = {
            "required": isinstance(marker, vol.Required)
            or (required_by_default and not isinstance(marker, vol.Optional))
        }
        description = getattr(marker, "description", None)
        if isinstance(description, str) and description:
            field["description"] = description
        default = getattr(marker, "default", vol.UNDEFINED)
        if default is not vol.UNDEFINED and not isinstance(validator, Secret):
            try:
                value = default() if callable(default) else default
            except Exception:
                value = None
            if value is not None:
                field["default"] = _jsonable(value)
        selector = _selector(validator)
        if selector:
            field["selector"] = selector
        fields[key] = field
    return fields


def services_json(hub: Hub) -> dict[str, dict[str, dict[str, Any]]]:
    """Every service by domain: its description, the role it needs and its fields."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for domain, services in sorted(hub.services.services().items()):
        found[domain] = {
            name: {
                "name": name.replace("_", " ").capitalize(),
                "description": service.description,
                "role": service.role,
                "fields": describe_fields(service.schema),
            }
            for name, service in sorted(services.items())
        }
    return found


async def get_services(request: web.Request) -> web.Response:
    """Every domain with its services, as Home Assistant lists them."""
    described = services_json(request.app[KEY_HUB])
    return json_response(
        [{"domain": domain, "services": services} for domain, services in described.items()]
    )


# Events ---------------------------------------------------------------------------------


def _audit(request: web.Request, user: User, target: str, result: str, context: Context) -> None:
    audit(
        request.app[KEY_HUB],
        "fire_event",
        user=user,
        source=remote(request),
        target=target,
        result=result,
        context=context,
    )


async def post_event(request: web.Request) -> web.Response:
    """Fire an event of the caller's own with the JSON body as its data (audited)."""
    hub = request.app[KEY_HUB]
    user = current_user(request)
    event_type = request.match_info["event_type"]
    context = Context(user_id=user.id)
    target = f"event_type={event_type[:100]}"
    malformed = malformed_event(event_type)
    if malformed is not None:
        _audit(request, user, target, f"error: {malformed}", context)
        raise ApiError(400, "invalid", malformed)
    reserved = reserved_event(hub, event_type)
    if reserved is not None:
        # Someone tried to forge one of the hub's events: audited as refused.
        _audit(request, user, target, f"error: {reserved}", context)
        raise ApiError(403, "reserved_event", reserved)
    if len(await request.read()) > MAX_EVENT_DATA:
        raise ApiError(413, "too_large", f"event data may be at most {MAX_EVENT_DATA} bytes")
    data = await read_json(request)
    # Secrets never reach the bus, the recorder or the automations that listen.
    hub.bus.fire(event_type, redact(data), context)
    _audit(request, user, target, "ok", context)
    return json_response({"message": f"Event {event_type} fired."})


# Templates ------------------------------------------------------------------------------

TEMPLATE_BODY: Final = vol.Schema(
    {
        vol.Required("template"): vol.All(
            str, vol.Length(max=MAX_TEMPLATE_LENGTH, msg="template too long")
        ),
        vol.Optional("variables", default=dict): dict,
    }
)


async def post_template(request: web.Request) -> web.Response:
    """Render a template with the hub's states; the text, or a 400 with the reason.

    Within hub.http.template_render's time limit; an admin's, like Home Assistant's.
    """
    body = await read_json(request)
    checked = validate(TEMPLATE_BODY, body)
    try:
        rendered = render_tracked(request.app[KEY_HUB], checked["template"], checked["variables"])
    except TemplateError as err:
        raise ApiError(400, "template_error", str(err)) from None
    return web.Response(text=rendered.text, content_type=TEXT)


# The error log --------------------------------------------------------------------------


def _secret_values(hub: Hub) -> list[str]:
    """The values in the hub's secrets.yaml (blocking: reads the file)."""
    path = hub.path(SECRETS_FILE)
    if not path.is_file():
        return []
    try:
        found = load_yaml(path, hub.config_dir)
    except (ConfigError, OSError, ValueError):
        return []
    values: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            values.append(str(value))

    collect(found)
    return values


def _line(record: Mapping[str, Any]) -> str:
    repeated = f" (repeated {record['count']} times)" if record["count"] > 1 else ""
    text = f"{record['time']} {record['level']} ({record['logger']}) {record['message']}{repeated}"
    if record["exception"]:
        text += "\n" + record["exception"].rstrip("\n")
    return text


async def get_error_log(request: web.Request) -> web.Response:
    """The recent WARNING and worse log records, newest first, secrets redacted.

    Plain text as Home Assistant answers it; ``?format=json`` gives the records.
    """
    hub = request.app[KEY_HUB]
    wanted = request.query.get("format") or "text"
    if wanted not in ("text", "json"):
        raise ApiError(400, "invalid", f"format must be text or json, not {wanted!r}")
    buffer = log_buffer()
    if buffer is None:
        raise ApiError(503, "unavailable", "the log buffer is not attached (no HTTP server runs)")
    secrets = await hub.run_in_executor(_secret_values, hub)
    records = buffer.records()
    for record in records:
        record["message"] = redact_text(record["message"], secrets)
        if record["exception"]:
            record["exception"] = redact_text(record["exception"], secrets)
    if wanted == "json":
        return json_response(records)
    return web.Response(text="".join(_line(r) + "\n" for r in records), content_type=TEXT)


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/config",
        get_config,
        Role.VIEWER,
        "The hub's name, time zone, version, units and loaded integrations (Home Assistant's "
        "/api/config)",
        tag="ha",
        responses=json_ok(ref("Config")),
    ),
    Route(
        "GET",
        "/api/services",
        get_services,
        Role.VIEWER,
        "Every domain with its services: description, role and fields (Home Assistant's "
        "/api/services)",
        tag="ha",
        responses=json_ok(array(ref("ServiceDomain"))),
    ),
    Route(
        "POST",
        "/api/events/{event_type}",
        post_event,
        Role.OPERATOR,
        "Fire an event of your own with the JSON body as its data; the hub's own event types "
        "are refused (audited)",
        body={"*": "the event data: any JSON object"},
        tag="ha",
        responses=json_ok(obj({"message": {"type": "string"}})),
    ),
    Route(
        "POST",
        "/api/template",
        post_template,
        TEMPLATE_ROLE,
        "Render a template with the hub's states (at most 0.25 s); the text, or 400 with the "
        "reason",
        body={"template": "string", "variables": "object"},
        tag="ha",
        responses={"200": {TEXT: {"type": "string"}}},
    ),
    Route(
        "GET",
        "/api/error_log",
        get_error_log,
        Role.ADMIN,
        "The recent WARNING and worse log records, newest first, secrets redacted (text; "
        "format=json for records)",
        query=("format",),
        tag="ha",
        responses={
            "200": {TEXT: {"type": "string"}, JSON: array(ref("LogRecord"))},
        },
    ),
)
