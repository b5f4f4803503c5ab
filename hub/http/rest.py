"""REST views: states, services, chargers, security events, audit."""

from __future__ import annotations

import math
from typing import Any, Final

from aiohttp import hdrs, web

from hub.auth import Role
from hub.charger import ChargerCapability, get_charger, pending_chargers
from hub.core import Hub
from hub.history import history_of
from hub.http import ha_api, logbook
from hub.http.monitoring import parse_time
from hub.http.schemas import BOOLEAN, STRING, array, json_ok, obj, ref
from hub.http.service_call import call_service
from hub.http.state_json import (
    STATES_QUERY,
    Slicer,
    StatesQuery,
    not_modified,
    respond,
    state_encoder,
)
from hub.http.state_json import state_json as state_json  # noqa: PLC0414 (re-exported)
from hub.http.view import (
    KEY_HUB,
    ApiError,
    Route,
    current_user,
    dumps,
    json_response,
    query_int,
    read_json,
    remote,
)
from hub.registry import DeviceEntry, DeviceKind, device_registry, entity_registry
from hub.security import (
    SecurityQuery,
    Severity,
    public_event,
    recent_audit,
    search_security_events,
)

UPTIME_SUFFIX = "_uptime"


async def get_states(request: web.Request) -> web.StreamResponse:
    """Every state, or those the query selects; a page of them; or those changed since."""
    hub = request.app[KEY_HUB]
    encoder = state_encoder(hub)
    query = StatesQuery.parse(request, encoder)
    slicer = Slicer()  # the loop is yielded to every millisecond, from here to the end
    selected = await query.select(hub, slicer)
    if query.since is not None:
        parts, removed, revision = await encoder.changes(selected, query.since, query.key, slicer)
        head = b'{"revision":%s,"reset":%s,"removed":%s,"states":[' % (
            dumps(f"{encoder.instance}.{revision}"),
            b"true" if query.reset else b"false",
            dumps([] if query.reset else query.keep_removed(removed)),
        )
        no_store: dict[str, str] = {hdrs.CACHE_CONTROL: "no-store"}
        return await respond(request, head, parts, b"]}", no_store, slicer)
    page, next_cursor = await query.page(selected)
    collected = await encoder.collect(page, query.key, slicer)
    tag = await collected.etag(encoder.instance, next_cursor or "")
    headers: dict[str, str] = {hdrs.ETAG: tag, hdrs.CACHE_CONTROL: "no-cache"}
    if next_cursor is not None:
        url = request.rel_url.update_query(cursor=next_cursor)
        headers[hdrs.LINK] = f'<{url}>; rel="next"'
    if not_modified(request, tag):
        return web.Response(status=304, headers=headers)
    return await respond(request, b"[", collected.parts, b"]", headers, slicer)


async def get_state(request: web.Request) -> web.Response:
    """One entity's state."""
    entity_id = request.match_info["entity_id"]
    hub = request.app[KEY_HUB]
    state = hub.states.get(entity_id)
    if state is None:
        raise ApiError(404, "not_found", f"no entity {entity_id!r}")
    encoder = state_encoder(hub)
    body, revision = encoder.entry(state)
    tag = f'W/"{encoder.instance}-{revision}"'
    headers: dict[str, str] = {hdrs.ETAG: tag, hdrs.CACHE_CONTROL: "no-cache"}
    if not_modified(request, tag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


async def post_service(request: web.Request) -> web.Response:
    """Call a service as the logged-in user (audited)."""
    user = current_user(request)
    body = await read_json(request)
    data = body.get("data", {})
    target = body.get("target")
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "data must be an object")
    if target is not None and not isinstance(target, dict):
        raise ApiError(400, "invalid", "target must be an object")
    unknown = set(body) - {"data", "target"}
    if unknown:
        raise ApiError(400, "invalid", f"unknown fields: {', '.join(sorted(unknown))}")
    result = await call_service(
        request.app[KEY_HUB],
        user,
        remote(request),
        request.match_info["domain"],
        request.match_info["service"],
        data,
        target,
    )
    return json_response({"result": result})


# Chargers -------------------------------------------------------------------------------


def _entity_keys(hub: Hub, device_id: str) -> dict[str, str]:
    """The device's entities by a key made from their name ("serial number": serial_number)."""
    keys: dict[str, str] = {}
    for entry in entity_registry(hub).entities_for_device(device_id):
        name = entry.original_name or entry.entity_id.partition(".")[2]
        keys.setdefault(name.lower().replace(" ", "_"), entry.entity_id)
    return keys


def _value(hub: Hub, entity_id: str | None) -> str | None:
    if entity_id is None:
        return None
    state = hub.states.get(entity_id)
    if state is None or state.state in ("unknown", "unavailable"):
        return None
    return state.state


def _number(hub: Hub, entity_id: str | None) -> float | None:
    value = _value(hub, entity_id)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _uptime(hub: Hub, device_id: str, entities: dict[str, str]) -> float | None:
    for entity_id in entities.values():
        if entity_id.endswith(UPTIME_SUFFIX):
            return _number(hub, entity_id)
    for entry in entity_registry(hub).entities_for_device(device_id):
        if entry.entity_id.endswith(UPTIME_SUFFIX):
            return _number(hub, entry.entity_id)
    return None


def _port_json(hub: Hub, device: DeviceEntry) -> dict[str, Any]:
    entities = _entity_keys(hub, device.id)
    return {
        "device_id": device.id,
        "number": device.connector_id if device.connector_id is not None else device.evse_id,
        "name": device.name,
        "status": _value(hub, entities.get("status")),
        "error_code": _value(hub, entities.get("error_code")),
        "power_w": _number(hub, entities.get("power")),
        "energy_wh": _number(hub, entities.get("energy")),
        "session_energy_wh": _number(hub, entities.get("session_energy")),
        "uptime_pct": _uptime(hub, device.id, entities),
        "entities": entities,
    }


def _site(hub: Hub, device: DeviceEntry) -> str | None:
    """The name of the site device above a station, if any."""
    devices = device_registry(hub)
    seen: set[str] = set()
    parent = devices.get(device.via_device_id) if device.via_device_id else None
    while parent is not None and parent.id not in seen:
        if parent.kind is DeviceKind.SITE:
            return parent.name
        seen.add(parent.id)
        parent = devices.get(parent.via_device_id) if parent.via_device_id else None
    return None


def station_json(hub: Hub, device: DeviceEntry) -> dict[str, Any]:
    """Station of the API contract, from the registries and states (any integration)."""
    entities = _entity_keys(hub, device.id)
    charger = get_charger(hub, device.id)
    connectivity = _value(hub, entities.get("connectivity"))
    online = charger.online if charger is not None else connectivity == "online"
    ident = next(
        (value for domain, value in sorted(device.identifiers) if domain == device.integration),
        None,
    )
    capabilities = (
        sorted(
            (flag.name or "").lower()
            for flag in ChargerCapability
            if flag and flag in charger.capabilities
        )
        if charger is not None
        else []
    )
    ports = sorted(
        (d for d in device_registry(hub).descendants(device.id) if d.kind is DeviceKind.CONNECTOR),
        key=lambda d: (d.connector_id or d.evse_id or 0, d.id),
    )
    return {
        "device_id": device.id,
        "name": device.name,
        "charge_point_id": ident,
        "protocol": device.integration,
        "site": _site(hub, device),
        "online": online,
        "connectivity": connectivity,
        "status": _value(hub, entities.get("status")),
        "vendor": _value(hub, entities.get("vendor")) or device.manufacturer,
        "model": _value(hub, entities.get("model")) or device.model,
        "serial": _value(hub, entities.get("serial_number")) or device.serial_number,
        "firmware": _value(hub, entities.get("firmware")) or device.sw_version,
        "last_seen": _value(hub, entities.get("last_seen")),
        "capabilities": capabilities,
        "entities": entities,
        "ports": [_port_json(hub, port) for port in ports],
    }


def stations(hub: Hub) -> list[DeviceEntry]:
    """Every station device, by name."""
    return sorted(
        device_registry(hub).devices(kind=DeviceKind.STATION),
        key=lambda d: ((d.name or "").lower(), d.id),
    )


async def get_chargers(request: web.Request) -> web.Response:
    """Every station with its ports."""
    hub = request.app[KEY_HUB]
    return json_response([station_json(hub, device) for device in stations(hub)])


async def get_charger_view(request: web.Request) -> web.Response:
    """One station."""
    hub = request.app[KEY_HUB]
    device_id = request.match_info["device_id"]
    device = device_registry(hub).get(device_id)
    if device is None or device.kind is not DeviceKind.STATION:
        raise ApiError(404, "not_found", f"no station {device_id!r}")
    return json_response(station_json(hub, device))


async def get_pending(request: web.Request) -> web.Response:
    """Chargers that connected unknown and wait for approval, of every integration."""
    return json_response([p.as_dict() for p in pending_chargers(request.app[KEY_HUB])])


async def _admission(request: web.Request, service: str) -> web.Response:
    hub = request.app[KEY_HUB]
    cp_id = request.match_info["cp_id"]
    waiting = next((p for p in pending_chargers(hub) if p.charger_id == cp_id), None)
    if waiting is None:
        raise ApiError(404, "not_found", f"no charger {cp_id!r} waiting for approval")
    result = await call_service(
        hub,
        current_user(request),
        remote(request),
        waiting.integration,
        service,
        {"charge_point_id": cp_id},
        None,
    )
    return json_response({"result": result})


async def approve_pending(request: web.Request) -> web.Response:
    """Admit a pending charger."""
    return await _admission(request, "approve_charger")


async def reject_pending(request: web.Request) -> web.Response:
    """Refuse a pending charger for good."""
    return await _admission(request, "reject_charger")


# Security and audit ---------------------------------------------------------------------


async def get_security_events(request: web.Request) -> web.Response:
    """Security events, newest first, by kind, charger, source, least severity and time;
    admin-only data (typed usernames) for admins only."""
    hub = request.app[KEY_HUB]
    raw_severity = request.query.get("severity") or None
    try:
        min_severity = Severity(raw_severity) if raw_severity is not None else None
    except ValueError:
        raise ApiError(
            400, "invalid", f"severity must be one of {', '.join(Severity)}, not {raw_severity!r}"
        ) from None
    since = parse_time(request, "since", math.nan)
    until = parse_time(request, "until", math.nan)
    query = SecurityQuery(
        kind=request.query.get("kind") or None,
        charge_point_id=request.query.get("station") or None,
        source=request.query.get("source") or None,
        min_severity=min_severity,
        since=None if math.isnan(since) else since,
        until=None if math.isnan(until) else until,
        limit=query_int(request, "limit", 100, 1, 10_000),
    )
    events = await search_security_events(hub, query)
    admin = current_user(request).role is Role.ADMIN
    return json_response([e if admin else public_event(e) for e in events])


async def get_audit(request: web.Request) -> web.Response:
    """The audit log, newest first: from the history store when it runs, else the recent ones."""
    hub = request.app[KEY_HUB]
    limit = query_int(request, "limit", 100, 1, 10_000)
    history = history_of(hub)
    if history is not None:
        await history.flush()  # include what happened in the last second
        rows = await history.audit(limit)
    else:
        rows = recent_audit(hub, limit)
    return json_response(rows)


_STATES_RESPONSES: Final = {
    **json_ok(
        {
            "oneOf": [
                array(ref("State")),
                obj(
                    {
                        "revision": STRING,
                        "reset": BOOLEAN,
                        "removed": array(STRING),
                        "states": array(ref("State")),
                    }
                ),
            ]
        }
    ),
    "304": {},
}

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/states",
        get_states,
        Role.VIEWER,
        "Every state, or those of a domain, entity or device; a page (limit, cursor); or "
        "those changed since an earlier answer's revision",
        query=STATES_QUERY,
        responses=_STATES_RESPONSES,
    ),
    Route(
        "GET",
        "/api/states/{entity_id}",
        get_state,
        Role.VIEWER,
        "One state",
        responses={**json_ok(ref("State")), "304": {}},
    ),
    Route(
        "POST",
        "/api/services/{domain}/{service}",
        post_service,
        Role.VIEWER,
        "Call a service (operator for charger/alert/automation, admin otherwise)",
        body={"data": "object", "target": "object"},
        responses=json_ok(ref("ServiceResult")),
    ),
    Route(
        "GET",
        "/api/chargers",
        get_chargers,
        Role.VIEWER,
        "Every station",
        tag="chargers",
        responses=json_ok(array(ref("Station"))),
    ),
    Route(
        "GET",
        "/api/chargers/{device_id}",
        get_charger_view,
        Role.VIEWER,
        "One station",
        tag="chargers",
        responses=json_ok(ref("Station")),
    ),
    Route(
        "GET",
        "/api/pending_chargers",
        get_pending,
        Role.VIEWER,
        "Chargers awaiting approval",
        tag="chargers",
        responses=json_ok(array(ref("PendingCharger"))),
    ),
    Route(
        "POST",
        "/api/pending_chargers/{cp_id}/approve",
        approve_pending,
        Role.OPERATOR,
        "Approve a pending charger",
        tag="chargers",
        responses=json_ok(ref("ServiceResult")),
    ),
    Route(
        "POST",
        "/api/pending_chargers/{cp_id}/reject",
        reject_pending,
        Role.OPERATOR,
        "Reject a pending charger",
        tag="chargers",
        responses=json_ok(ref("ServiceResult")),
    ),
    Route(
        "GET",
        "/api/security/events",
        get_security_events,
        Role.VIEWER,
        "Security events: by kind, station (charge point id), source, least severity and "
        "time (since, until: ISO 8601)",
        query=("limit", "kind", "station", "source", "severity", "since", "until"),
        tag="security",
        responses=json_ok(array(ref("SecurityEvent"))),
    ),
    Route(
        "GET",
        "/api/audit",
        get_audit,
        Role.ADMIN,
        "The audit log",
        query=("limit",),
        tag="security",
        responses=json_ok(array(ref("AuditEntry"))),
    ),
    # Home Assistant's REST API, as its users know it.
    *ha_api.ROUTES,
    *logbook.ROUTES,
)
