"""Home Assistant's API as its users know it, against a real hub over HTTP and the WebSocket:
config, services, events, templates, the error log, the logbook from a real OCPP charger,
and the WebSocket's render_template, subscribe_trigger, current user and registries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.core import Event
from hub.registry import DeviceKind, device_registry, entity_registry
from hub.security import recent_audit
from hub.testing import Connect, RawChargePoint
from tests.hub.http.conftest import PING_HANDLER, STATION_A, Api, api_of, start_api
from tests.integrations.ocpp.conftest import (  # noqa: F401 - the fixture
    connect,
    start_transaction,
    stop_transaction,
    wait_state,
    ws_url,
)

SECRET = "s3cr3t-Value-4711"
EXTRA = STATION_A + PING_HANDLER


@dataclass
class Client:
    """The hub's URL, tokens and an HTTP client."""

    api: Api
    http: aiohttp.ClientSession
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    async def call(
        self, method: str, path: str, role: str | None = "viewer", **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {**self.api.headers(role), **kwargs.pop("headers", {})}
        async with self.http.request(
            method, self.api.url + path, headers=headers, **kwargs
        ) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def socket(self, role: str) -> Socket:
        ws = await self.http.ws_connect(f"{self.api.url}/api/websocket")
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": self.api.tokens[role]})
        assert (await ws.receive_json())["type"] == "auth_ok"
        self.sockets.append(ws)
        return Socket(ws)


class Socket:
    """A WebSocket API client that numbers its commands."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def send(self, command: str, **fields: Any) -> int:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "type": command, **fields})
        return self.next_id

    async def command(self, command: str, **fields: Any) -> dict[str, Any]:
        msg_id = await self.send(command, **fields)
        answer = await self.receive()
        assert answer["id"] == msg_id, answer
        assert answer["type"] == "result", answer
        return answer

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        found: dict[str, Any] = await self.ws.receive_json(timeout=timeout)
        return found

    async def nothing(self, wait: float = 0.2) -> None:
        try:
            msg = await self.ws.receive_json(timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {msg}")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    """A hub with HTTP, OCPP (CP-A, profile 0), an automation and a secrets.yaml."""
    (tmp_path / "secrets.yaml").write_text(f"mqtt_password: {SECRET}\n")
    hub = await start_api(tmp_path, extra=EXTRA)
    api = await api_of(hub)
    async with aiohttp.ClientSession() as http:
        found = Client(api, http)
        yield found
        for ws in found.sockets:
            await ws.close()
    await hub.stop()


# REST ------------------------------------------------------------------------------------


async def test_config_and_services_for_every_role_but_no_one_else(client: Client) -> None:
    status, config = await client.call("GET", "/api/config")
    assert status == 200
    assert config["location_name"] == "evhub"
    assert config["time_zone"] == "UTC"
    assert config["state"] == "RUNNING"
    assert config["unit_system"]["power"] == "W"
    assert config["unit_system"]["energy"] == "Wh"
    assert {"ocpp", "automations", "recorder", "uptime"} <= set(config["components"])
    text = str(config)
    assert str(client.api.hub.config_dir) not in text  # no paths
    assert SECRET not in text
    status, services = await client.call("GET", "/api/services")
    assert status == 200
    domains = {entry["domain"]: entry["services"] for entry in services}
    assert [entry["domain"] for entry in services] == sorted(domains)
    reset = domains["charger"]["reset"]
    assert reset["role"] == "operator"
    assert reset["fields"]["type"] == {
        "required": False,
        "default": "soft",
        "selector": {"select": {"options": ["soft", "hard"]}},
    }
    assert reset["fields"]["device_id"]["required"] is False
    limit = domains["charger"]["set_current_limit"]["fields"]["limit"]
    assert limit["required"] is True
    assert limit["selector"]["number"] == {"mode": "box", "min": 0, "max": 1000}
    assert domains["automation"]["reload"]["role"] == "admin"
    for path in ("/api/config", "/api/services"):
        assert (await client.call("GET", path, role=None))[0] == 401


async def test_an_operator_fires_an_event_of_their_own_audited_and_redacted(
    client: Client,
) -> None:
    hub = client.api.hub
    heard: list[Event] = []
    unsub = hub.bus.listen("site_maintenance", heard.append)
    try:
        body = {"bay": 3, "note": "cleaning", "password": "hunter22"}
        status, answer = await client.call(
            "POST", "/api/events/site_maintenance", "operator", json=body
        )
        assert status == 200, answer
        assert answer == {"message": "Event site_maintenance fired."}
        assert (await client.call("POST", "/api/events/site_maintenance", "viewer", json={}))[
            0
        ] == 403
        assert (await client.call("POST", "/api/events/site_maintenance", None, json={}))[0] == 401
    finally:
        unsub()
    assert len(heard) == 1
    assert heard[0].data == {"bay": 3, "note": "cleaning", "password": "**REDACTED**"}
    assert heard[0].context.user_id == client.api.user_ids["operator"]
    entry = next(e for e in recent_audit(hub, 50) if e["action"] == "fire_event")
    assert entry["username"] == "operator_user"
    assert entry["target"] == "event_type=site_maintenance"
    assert entry["result"] == "ok"


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("state_changed", 403),
        ("charger_event", 403),
        ("charger_session_record", 403),
        ("security_event", 403),
        ("audit_entry", 403),
        ("call_service", 403),
        ("hub_stop", 403),
        ("uptime_outage", 403),
        ("alert_raised", 403),
        ("automation_triggered", 403),
        ("ocpp_notify_event", 403),
        ("recorder_anything", 403),
        ("Bad-Type", 400),
        ("x" * 65, 400),
    ],
)
async def test_the_hubs_own_events_cannot_be_forged(
    client: Client, event_type: str, status: int
) -> None:
    hub = client.api.hub
    heard: list[Event] = []
    unsub = hub.bus.listen(event_type, heard.append)
    try:
        found, answer = await client.call(
            "POST", f"/api/events/{event_type}", "admin", json={"entity_id": "sensor.x"}
        )
    finally:
        unsub()
    assert found == status, answer
    assert set(answer) == {"error", "message"}
    # Nothing with the caller's data was fired (refusing is audited: audit_entry is the hub's).
    assert [e for e in heard if e.data.get("entity_id") == "sensor.x"] == []
    entry = next(e for e in recent_audit(hub, 50) if e["action"] == "fire_event")
    assert entry["result"].startswith("error: ")


async def test_event_data_must_be_a_small_json_object(client: Client) -> None:
    for data in (b"[1, 2]", b"{nope", b'"text"'):
        status, answer = await client.call(
            "POST",
            "/api/events/site_thing",
            "operator",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        assert status == 400, (data, answer)
        assert answer["error"] == "invalid_json"
    big = {"blob": "x" * 70_000}
    status, answer = await client.call("POST", "/api/events/site_thing", "operator", json=big)
    assert status == 413
    assert "at most" in answer["message"]


async def test_templates_render_for_admins_within_bounds(client: Client) -> None:
    hub = client.api.hub
    hub.states.set("sensor.bay_power", "7400", {"unit_of_measurement": "W"})
    template = (
        "{{ states('sensor.bay_power') | float / 1000 }} kW, "
        "{{ state_attr('sensor.bay_power', 'unit_of_measurement') }}, {{ who }}"
    )
    status, text = await client.call(
        "POST", "/api/template", "admin", json={"template": template, "variables": {"who": "ops"}}
    )
    assert (status, text) == (200, "7.4 kW, W, ops")
    for role in ("viewer", "operator"):
        assert (await client.call("POST", "/api/template", role, json={"template": "1"}))[0] == 403
    bad = {
        "{{ 1 + }}": "line 1",
        "{{ states('x') | no_such_filter }}": "no_such_filter",
        "{{ 'a' * 2000000 }}": "repetition",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}": (
            "loop iterations"
        ),
        "{{ ''.__class__.__mro__[1].__subclasses__() }}": "unsafe",
    }
    for source, reason in bad.items():
        status, answer = await client.call(
            "POST", "/api/template", "admin", json={"template": source}
        )
        assert status == 400, (source, answer)
        assert answer["error"] == "template_error"
        assert reason in answer["message"], (source, answer)
    # Work that no step budget counts (sorting big lists) stops at the time limit.
    slow = (
        "{% set x = range(100000) | map('string') | list %}"
        "{% for i in range(200) %}{{ x | sort | length }}{% endfor %}"
    )
    began = time.monotonic()
    status, answer = await client.call("POST", "/api/template", "admin", json={"template": slow})
    assert status == 400
    assert "took longer than 0.25 s" in answer["message"]
    assert time.monotonic() - began < 2.0
    for body in ({}, {"template": 5}, {"template": "x", "extra": 1}, {"template": "x" * 10_001}):
        status, answer = await client.call("POST", "/api/template", "admin", json=body)
        assert status == 400, body
        assert answer["error"] == "invalid"


async def test_the_error_log_is_for_admins_with_secrets_redacted(client: Client) -> None:
    noisy = logging.getLogger("hub.test_ha_api")
    noisy.info("an info line is not kept")
    noisy.warning("broker mqtt://evhub:%s@10.0.0.9 refused", SECRET)
    for _ in range(3):
        noisy.warning("the same warning again")
    try:
        raise ValueError(f"bad password {SECRET}")
    except ValueError:
        noisy.exception("a failure with a traceback")
    status, text = await client.call("GET", "/api/error_log", "admin")
    assert status == 200
    assert SECRET not in text
    assert "mqtt://evhub:**REDACTED**@10.0.0.9 refused" in text
    assert "an info line is not kept" not in text
    assert "(hub.test_ha_api) the same warning again (repeated 3 times)" in text
    assert "ValueError: bad password **REDACTED**" in text
    lines = [line for line in text.splitlines() if "(hub.test_ha_api)" in line]
    assert "a failure with a traceback" in lines[0]  # newest first
    status, records = await client.call("GET", "/api/error_log?format=json", "admin")
    assert status == 200
    mine = [r for r in records if r["logger"] == "hub.test_ha_api"]
    assert [r["level"] for r in mine] == ["ERROR", "WARNING", "WARNING"]
    assert mine[1]["count"] == 3
    assert "Traceback" in mine[0]["exception"]
    assert SECRET not in str(records)
    for role in ("viewer", "operator"):
        assert (await client.call("GET", "/api/error_log", role))[0] == 403
    assert (await client.call("GET", "/api/error_log?format=xml", "admin"))[0] == 400


# The logbook from a real charger ---------------------------------------------------------


async def _charge(cp: RawChargePoint) -> None:
    """Boot, plug in, charge 5 kWh, unplug, then fault."""
    answer = await cp.call(
        "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"}
    )
    assert answer["status"] == "Accepted"

    async def status(value: str, error: str = "NoError") -> None:
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": error, "status": value})

    now = datetime.now(UTC)
    await status("Available")
    await status("Preparing")
    transaction_id = await start_transaction(cp, timestamp=now.isoformat())
    await status("Charging")
    await stop_transaction(
        cp,
        transaction_id,
        5000,
        timestamp=(now + timedelta(seconds=1)).isoformat(),
        reason="EVDisconnected",
    )
    await status("Finishing")
    await status("Faulted", "GroundFailure")


def _status_entity(client: Client) -> str:
    hub = client.api.hub
    devices = device_registry(hub)
    port = next(d for d in devices.devices(kind=DeviceKind.CONNECTOR) if d.integration == "ocpp")
    return next(
        e.entity_id
        for e in entity_registry(hub).entities_for_device(port.id)
        if e.original_name == "status"
    )


async def test_the_logbook_tells_what_a_charger_and_an_automation_did(
    client: Client,
    connect: Connect,  # noqa: F811
) -> None:
    hub = client.api.hub
    before = datetime.now(UTC) - timedelta(seconds=5)
    cp = await connect(ws_url(hub, "CP-A"))
    await _charge(cp)
    status_entity = _status_entity(client)
    await wait_state(hub, status_entity, "Faulted")
    assert (await client.call("POST", "/api/events/site_ping", "operator", json={}))[0] == 200
    for _ in range(100):
        status, entries = await client.call("GET", "/api/logbook")
        assert status == 200
        if any(e["domain"] == "automation" for e in entries):
            break
        await asyncio.sleep(0.05)
    said = [(e["name"], e["message"]) for e in entries]
    assert ("Station A", "came online") in said
    assert ("Station A", "restarted") in said or any(
        n == "Station A" and m.startswith("restarted") for n, m in said
    )
    port_lines = [(n, m) for n, m in said if m.startswith("changed to")]
    assert [m for _n, m in port_lines] == [
        "changed to Available",
        "changed to Preparing",
        "changed to Charging",
        "changed to Finishing",
        "changed to Faulted (error GroundFailure)",
    ]
    assert ("Station A", "started charging on connector 1") in said
    assert any(
        n == "Station A" and m.startswith("finished charging on connector 1, 5.00 kWh")
        for n, m in said
    ), said
    assert ("Ping handler", "triggered") in said
    faulted = next(e for e in entries if e.get("state") == "Faulted")
    assert faulted["entity_id"] == status_entity
    assert faulted["domain"] == "charger"
    times = [datetime.fromisoformat(e["when"]) for e in entries]
    assert times == sorted(times)
    assert all(before <= t <= datetime.now(UTC) for t in times)

    # entity: that entity's state changes, and the charger events of its device.
    status, narrowed = await client.call("GET", f"/api/logbook?entity={status_entity}")
    assert status == 200
    changes = [e["message"] for e in narrowed if e.get("entity_id") == status_entity]
    assert changes == [
        "changed to Available",
        "changed to Preparing",
        "changed to Charging",
        "changed to Finishing",
        "changed to Faulted",
    ]
    assert all(e["domain"] != "automation" for e in narrowed)
    assert any(e["message"].startswith("started charging") for e in narrowed)
    # A start in the future finds nothing; end_time ends the window.
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await client.call("GET", f"/api/logbook/{later}") == (200, [])
    start = before.isoformat().replace("+00:00", "Z")
    status, answer = await client.call("GET", f"/api/logbook/{start}", params={"end_time": start})
    assert status == 400
    assert "after the start" in answer["message"]
    end = (before + timedelta(seconds=1)).isoformat()
    status, window = await client.call("GET", f"/api/logbook/{start}", params={"end_time": end})
    assert (status, window) == (200, [])
    status, limited = await client.call("GET", "/api/logbook?limit=2")
    assert status == 200
    assert limited == entries[:2]
    await cp.close()


@pytest.mark.parametrize(
    "query",
    [
        "/api/logbook/yesterday",
        "/api/logbook/2026-01-01T00:00:00Z?end_time=2026-03-01T00:00:00Z",
        "/api/logbook?end_time=soon",
        "/api/logbook?entity=not-an-entity",
        "/api/logbook?limit=0",
        "/api/logbook?entity=" + ",".join(f"sensor.s{n}" for n in range(101)),
    ],
)
async def test_bad_logbook_queries_get_a_reason(client: Client, query: str) -> None:
    status, answer = await client.call("GET", query)
    assert status == 400, answer
    assert answer["error"] == "invalid"
    assert answer["message"]


async def test_the_logbook_and_triggers_need_their_integrations(tmp_path: Path) -> None:
    hub = await start_api(tmp_path, extra="recorder: false\nautomations: false\n")
    try:
        api = await api_of(hub)
        async with aiohttp.ClientSession() as http:
            found = Client(api, http)
            status, answer = await found.call("GET", "/api/logbook")
            assert status == 503
            assert "recorder" in answer["message"]
            ws = await found.socket("admin")
            answer = await ws.command(
                "subscribe_trigger", trigger={"trigger": "state", "entity_id": "sensor.x"}
            )
            assert answer["success"] is False
            assert answer["error"]["code"] == "unavailable"
            await ws.ws.close()
    finally:
        await hub.stop()


# WebSocket -------------------------------------------------------------------------------


async def test_websocket_config_services_user_and_registries(
    client: Client,
    connect: Connect,  # noqa: F811
) -> None:
    hub = client.api.hub
    cp = await connect(ws_url(hub, "CP-A"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    ws = await client.socket("viewer")
    config = (await ws.command("get_config"))["result"]
    assert config == (await client.call("GET", "/api/config"))[1]
    services = (await ws.command("get_services"))["result"]
    assert services["charger"]["reset"]["fields"]["type"]["default"] == "soft"
    assert sorted(services) == [e["domain"] for e in (await client.call("GET", "/api/services"))[1]]
    me = (await ws.command("auth/current_user"))["result"]
    assert me["username"] == me["name"] == "viewer_user"
    assert me["id"] == client.api.user_ids["viewer"]
    assert me["role"] == "viewer"
    assert me["is_admin"] is False
    assert me["credential"] == "token"
    assert "password_hash" not in me
    devices = (await ws.command("config/device_registry/list"))["result"]
    station = next(d for d in devices if d["kind"] == "station")
    assert station["name"] == "Station A"
    assert ["ocpp", "CP-A"] in station["identifiers"]
    entities = (await ws.command("config/entity_registry/list"))["result"]
    assert any(e["device_id"] == station["id"] for e in entities)
    assert [e["entity_id"] for e in entities] == sorted(e["entity_id"] for e in entities)
    sites = (await ws.command("config/site_registry/list"))["result"]
    assert sites == [
        {
            "site_id": station["via_device_id"],
            "name": "Depot North",
            "integration": "ocpp",
            "station_ids": [station["id"]],
        }
    ]
    admin = await client.socket("admin")
    assert (await admin.command("auth/current_user"))["result"]["is_admin"] is True
    await cp.close()


async def test_render_template_re_renders_when_what_it_read_changes(client: Client) -> None:
    hub = client.api.hub
    hub.states.set("sensor.mode", "off")
    hub.states.set("sensor.power", "100")
    ws = await client.socket("admin")
    template = (
        "{% if is_state('sensor.mode', 'on') %}{{ states('sensor.power') }} W"
        "{% else %}idle{% endif %}"
    )
    answer = await ws.command("render_template", template=template)
    assert answer["success"] is True, answer
    sub = answer["id"]
    first = await ws.receive()
    assert first == {
        "id": sub,
        "type": "event",
        "event": {
            "result": "idle",
            "listeners": {"all": False, "domains": [], "entities": ["sensor.mode"], "time": False},
        },
    }
    hub.states.set("sensor.power", "200")  # not read while idle
    await ws.nothing()
    hub.states.set("sensor.mode", "on")
    event = (await ws.receive())["event"]
    assert event["result"] == "200 W"
    assert event["listeners"]["entities"] == ["sensor.mode", "sensor.power"]
    hub.states.set("sensor.power", "200", {"changed": "attributes only"})
    await ws.nothing()  # the same text is not sent again
    hub.states.set("sensor.power", "300")
    assert (await ws.receive())["event"]["result"] == "300 W"
    assert (await ws.command("unsubscribe_events", subscription=sub))["success"] is True
    hub.states.set("sensor.power", "400")
    await ws.nothing()
    # A template that cannot render is refused at once.
    answer = await ws.command("render_template", template="{{ states('sensor.x') | nope }}")
    assert answer["success"] is False
    assert answer["error"]["code"] == "template_error"
    # Templates are code: an admin's.
    viewer = await client.socket("viewer")
    answer = await viewer.command("render_template", template="{{ 1 }}")
    assert answer["error"]["code"] == "forbidden"


async def test_render_template_reports_errors_when_asked(client: Client) -> None:
    hub = client.api.hub
    hub.states.set("sensor.count", "3")
    ws = await client.socket("admin")
    answer = await ws.command(
        "render_template",
        template="{{ states('sensor.count') | int(default=none) + 1 }}",
        report_errors=True,
    )
    assert answer["success"] is True
    assert (await ws.receive())["event"]["result"] == "4"
    hub.states.set("sensor.count", "many")
    event = (await ws.receive())["event"]
    assert event["level"] == "ERROR"
    assert "template error" in event["error"]
    hub.states.set("sensor.count", "9")
    assert (await ws.receive())["event"]["result"] == "10"


async def test_subscribe_trigger_fires_and_unsubscribing_detaches(client: Client) -> None:
    hub = client.api.hub
    ws = await client.socket("viewer")
    answer = await ws.command(
        "subscribe_trigger",
        trigger={"trigger": "state", "entity_id": "sensor.bay_status", "to": "Faulted"},
    )
    assert answer["success"] is True, answer
    sub = answer["id"]
    hub.states.set("sensor.bay_status", "Charging")
    await ws.nothing()
    hub.states.set("sensor.bay_status", "Faulted")
    event = (await ws.receive())["event"]
    trigger = event["variables"]["trigger"]
    assert trigger["platform"] == "state"
    assert trigger["entity_id"] == "sensor.bay_status"
    assert trigger["to_state"]["state"] == "Faulted"
    assert trigger["from_state"]["state"] == "Charging"
    assert event["context"]["id"]
    assert (await ws.command("unsubscribe_events", subscription=sub))["success"] is True
    hub.states.set("sensor.bay_status", "Available")
    hub.states.set("sensor.bay_status", "Faulted")
    await ws.nothing()

    # An event trigger reaches what subscribe_events would: the role decides.
    answer = await ws.command(
        "subscribe_trigger", trigger={"trigger": "event", "event_type": "call_service"}
    )
    assert answer["error"]["code"] == "forbidden"
    answer = await ws.command(
        "subscribe_trigger", trigger={"trigger": "template", "value_template": "{{ true }}"}
    )
    assert answer["error"]["code"] == "forbidden"  # templates are code: an admin's
    admin = await client.socket("admin")
    listeners_before = hub.bus.listeners().get("site_ping", 0)
    answer = await admin.command(
        "subscribe_trigger",
        trigger=[
            {"trigger": "event", "event_type": "site_ping", "event_data": {"bay": 2}},
            {"trigger": "state", "entity_id": "sensor.other"},
        ],
    )
    assert answer["success"] is True, answer
    sub = answer["id"]
    assert hub.bus.listeners()["site_ping"] == listeners_before + 1
    status, _ = await client.call("POST", "/api/events/site_ping", "operator", json={"bay": 1})
    assert status == 200
    await admin.nothing()
    await client.call("POST", "/api/events/site_ping", "operator", json={"bay": 2})
    event = (await admin.receive())["event"]
    assert event["variables"]["trigger"]["platform"] == "event"
    assert event["variables"]["trigger"]["event"]["data"] == {"bay": 2}
    assert event["context"]["user_id"] == client.api.user_ids["operator"]
    assert (await admin.command("unsubscribe_events", subscription=sub))["success"] is True
    assert hub.bus.listeners().get("site_ping", 0) == listeners_before

    # A bad spec is refused with the automation integration's reason.
    for spec, reason in (
        ({"trigger": "nothing"}, "unknown trigger"),
        ({"trigger": "state"}, "entity_id"),
        ({"trigger": "time", "at": "25:00"}, "time of day"),
        ("state", "trigger"),
        ([], "1 to 20"),
    ):
        answer = await admin.command("subscribe_trigger", trigger=spec)
        assert answer["success"] is False, spec
        assert answer["error"]["code"] == "invalid_format"
        assert reason in answer["error"]["message"], (spec, answer)
