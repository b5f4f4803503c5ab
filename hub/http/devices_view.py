"""Operators name devices and file stations under sites (the device registry), audited.

A name or site set here is the operator's: the integration that registers the device keeps
it when it registers the device again (hub.registry.USER_FIELDS), after a restart too.
"""

from __future__ import annotations

import re
from typing import Any, Final

from aiohttp import web

from hub.auth import Role
from hub.core import Context, Hub, new_id
from hub.http.rest import station_json
from hub.http.schemas import INTEGER, STRING, array, json_ok, nullable, obj, ref
from hub.http.view import KEY_HUB, ApiError, Route, current_user, json_response, read_json, remote
from hub.registry import DeviceEntry, DeviceKind, DeviceRegistry, device_registry
from hub.security import audit

MAX_NAME_LENGTH: Final = 100
# Sites the hub itself makes for names typed in the page (an integration's own sites are
# filed under its domain).
SITE_INTEGRATION: Final = "hub"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _name(field: str, value: Any) -> str:
    """A trimmed name of 1-100 printable characters, or a 400 saying why not."""
    if not isinstance(value, str):
        raise ApiError(400, "invalid", f"{field} must be a string")
    text = value.strip()
    if not 1 <= len(text) <= MAX_NAME_LENGTH:
        raise ApiError(400, "invalid", f"{field} must be 1 to {MAX_NAME_LENGTH} characters")
    if _CONTROL.search(text):
        raise ApiError(400, "invalid", f"{field} must not contain control characters")
    return text


def _parent_site(devices: DeviceRegistry, device: DeviceEntry) -> DeviceEntry | None:
    parent = devices.get(device.via_device_id) if device.via_device_id else None
    return parent if parent is not None and parent.kind is DeviceKind.SITE else None


def _site_named(devices: DeviceRegistry, station: DeviceEntry, name: str) -> DeviceEntry:
    """The site of that name (case aside), the station's own integration's first; else a new one."""
    wanted = name.casefold()
    found = sorted(
        (d for d in devices.devices(kind=DeviceKind.SITE) if (d.name or "").casefold() == wanted),
        key=lambda d: (d.integration != station.integration, d.created_at, d.id),
    )
    if found:
        return found[0]
    return devices.get_or_create(
        integration=SITE_INTEGRATION,
        identifiers=frozenset({(SITE_INTEGRATION, f"site:{new_id()}")}),
        kind=DeviceKind.SITE,
        name=name,
    )


def _drop_if_empty(devices: DeviceRegistry, site: DeviceEntry | None) -> None:
    """Remove a site the hub made once no device is below it."""
    if site is not None and site.integration == SITE_INTEGRATION and not devices.children(site.id):
        devices.remove(site.id)


def _answer(hub: Hub, device: DeviceEntry) -> dict[str, Any]:
    if device.kind is DeviceKind.STATION:
        return station_json(hub, device)
    return device.as_dict()


async def update_device(request: web.Request) -> web.Response:
    """Give a device a name and (a station) a site by name; null site: none."""
    hub = request.app[KEY_HUB]
    user = current_user(request)
    device_id = request.match_info["device_id"]
    devices = device_registry(hub)
    context = Context(user_id=user.id)

    def record(target: str, result: str = "ok") -> None:
        audit(
            hub,
            "device.update",
            user=user,
            source=remote(request),
            target=target,
            result=result,
            context=context,
        )

    body = await read_json(request)
    device = devices.get(device_id)
    if device is None:
        record(device_id[:100], "error: not found")
        raise ApiError(404, "not_found", f"no device {device_id[:100]!r}")
    label = device.name or device.id
    try:
        unknown = set(body) - {"name", "site"}
        if unknown:
            raise ApiError(400, "invalid", f"unknown fields: {', '.join(sorted(unknown))[:200]}")
        if not body:
            raise ApiError(400, "invalid", "give a name, a site or both")
        changes: dict[str, Any] = {}
        said: list[str] = []
        if "name" in body:
            changes["name"] = _name("name", body["name"])
            said.append(f"name {changes['name']!r}")
        old_site = _parent_site(devices, device)
        new_site: DeviceEntry | None = old_site
        if "site" in body:
            if device.kind is not DeviceKind.STATION:
                raise ApiError(400, "invalid", f"only a station has a site, not a {device.kind}")
            site_name = None if body["site"] is None else _name("site", body["site"])
            new_site = None if site_name is None else _site_named(devices, device, site_name)
            changes["via_device_id"] = None if new_site is None else new_site.id
            said.append(f"site {site_name!r}" if site_name else "no site")
    except ApiError as err:
        record(label, f"error: {err.message}")
        raise
    device = devices.update(device.id, by_user=True, **changes)
    if old_site is not None and (new_site is None or new_site.id != old_site.id):
        _drop_if_empty(devices, old_site)
    record(f"{label}: {', '.join(said)}")
    return json_response(_answer(hub, device))


async def list_sites(request: web.Request) -> web.Response:
    """Every site with the number of stations filed under it, by name."""
    devices = device_registry(request.app[KEY_HUB])
    sites = sorted(
        devices.devices(kind=DeviceKind.SITE), key=lambda d: ((d.name or "").casefold(), d.id)
    )
    return json_response(
        [
            {
                "id": site.id,
                "name": site.name,
                "integration": site.integration,
                "stations": sum(
                    1 for child in devices.children(site.id) if child.kind is DeviceKind.STATION
                ),
            }
            for site in sites
        ]
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "PATCH",
        "/api/devices/{device_id}",
        update_device,
        Role.OPERATOR,
        "Name a device; file a station under a site by name (null: no site)",
        body={"name": "string (1-100)", "site": "string (1-100) or null"},
        tag="chargers",
        # A station as GET /api/chargers/{id} answers it; another device as the registry has it.
        responses=json_ok({"anyOf": [ref("Station"), obj({"id": STRING, "kind": STRING})]}),
    ),
    Route(
        "GET",
        "/api/sites",
        list_sites,
        Role.VIEWER,
        "Sites with their stations",
        tag="chargers",
        responses=json_ok(
            array(
                obj(
                    {
                        "id": STRING,
                        "name": nullable(STRING),
                        "integration": STRING,
                        "stations": INTEGER,
                    }
                )
            )
        ),
    ),
)
