"""The OCPP section of the station page (issue 13, "Services and pages").

The section (integrations/ocpp/panels/station.js, a plain ES module the hub serves as the
panel's module) shows a station's stored device-model report, monitors, installed
certificates, local list version, reservations, display messages and firmware requests, each
with the actions the signed-in user's role allows. It reads and acts through the ``ocpp.*``
services; the one read view here tells it what the services cannot: whether the station is
connected, the OCPP version it speaks, its ports, and the role each of those services needs
(so the page hides what the user may not do, and stays right when a role changes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from hub.auth import Role
from hub.http.schemas import (
    BOOLEAN,
    INTEGER,
    ROLE,
    STRING,
    array,
    dict_of,
    json_ok,
    nullable,
    obj,
    one_of,
)
from hub.http.view import json_response
from integrations.ocpp.const import DOMAIN
from integrations.ocpp.features.base import MessageHandler, valid_cp_id
from integrations.ocpp.protocol import OcppVersion

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.system import CentralSystem

HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {}
CONFIG: dict[Any, Any] = {}

MODULE: Final = Path(__file__).resolve().parent.parent / "panels" / "station.js"
ELEMENT: Final = "ocpp-station-section"

# The services the section calls; the view reports the role each needs.
SERVICES: Final = (
    "get_stored_report",
    "get_base_report",
    "get_monitors",
    "set_variable_monitoring",
    "clear_variable_monitoring",
    "get_installed_certificate_ids",
    "install_certificate",
    "delete_certificate",
    "get_local_list_version",
    "send_local_list",
    "reservations",
    "reserve_now",
    "cancel_reservation",
    "get_display_messages",
    "set_display_message",
    "clear_display_message",
    "get_firmware_updates",
)

# What GET /api/ocpp/stations/{charge_point_id} answers (an id never seen: known false).
STATION_ANSWER: Final = obj(
    {
        "charge_point_id": STRING,
        "known": BOOLEAN,
        "online": BOOLEAN,
        "version": nullable(one_of(*OcppVersion)),  # its subprotocol, once it connected
        # What the hub answered its last BootNotification.
        "boot_status": nullable(one_of("Accepted", "Pending", "Rejected")),
        "ports": array(INTEGER),
        # service name -> the least role that may call it
        "roles": dict_of(ROLE),
    }
)


def describe(system: CentralSystem, cp_id: str) -> dict[str, Any]:
    """What the section needs to know of a station besides the services' answers."""
    hub = system.hub
    station = system.stations.get(cp_id)
    roles = {
        name: hub.services.role(DOMAIN, name)
        for name in SERVICES
        if hub.services.has_service(DOMAIN, name)
    }
    if station is None:
        return {
            "charge_point_id": cp_id,
            "known": False,
            "online": False,
            "version": None,
            "boot_status": None,
            "ports": [],
            "roles": roles,
        }
    return {
        "charge_point_id": cp_id,
        "known": True,
        "online": station.online,
        "version": station.version.value if station.version is not None else None,
        "boot_status": station.boot_status,
        "ports": sorted(number for number in station.ports if number > 0),
        "roles": roles,
    }


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the station page section and its read view."""

    async def get_station(request: web.Request) -> web.Response:
        """A station's connection, OCPP version, ports, and the roles of the section's
        services."""
        cp_id = valid_cp_id(request.match_info["charge_point_id"])
        return json_response(describe(system, cp_id))

    ctx.register_view(
        "GET",
        "/api/ocpp/stations/{charge_point_id}",
        get_station,
        role=Role.VIEWER,
        summary="An OCPP station's connection, version and ports, for its station page section",
        responses=json_ok(STATION_ANSWER),
    )
    ctx.register_panel(
        "station",
        "OCPP",
        MODULE,
        ELEMENT,
        role=Role.VIEWER,
        placement="station",
    )
