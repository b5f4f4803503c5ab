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
import os
import socket
import tty
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from jsonschema import Draft202012Validator

from hub.bootstrap import new_hub
from hub.charger import get_charger
from hub.core import Hub
from hub.http import DATA_HTTP
from hub.http.extensions import extensions
from hub.plugins import plugin_registry
from hub.registry import DeviceKind, device_registry
from hub.testing import Connect
from integrations.modbus.simulator import SimulatedWallbox, SimulatorServer
from integrations.mqtt.simulator import GoESimulator, SimulatedGoE
from tests.hub.http.conftest import Api, make_users, write_config
from tests.hub.http.test_openapi_responses import BODILESS, SUCCESS, _check
from tests.integrations.modbus.conftest import (  # noqa: F401 - the fixture
    PROFILES,
    StartServer,
    wallbox_server,
)
from tests.integrations.mqtt.conftest import Broker, broker, wait_until  # noqa: F401
from tests.integrations.ocpp.conftest import connect, ws_url  # noqa: F401
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
    return f"""\
ocpp:
  listeners:
    - port: 0
      host: 127.0.0.1
      security_profile: 0
  id_tags: [TAG-1]
  chargers:
    - id: CP-A
      name: Station A
      site: Depot North
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


@dataclass
class Fleet:
    """The running hub, its client and its OpenAPI document."""

    api: Api
    http: aiohttp.ClientSession
    document: dict[str, Any]


@pytest.fixture
async def serial_line() -> AsyncIterator[tuple[str, str]]:
    """Two pseudo-terminals joined back to back: (the simulator's end, the hub's end)."""
    loop = asyncio.get_running_loop()
    master_a, slave_a = os.openpty()
    master_b, slave_b = os.openpty()
    for fd in (slave_a, slave_b):
        tty.setraw(fd)

    def relay(source: int, target: int) -> Callable[[], None]:
        def move() -> None:
            try:
                os.write(target, os.read(source, 4096))
            except OSError:
                loop.remove_reader(source)

        return move

    loop.add_reader(master_a, relay(master_a, master_b))
    loop.add_reader(master_b, relay(master_b, master_a))
    yield os.ttyname(slave_a), os.ttyname(slave_b)
    for fd in (master_a, master_b):
        loop.remove_reader(fd)
    for fd in (master_a, master_b, slave_a, slave_b):
        os.close(fd)


async def _ocpp_sessions(hub: Hub, connect: Connect) -> Any:  # noqa: F811
    """A charger with a failed attempt, a finished session and one still charging."""
    cp = await connect(ws_url(hub, "CP-A"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    for connector, status in ((1, "Preparing"), (1, "Available"), (2, "Available")):
        await cp.call(
            "StatusNotification",
            {"connectorId": connector, "errorCode": "NoError", "status": status},
        )
    now = datetime.now(UTC).isoformat()
    started = await cp.call(
        "StartTransaction", {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": now}
    )
    await cp.call(
        "StopTransaction",
        {"transactionId": started["transactionId"], "meterStop": 2000, "timestamp": now},
    )
    await cp.call(
        "StartTransaction", {"connectorId": 2, "idTag": "TAG-1", "meterStart": 0, "timestamp": now}
    )
    return cp


@pytest.fixture
async def fleet(
    tmp_path: Path,
    broker: Broker,  # noqa: F811
    wallbox_server: StartServer,  # noqa: F811
    zaptec_cloud: StartCloud,  # noqa: F811
    serial_line: tuple[str, str],
    acme_installed: Path,
    connect: Connect,  # noqa: F811
) -> AsyncIterator[Fleet]:
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    go_e = GoESimulator("127.0.0.1", broker.port, [SimulatedGoE(GO_E_SERIAL)], interval=None)
    await go_e.start()
    keba = await wallbox_server("keba_p30")
    abb = SimulatorServer(
        SimulatedWallbox(PROFILES["abb_terra_ac"], scenario="fixed"),
        serial={"port": serial_line[0], "baudrate": 19200},
    )
    await abb.start()
    cloud = await zaptec_cloud()
    write_config(tmp_path, "", _config(broker.port, keba.port, serial_line[1], cloud.url))
    hub = new_hub(tmp_path)
    # A wallbox announcing itself on the LAN, by a name of its own (others may announce).
    announcer = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    announced = AsyncServiceInfo(
        "_http._tcp.local.",
        f"KEBA KeContact P30 {uuid.uuid4().hex[:8]}._http._tcp.local.",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=80,
        properties={"path": "/"},
        server=f"keba-{uuid.uuid4().hex[:8]}.local.",
    )
    await (await announcer.async_register_service(announced))
    cp = None
    try:
        await hub.start()
        for domain in DOMAINS:
            assert plugin_registry(hub).is_loaded(domain), f"{domain} did not set up"
        tokens, ids = await make_users(hub)
        api = Api(hub, hub.data[DATA_HTTP].url, tokens, ids)
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
        await (await announcer.async_unregister_service(announced))
        await announcer.async_close()
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
        where = f"{view.method} {view.path}"
        operation = fleet.document["paths"].get(view.path, {}).get(view.method.lower())
        if operation is None:
            missing.append(f"{where}: not in the OpenAPI document")
            continue
        successes = {k: v for k, v in operation["responses"].items() if SUCCESS.fullmatch(k)}
        if not successes:
            missing.append(f"{where}: no success response documented")
        for status, response in successes.items():
            content = response.get("content") or {}
            if not content and status not in BODILESS:
                missing.append(f"{where}: {status} has no content schema")
            for entry in content.values():
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
        kwargs = {} if body is None else {"json": body}
        async with fleet.http.request(
            method, api.url + url, headers=api.headers(role), **kwargs
        ) as resp:
            raw = await resp.read()
            where = f"{method} {url} as {role}"
            assert resp.status == expected, f"{where}: {resp.status} {raw[:200]!r}"
            problems.extend(_check(operation, where, resp.status, resp.content_type, raw))
            if resp.content_type == "application/json":
                answers[f"{method} {url} {role}"] = orjson.loads(raw)
            else:
                answers[f"{method} {url} {role}"] = raw.decode()
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
