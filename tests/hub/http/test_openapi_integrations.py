"""The integrations' views document what they answer, and their real answers match.

Views exist only while their integration runs, so one hub here runs every integration with
views, each against what its own tests use: a real mosquitto and a simulated go-eCharger
(mqtt), pymodbus wallboxes over TCP and over a serial line on a pseudo-terminal pair, and
one announced on the loopback LAN (modbus), the faithful fake of Zaptec's cloud (zaptec), a
real OCPP charger with sessions (ocpp, charge_success), the security audit, and the example
third-party package installed with pip (acme). Every view is then called with data behind
it (sessions open, a wallbox discovered, findings made), and each answer, success or
refusal, is validated against what /api/openapi.json documents for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from jsonschema import Draft202012Validator

from hub.charger import get_charger
from hub.core import Hub
from hub.http.extensions import extensions
from hub.plugins import plugin_registry
from hub.registry import DeviceKind, device_registry
from hub.testing import Connect
from integrations.modbus.simulator import SimulatedWallbox, SimulatorServer
from integrations.mqtt.simulator import GoESimulator, SimulatedGoE
from tests.hub.http.conftest import STATION_A, Api, api_of, configured_hub
from tests.hub.http.test_openapi_responses import _checked_call, _successes, _undocumented
from tests.integrations.modbus.conftest import (  # noqa: F401 - the fixtures
    PROFILES,
    StartServer,
    announce_keba,
    serial_line,
    wallbox_server,
)
from tests.integrations.mqtt.conftest import Broker, broker, wait_until  # noqa: F401
from tests.integrations.ocpp.conftest import (  # noqa: F401 - the fixture
    connect,
    now_iso,
    start_transaction,
    stop_transaction,
    ws_url,
)
from tests.integrations.zaptec.conftest import (  # noqa: F401 - the fixture
    PASSWORD,
    USERNAME,
    StartCloud,
    zaptec_cloud,
)

# The integrations whose views are checked here, each running in the hub below.
DOMAINS = ("acme", "charge_success", "modbus", "mqtt", "ocpp", "security_audit", "zaptec")
GO_E_SERIAL = "012345"


def _config(broker_port: int, modbus_port: int, tty_name: str, zaptec_url: str) -> str:
    return (
        STATION_A
        + f"""\
mqtt:
  port: {broker_port}
  chargers:
    - id: garage
      name: Garage go-e
      profile: go_e
      serial: '{GO_E_SERIAL}'
modbus:
  timeout: 1
  discovery:
    interfaces: [127.0.0.1]
  devices:
    - id: box
      name: Carport KEBA
      profile: keba_p30
      host: 127.0.0.1
      port: {modbus_port}
    - id: rs485
      name: Barn ABB
      profile: abb_terra_ac
      serial: {{port: {tty_name}, baudrate: 19200}}
zaptec:
  username: {USERNAME}
  password: {PASSWORD}
  base_url: {zaptec_url}
  scan_interval: 30
  timeout: 2
security_audit:
acme:
  stations:
    - id: workshop
      name: Workshop
      connectors: 2
    - id: street
      model: Wallbox 11
      boot_status: Faulted
"""
    )


@dataclass
class Fleet:
    """The running hub, its client and its OpenAPI document."""

    api: Api
    http: aiohttp.ClientSession
    document: dict[str, Any]


async def _ocpp_sessions(hub: Hub, connect: Connect) -> Any:  # noqa: F811
    """A charger with a failed attempt, a finished session and one still charging."""
    cp = await connect(ws_url(hub, "CP-A"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    for connector, status in ((1, "Preparing"), (1, "Available"), (2, "Available")):
        await cp.call(
            "StatusNotification",
            {"connectorId": connector, "errorCode": "NoError", "status": status},
        )
    now = now_iso()
    transaction_id = await start_transaction(cp, 1, timestamp=now)
    await stop_transaction(cp, transaction_id, 2000, timestamp=now)
    await start_transaction(cp, 2, timestamp=now)
    return cp


@pytest.fixture
async def fleet(
    tmp_path: Path,
    broker: Broker,  # noqa: F811
    wallbox_server: StartServer,  # noqa: F811
    zaptec_cloud: StartCloud,  # noqa: F811
    serial_line: tuple[str, str],  # noqa: F811
    acme_installed: Path,
    connect: Connect,  # noqa: F811
) -> AsyncIterator[Fleet]:
    go_e = GoESimulator("127.0.0.1", broker.port, [SimulatedGoE(GO_E_SERIAL)], interval=None)
    await go_e.start()
    keba = await wallbox_server("keba_p30")
    abb = SimulatorServer(
        SimulatedWallbox(PROFILES["abb_terra_ac"], scenario="fixed"),
        serial={"port": serial_line[0], "baudrate": 19200},
    )
    await abb.start()
    cloud = await zaptec_cloud()
    hub = configured_hub(tmp_path, "", _config(broker.port, keba.port, serial_line[1], cloud.url))
    # A wallbox announcing itself on the LAN.
    announced = await announce_keba(uuid.uuid4().hex[:8])
    cp = None
    try:
        await hub.start()
        for domain in DOMAINS:
            assert plugin_registry(hub).is_loaded(domain), f"{domain} did not set up"
        api = await api_of(hub)
        cp = await _ocpp_sessions(hub, connect)
        # Sessions open on every polled charger, so their session objects are checked too.
        go_e.charger.set_state("charging")
        await go_e.publish_all()
        keba.wallbox.set_state("charging")
        abb.wallbox.set_state("charging")
        for key in ("box", "rs485"):
            assert await _charger(hub, "modbus", key).refresh()
        await wait_until(lambda: _charger(hub, "mqtt", "garage").session, what="go-e session")
        await wait_until(lambda: _charger(hub, "zaptec", None).session, what="Zaptec session")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{api.url}/api/openapi.json") as resp:
                document = await resp.json()
            yield Fleet(api, http, document)
    finally:
        if cp is not None:
            await cp.close()
        await hub.stop()
        await announced.withdraw()
        await abb.stop()
        await go_e.stop()


def _charger(hub: Hub, domain: str, key: str | None) -> Any:
    devices = device_registry(hub).devices(kind=DeviceKind.STATION)
    devices = [d for d in devices if d.integration == domain]
    device = next(d for d in devices if key is None or (domain, key) in d.identifiers)
    return get_charger(hub, device.id)


async def test_every_integration_view_documents_its_answers(fleet: Fleet) -> None:
    views = [v for v in extensions(fleet.api.hub).views if v.domain in DOMAINS]
    assert {v.domain for v in views} == set(DOMAINS)
    missing: list[str] = []
    for view in views:
        missing.extend(_undocumented(fleet.document, view.method, view.path))
        operation = fleet.document["paths"].get(view.path, {}).get(view.method.lower())
        for response in _successes(operation).values() if operation else ():
            for entry in (response.get("content") or {}).values():
                Draft202012Validator.check_schema(entry["schema"])
    assert not missing, "\n".join(missing)


async def _discovered(fleet: Fleet) -> dict[str, Any]:
    """/api/modbus/discovered once the announced wallbox is in it (zeroconf takes a moment)."""
    api = fleet.api
    for _ in range(150):
        async with fleet.http.get(
            f"{api.url}/api/modbus/discovered", headers=api.headers("admin")
        ) as resp:
            body: dict[str, Any] = await resp.json()
        if any(entry["kind"] == "charger" for entry in body["discovered"]):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the announced wallbox was not discovered: {body}")


async def test_real_answers_of_integration_views_match_their_documentation(
    fleet: Fleet,
) -> None:
    api, document = fleet.api, fleet.document
    await _discovered(fleet)
    # (method, documented path, concrete URL, role, JSON body, the status expected)
    calls: list[tuple[str, str, str, str, Any, int]] = [
        (v.method, v.path, v.path, "admin", None, 200)
        for v in extensions(api.hub).views
        if v.domain in DOMAINS and "{" not in v.path
    ]
    calls += [
        ("GET", "/api/acme/wallboxes/{station}", "/api/acme/wallboxes/street", "viewer", None, 200),
        (
            "GET",
            "/api/acme/wallboxes/{station}",
            "/api/acme/wallboxes/nowhere",
            "viewer",
            None,
            404,
        ),
        (
            "GET",
            "/api/charge_success",
            "/api/charge_success?attempts=1&group=port",
            "viewer",
            None,
            200,
        ),
        (
            "GET",
            "/api/charge_success",
            "/api/charge_success?group=site&by=month",
            "viewer",
            None,
            200,
        ),
        ("GET", "/api/charge_success", "/api/charge_success?format=csv", "viewer", None, 200),
        ("GET", "/api/charge_success", "/api/charge_success?group=fleet", "viewer", None, 400),
        ("GET", "/api/charge_success", "/api/charge_success", None, None, 401),
        (
            "GET",
            "/api/ocpp/stations/{charge_point_id}",
            "/api/ocpp/stations/CP-A",
            "viewer",
            None,
            200,
        ),
        (
            "GET",
            "/api/ocpp/stations/{charge_point_id}",
            "/api/ocpp/stations/CP-NEVER-SEEN",
            "viewer",
            None,
            200,
        ),
        ("GET", "/api/modbus/discovered", "/api/modbus/discovered", "viewer", None, 403),
        ("POST", "/api/security_audit/run", "/api/security_audit/run", "admin", {}, 200),
        ("POST", "/api/security_audit/run", "/api/security_audit/run", "operator", {}, 403),
    ]
    problems: list[str] = []
    answers: dict[str, Any] = {}
    for method, path, url, role, body, expected in calls:
        operation = document["paths"].get(path, {}).get(method.lower())
        assert operation is not None, f"{method} {path} is not in the OpenAPI document"
        content_type, raw = await _checked_call(
            fleet.http, api, operation, (method, url, role, body), expected, problems
        )
        is_json = content_type == "application/json"
        answers[f"{method} {url} {role}"] = orjson.loads(raw) if is_json else raw.decode()
    assert not problems, "answers that do not match their documentation:\n" + "\n".join(problems)

    # The answers held what makes their optional parts appear: those were validated too.
    [go_e] = answers["GET /api/mqtt/chargers admin"]
    assert go_e["session"] is not None
    assert go_e["online"] is True
    assert answers["GET /api/mqtt/status admin"]["connected"] is True
    devices = {d["id"]: d for d in answers["GET /api/modbus/devices admin"]}
    assert all(d["session"] is not None for d in devices.values())
    assert devices["rs485"]["serial"]["baudrate"] == 19200
    assert devices["box"]["serial"] is None
    assert answers["GET /api/modbus/discovered admin"]["discovered"]
    [zaptec] = answers["GET /api/zaptec/chargers admin"]["chargers"]
    assert zaptec["session"] is not None
    assert zaptec["values"]
    audit = answers["POST /api/security_audit/run admin"]
    assert audit["findings"]
    assert audit["ran_at"] is not None
    station = answers["GET /api/ocpp/stations/CP-A viewer"]
    assert station["known"] is True
    assert station["version"] == "ocpp1.6"
    assert answers["GET /api/ocpp/stations/CP-NEVER-SEEN viewer"]["known"] is False
    outcomes = {
        (a["outcome"], a["end"] is None)
        for a in answers["GET /api/charge_success?attempts=1&group=port viewer"]["attempts"]
    }
    assert ("failed", False) in outcomes  # the Preparing that never became a session
    assert ("in_progress", True) in outcomes  # the session still charging
    csv = answers["GET /api/charge_success?format=csv viewer"]
    assert csv.startswith("group,id,name,")
    assert answers["GET /api/acme/wallboxes/street viewer"]["connectors"] == {"1": "Faulted"}
