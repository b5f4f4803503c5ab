"""The MQTT integration against a real mosquitto on a loopback port.

A simulated go-eCharger publishes as go-e's API v2 says; the hub's entities follow, its
commands reach the charger's /set topics, the broker restarting is survived, a silent
charger is offline in uptime, garbage is counted and logged, and the export and Home
Assistant discovery topics carry what the documented layout says.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from hub.charger import EVENT_CHARGER, get_charger
from hub.core import Event, Hub, State
from hub.registry import device_registry
from hub.testing import HubFactory, manual_clock_of
from integrations.mqtt import DATA_MQTT
from integrations.mqtt.charger import MqttCharger
from integrations.mqtt.simulator import GoESimulator, SimulatedGoE
from tests.integrations.mqtt.conftest import Broker, wait_until

SERIAL = "012345"


def _config(port: int, extra: str = "", chargers: str | None = None) -> str:
    if chargers is None:
        chargers = (
            f"    - id: garage\n      name: Garage\n      profile: go_e\n      serial: '{SERIAL}'\n"
        )
    return f"mqtt:\n  port: {port}\n  chargers:\n{chargers}{extra}"


def _charger(hub: Hub, key: str = "garage") -> MqttCharger:
    device = device_registry(hub).get_by_identifier(("mqtt", key))
    assert device is not None
    charger = get_charger(hub, device.id)
    assert isinstance(charger, MqttCharger)
    return charger


def _state(hub: Hub, entity: str, key: str = "garage") -> str | None:
    charger = _charger(hub, key)
    group = charger.station_entities if entity in ("connectivity", "last_error") else None
    group = group or charger.port_entities
    state = hub.states.get(group.entity_id(hub, entity))
    return None if state is None else state.state


def _events(hub: Hub) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def listener(event: Event) -> None:
        seen.append(dict(event.data))

    hub.bus.listen(EVENT_CHARGER, listener)
    return seen


async def _simulator(broker: Broker, serial: str = SERIAL) -> GoESimulator:
    simulator = GoESimulator("127.0.0.1", broker.port, [SimulatedGoE(serial)], interval=None)
    await simulator.start()
    return simulator


async def test_go_e_entities_follow_the_simulated_charger(
    broker: Broker, hub_factory: HubFactory
) -> None:
    simulator = await _simulator(broker)
    try:
        hub = await hub_factory(_config(broker.port))
        events = _events(hub)
        await wait_until(lambda: _state(hub, "connectivity") == "online", what="online")
        await wait_until(lambda: _state(hub, "status") == "Available", what="Available")
        assert _state(hub, "current_limit") == "16"
        assert _state(hub, "energy") == "1234000"
        go_e = simulator.charger
        go_e.set_state("charging")
        await simulator.publish_all()
        await wait_until(lambda: _state(hub, "status") == "Charging", what="Charging")
        await wait_until(lambda: _state(hub, "power") == "11040.0", what="power")
        assert _state(hub, "current_l2") == "16.0"
        assert _state(hub, "voltage_l3") == "230.0"
        kinds = [event["kind"] for event in events]
        assert "session_started" in kinds
        go_e.advance(600)
        await simulator.publish(go_e, ["nrg", "eto", "wh"])
        await wait_until(lambda: _state(hub, "session_energy") == "1840.0", what="session energy")
        go_e.set_state("idle")
        await simulator.publish_all()
        await wait_until(lambda: _state(hub, "status") == "Available", what="Available again")
        ended = [event for event in events if event["kind"] == "session_ended"]
        assert len(ended) == 1
        assert ended[0]["stop_reason"] == "EVDisconnected"
        assert ended[0]["energy_wh"] == pytest.approx(11040 * 600 / 3600, rel=0.01)
    finally:
        await simulator.stop()


async def test_set_current_limit_reaches_the_set_topic(
    broker: Broker, hub_factory: HubFactory, watch: Any
) -> None:
    from hub.exceptions import ServiceValidationError

    simulator = await _simulator(broker)
    try:
        watcher = await watch(broker.port, [f"go-eCharger/{SERIAL}/+/set"])
        hub = await hub_factory(_config(broker.port))
        await wait_until(lambda: _state(hub, "connectivity") == "online", what="online")
        target = {"device_id": _charger(hub).device_id}
        answer = await hub.services.call("charger", "set_current_limit", {"limit": 10}, target)
        assert answer[target["device_id"]]["result"] == "Accepted"
        assert answer[target["device_id"]]["confirmed"] is True
        assert watcher.on(f"go-eCharger/{SERIAL}/amp/set") == [b"10"]
        assert simulator.charger.amp == 10
        assert _state(hub, "current_limit") == "10"
        with pytest.raises(ServiceValidationError, match="at most 32"):
            await hub.services.call("charger", "set_current_limit", {"limit": 40}, target)
        with pytest.raises(ServiceValidationError, match="whole amperes"):
            await hub.services.call("charger", "set_current_limit", {"limit": 10.5}, target)
        # Lock and unlock: frc Off, then Neutral; the status follows the readback.
        await hub.services.call("charger", "set_availability", {"available": False}, target)
        assert watcher.on(f"go-eCharger/{SERIAL}/frc/set") == [b"1"]
        await wait_until(lambda: _state(hub, "status") == "Unavailable", what="locked")
        await hub.services.call("charger", "set_availability", {"available": True}, target)
        await wait_until(lambda: _state(hub, "status") == "Available", what="unlocked")
        await hub.services.call("charger", "set_phases", {"phases": 1}, target)
        assert simulator.charger.psm == 1
        assert [key for key, _ in simulator.charger.commands] == ["amp", "frc", "frc", "psm"]
    finally:
        await simulator.stop()


async def test_the_broker_restarting_is_survived(
    broker: Broker, hub_factory: HubFactory, watch: Any
) -> None:
    simulator = await _simulator(broker)
    try:
        hub = await hub_factory(_config(broker.port))
        mqtt = hub.data[DATA_MQTT]
        await wait_until(lambda: _state(hub, "status") == "Available", what="Available")
        events = _events(hub)
        await broker.stop()
        await wait_until(lambda: not mqtt.connection.connected.is_set(), what="connection lost")
        # While the hub's own connection is down nothing is judged: no silence outage.
        online = _charger(hub).online
        await manual_clock_of(hub).advance(600)
        assert _charger(hub).online == online
        await broker.start()  # the same port, nothing retained
        await wait_until(mqtt.connection.connected.is_set, 15, "reconnected")
        await wait_until(simulator.connected.is_set, 15, "simulator reconnected")
        simulator.charger.set_state("charging")
        await simulator.publish_all()
        await wait_until(lambda: _state(hub, "status") == "Charging", what="Charging")
        assert _charger(hub).online
        # No silence outage; only what the charger's last will said (mosquitto sends the
        # wills of its clients as it shuts down), and it is back online.
        assert [e.get("reason") for e in events if e["kind"] == "offline"] in (
            [],
            ["its last will says offline"],
        )
        # The hub's availability and its export are published again on the new broker.
        watcher = await watch(broker.port, ["evhub/#"])
        await wait_until(lambda: watcher.on("evhub/status") == [b"online"], what="status")
        status_id = _charger(hub).port_entities.entity_id(hub, "status")
        await wait_until(lambda: watcher.on(f"evhub/v1/hub/state/{status_id}"), what="export")
        assert mqtt.connection.connections == 2
    finally:
        await simulator.stop()


async def test_export_and_discovery_topics_carry_the_documented_payloads(
    broker: Broker, hub_factory: HubFactory, watch: Any
) -> None:
    simulator = await _simulator(broker)
    try:
        hub = await hub_factory(
            _config(broker.port, "  node: site-a\n  discovery: true\n  export:\n    interval: 1\n")
        )
        await wait_until(lambda: _state(hub, "status") == "Available", what="Available")
        charger = _charger(hub)
        await manual_clock_of(hub).advance(1)  # the export's coalescing interval
        power_id = charger.port_entities.entity_id(hub, "power")
        status_id = charger.port_entities.entity_id(hub, "status")
        connectivity_id = charger.station_entities.entity_id(hub, "connectivity")
        watcher = await watch(broker.port, ["evhub/#", "homeassistant/#"])
        root = "evhub/v1/site-a"
        await wait_until(
            lambda: all(
                watcher.on(f"{root}/state/{entity_id}")
                for entity_id in (status_id, power_id, connectivity_id)
            ),
            what="retained states",
        )
        await asyncio.sleep(0.1)
        # Rebuild every state of the charger from the retained topics alone.
        rebuilt = {
            topic.rsplit("/", 1)[1]: State.from_dict(orjson.loads(payload))
            for topic, payload, retained in watcher.messages
            if topic.startswith(f"{root}/state/") and payload
        }
        assert rebuilt[status_id].state == "Available"
        assert rebuilt[power_id].attributes["unit_of_measurement"] == "W"
        assert rebuilt[status_id].last_changed_ts == hub.states.get(status_id).last_changed_ts  # type: ignore[union-attr]
        info = orjson.loads(watcher.on(f"{root}/info")[-1])
        assert info["v"] == 1
        assert info["node"] == "site-a"
        port_payload = orjson.loads(watcher.on(f"{root}/state/{status_id}")[-1])
        device = orjson.loads(watcher.on(f"{root}/device/{port_payload['device_id']}")[-1])
        assert device["kind"] == "connector"
        station = orjson.loads(watcher.on(f"{root}/device/{device['via_device_id']}")[-1])
        assert station["kind"] == "station"
        assert station["manufacturer"] == "go-e"
        # Home Assistant discovery: a sensor per entity on the charger's device.
        object_id = power_id.replace(".", "_")
        config = orjson.loads(
            watcher.on(f"homeassistant/sensor/evhub_site-a/{object_id}/config")[-1]
        )
        assert config["state_topic"] == f"{root}/state/{power_id}"
        assert config["value_template"] == "{{ value_json.state }}"
        assert config["device_class"] == "power"
        assert config["unit_of_measurement"] == "W"
        assert config["state_class"] == "measurement"
        assert config["availability_topic"] == "evhub/status"
        assert config["device"]["identifiers"] == [f"evhub_site-a_{station['id']}"]
        assert config["device"]["name"] == "Garage"
        binary = connectivity_id.replace(".", "_")
        online = orjson.loads(
            watcher.on(f"homeassistant/binary_sensor/evhub_site-a/{binary}/config")[-1]
        )
        assert online["payload_on"] == "online"
        # A burst of changes is coalesced: one message per entity per interval.
        before = len(watcher.on(f"{root}/state/{power_id}"))
        for watts in range(1, 51):
            hub.states.set(power_id, str(watts), hub.states.get(power_id).attributes)  # type: ignore[union-attr]
        await manual_clock_of(hub).advance(1)
        await wait_until(
            lambda: len(watcher.on(f"{root}/state/{power_id}")) > before, what="coalesced"
        )
        await asyncio.sleep(0.2)
        published = watcher.on(f"{root}/state/{power_id}")[before:]
        assert [orjson.loads(p)["state"] for p in published] == ["50"]
    finally:
        await simulator.stop()


async def test_alerts_and_security_events_are_json_messages(
    broker: Broker, hub_factory: HubFactory, watch: Any
) -> None:
    from hub.security import security_log

    hub = await hub_factory(
        _config(broker.port, chargers="    []\n").replace("chargers:\n    []", "chargers: []")
    )
    mqtt = hub.data[DATA_MQTT]
    await wait_until(mqtt.connection.connected.is_set, what="connected")
    watcher = await watch(broker.port, ["evhub/v1/hub/alert", "evhub/v1/hub/security"])
    await hub.services.call(
        "alert", "raise", {"key": "k1", "title": "Door open", "severity": "critical"}
    )
    security_log(hub).record(
        "login_failed", "a failed login", data={"username": "typed-a-password-here"}
    )
    await wait_until(lambda: watcher.on("evhub/v1/hub/alert"), what="alert")
    await wait_until(lambda: watcher.on("evhub/v1/hub/security"), what="security event")
    alert = orjson.loads(watcher.on("evhub/v1/hub/alert")[0])
    assert alert["event"] == "alert_raised"
    assert alert["alert"]["title"] == "Door open"
    assert alert["alert"]["severity"] == "critical"
    event = orjson.loads(watcher.on("evhub/v1/hub/security")[0])["event"]
    assert event["kind"] == "login_failed"
    # Admin-only data (what someone typed at a failed login) never leaves the hub.
    assert "typed-a-password-here" not in watcher.on("evhub/v1/hub/security")[0].decode()


async def test_a_silent_charger_goes_offline_in_uptime(
    broker: Broker, hub_factory: HubFactory
) -> None:
    from integrations.uptime import engine_of

    simulator = await _simulator(broker)
    try:
        hub = await hub_factory(_config(broker.port))
        await wait_until(lambda: _state(hub, "connectivity") == "online", what="online")
        events = _events(hub)
        clock = manual_clock_of(hub)
        simulator.paused = True  # the socket stays open; nothing is published
        await clock.advance(30)
        assert _charger(hub).online
        await clock.advance(40)  # past silent_after (60 s) and the next check
        assert _state(hub, "connectivity") == "offline"
        assert events[-1]["kind"] == "offline"
        assert "silent for" in events[-1]["reason"]
        [outage] = engine_of(hub).open_outages()
        assert outage.cause == "offline"
        simulator.paused = False
        await simulator.publish(simulator.charger, ["rbt"])
        await wait_until(lambda: _charger(hub).online, what="back online")
        assert engine_of(hub).open_outages() == []
        # The charger's last will (mcc false): offline at once.
        await simulator.stop()
        await wait_until(lambda: _state(hub, "connectivity") == "offline", what="last will")
        assert events[-1]["reason"] == "its last will says offline"
    finally:
        await simulator.stop()


async def test_malformed_payloads_are_counted_and_logged_never_a_crash(
    broker: Broker, hub_factory: HubFactory, caplog: pytest.LogCaptureFixture
) -> None:
    simulator = await _simulator(broker)
    try:
        hub = await hub_factory(_config(broker.port, "  max_payload: 4096\n"))
        await wait_until(lambda: _state(hub, "status") == "Available", what="Available")
        charger = _charger(hub)
        base = f"go-eCharger/{SERIAL}"
        for topic, payload in (
            (f"{base}/car", b"{{{ not json"),
            (f"{base}/car", b"99"),  # no such carState
            (f"{base}/nrg", b'"a string"'),
            (f"{base}/nrg", b"[1, 2]"),  # too short for the power at [11]
            (f"{base}/amp", b"1e999"),
            (f"{base}/eto", b"\xff\xfe\x00"),
            (f"{base}/wh", b"[" * 100_000),
            (f"{base}/mcc", b'"maybe"'),
        ):
            await simulator.publish_raw(topic, payload)
        await wait_until(lambda: charger.malformed >= 8, what="malformed counted")
        assert charger.online
        assert _state(hub, "status") == "Available"  # the last good status stands
        assert _state(hub, "current_limit") == "16"
        logged = caplog.text
        assert f"malformed payload on {base}/car" in logged
        assert f"malformed payload on {base}/wh: payload of 100000 bytes" in logged
        assert "car = 99 is not a known status code" in logged
        assert _state(hub, "last_error", "garage") is not None
        # Still working: a good message after the garbage is taken.
        simulator.charger.set_state("charging")
        await simulator.publish_all()
        await wait_until(lambda: _state(hub, "status") == "Charging", what="Charging")
    finally:
        await simulator.stop()


GENERIC = """\
  profiles:
    shed_box:
      name: Shed box
      base: shed/box
      silent_after: 30
      values:
        state: {topic: telemetry, path: "$.evse.state"}
        watts: {topic: telemetry, path: "$.meter.power", entity: power, min: 0, max: 50000}
        amps:
          {topic: limit, json: false, template: "{{ value | float / 10 }}", entity: current_limit}
      status:
        value: state
        map: {A: Available, B: SuspendedEV, C: Charging, F: Faulted}
      commands:
        current_limit: {topic: limit/set, min: 6, max: 16, readback: amps}
"""


async def test_generic_and_openwb_profiles(
    broker: Broker, hub_factory: HubFactory, watch: Any
) -> None:
    chargers = (
        "    - {id: shed, profile: shed_box}\n    - {id: cp3, profile: openwb, serial: '3'}\n"
    )
    watcher = await watch(broker.port, ["shed/box/limit/set", "openWB/mqtt/chargepoint/3/set/#"])
    hub = await hub_factory(_config(broker.port, GENERIC, chargers))
    mqtt = hub.data[DATA_MQTT]
    await wait_until(mqtt.connection.connected.is_set, what="connected")
    client = watcher.client
    await client.publish(
        "shed/box/telemetry", b'{"evse": {"state": "C"}, "meter": {"power": 3500}}'
    )
    await client.publish("shed/box/limit", b"160")
    await wait_until(lambda: _state(hub, "status", "shed") == "Charging", what="generic status")
    assert _state(hub, "power", "shed") == "3500"
    await wait_until(lambda: _state(hub, "current_limit", "shed") == "16.0", what="template")

    async def echo() -> None:
        # The shed box takes the command and reports its new limit (tenths of amperes).
        await wait_until(lambda: watcher.on("shed/box/limit/set"), what="command")
        value = float(watcher.on("shed/box/limit/set")[-1])
        await client.publish("shed/box/limit", str(int(value * 10)).encode())

    echoing = asyncio.ensure_future(echo())
    target = {"device_id": _charger(hub, "shed").device_id}
    await hub.services.call("charger", "set_current_limit", {"limit": 8}, target)
    await echoing
    assert _state(hub, "current_limit", "shed") == "8.0"

    cp = "openWB/mqtt/chargepoint/3/get"
    for key, value in (("plug_state", b"true"), ("charge_state", b"false"), ("power", b"0")):
        await client.publish(f"{cp}/{key}", value)
    await wait_until(lambda: _state(hub, "status", "cp3") == "SuspendedEV", what="plugged")
    await client.publish(f"{cp}/currents", b"[16.0, 16.0, 15.9]")
    await client.publish(f"{cp}/charge_state", b"true")
    await wait_until(lambda: _state(hub, "status", "cp3") == "Charging", what="openWB charging")
    await wait_until(lambda: _state(hub, "current_l3", "cp3") == "15.9", what="currents")
    target = {"device_id": _charger(hub, "cp3").device_id}
    answer = await hub.services.call("charger", "set_current_limit", {"limit": 12}, target)
    assert answer[target["device_id"]]["confirmed"] is False  # openWB reads nothing back
    await wait_until(
        lambda: watcher.on("openWB/mqtt/chargepoint/3/set/current") == [b"12.0"], what="set"
    )
    await hub.services.call("charger", "set_phases", {"phases": 1}, target)
    await wait_until(
        lambda: watcher.on("openWB/mqtt/chargepoint/3/set/phases_to_use") == [b"1"], what="phases"
    )


# The hub's availability, the command line, hostile configuration ------------------------


async def test_the_hubs_availability_is_a_retained_last_will(
    broker: Broker, hub_factory: HubFactory, watch: Any
) -> None:
    hub = await hub_factory(_config(broker.port, chargers="    []\n"))
    mqtt = hub.data[DATA_MQTT]
    await wait_until(mqtt.connection.connected.is_set, what="connected")
    watcher = await watch(broker.port, ["evhub/status"])
    await wait_until(lambda: watcher.on("evhub/status") == [b"online"], what="online")
    assert watcher.messages[0][2] is True  # retained
    await hub.stop()
    await wait_until(lambda: watcher.on("evhub/status")[-1:] == [b"offline"], what="offline")


async def test_evhub_simulate_mqtt_publishes_a_go_e(broker: Broker, watch: Any) -> None:
    import sys
    from pathlib import Path

    watcher = await watch(broker.port, ["go-eCharger/777/#"])
    evhub = Path(sys.executable).with_name("evhub")
    process = await asyncio.create_subprocess_exec(
        str(evhub),
        "simulate",
        "mqtt",
        "--port",
        str(broker.port),
        "--serial",
        "777",
        "--interval",
        "0.2",
        "--duration",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()
    assert orjson.loads(watcher.on("go-eCharger/777/car")[0]) == 1
    assert len(watcher.on("go-eCharger/777/rbt")) >= 3  # every interval
    assert watcher.on("go-eCharger/777/mcc")[-1] == b"false"  # a clean stop says so


def test_profiles_and_topics_from_configuration_are_checked(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import main

    (tmp_path / "configuration.yaml").write_text(
        "http:\n  server_port: 0\n"
        "mqtt:\n"
        "  prefix: 'evhub/#'\n"
        "  chargers:\n"
        "    - id: a\n"
        "      profile: go_e\n"
        "      serial: 'x/y'\n"
        "    - id: b\n"
        "      profile: go_e\n"
        '      base: "bad\\u0007topic"\n'
        "  profiles:\n"
        "    my_box:\n"
        "      name: Mine\n"
        "      base: mine/+\n"
        "      values:\n"
        "        s: {topic: state, template: '{{ value | float '}\n"
        "        p: {topic: power, path: '$.a..b'}\n"
        "      status: {value: s, map: {1: Charging, 2: Z}}\n"
    )
    assert main(["check-config", "--config", str(tmp_path)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "configuration.yaml, line 4: mqtt → prefix" in text
    assert "wildcard" in text
    assert "configuration.yaml, line 8: mqtt → chargers[0] → serial: 'x/y'" in text
    assert "configuration.yaml, line 15: mqtt → profiles → my_box → base" in text
    assert (
        "configuration.yaml, line 17: mqtt → profiles → my_box → values → s → template:"
        " template syntax" in text
    )
    assert "configuration.yaml, line 18: mqtt → profiles → my_box → values → p → path" in text
    assert (
        "configuration.yaml, line 19: mqtt → profiles → my_box → status → map[2]: 'Z' is neither"
        in text
    )
    assert main(["mqtt", "profiles"]) == 0
    assert "go_e\tgo-eCharger (API v2)\tgo-eCharger/{serial}" in capsys.readouterr().out


def test_json_paths_and_values() -> None:
    import voluptuous as vol

    from integrations.mqtt.profile import build_profile, check_topic, parse_path, validate_profile

    for topic, reason in (
        ("a/+/b", "wildcard"),
        ("a/#", "wildcard"),
        ("a\x07b", "control character"),
        ("a\x00b", "control character"),
        ("$SYS/x", "starts with \\$"),
        ("x" * 2000, "longer than 1024"),
        ("", "empty"),
    ):
        with pytest.raises(vol.Invalid, match=reason):
            check_topic(topic)

    assert parse_path("$.a.b[0]") == ("a", "b", 0)
    assert parse_path('nrg[11]["odd key"]') == ("nrg", 11, "odd key")
    with pytest.raises(vol.Invalid):
        parse_path("$..a")
    profile = build_profile(
        "t",
        validate_profile(
            {
                "name": "t",
                "base": "t",
                "values": {"v": {"topic": "x", "path": "$.a[1]", "scale": 0.1, "max": 10}},
                "status": {"template": "A"},
            }
        ),
    )
    value = profile.values["v"]
    assert value.extract({"a": [0, 55]}) == 5.5
    for bad in ({"a": "xy"}, {"a": [0]}, [1, 2], {"a": [0, 101]}, {"a": [0, True]}):
        with pytest.raises(ValueError):  # noqa: PT011 (the messages differ)
            value.extract(bad)


def test_the_readme_examples_are_valid_configuration() -> None:
    import re
    from pathlib import Path

    import yaml

    from integrations.mqtt import CONFIG_SCHEMA
    from integrations.mqtt.profile import build_profile

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("\n## MQTT\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    for block in blocks:
        text = re.sub(r"!secret (\w+)", r"'\1'", block)
        config = CONFIG_SCHEMA(yaml.safe_load(text)["mqtt"])
        assert config["chargers"]
    custom = CONFIG_SCHEMA(yaml.safe_load(blocks[1])["mqtt"])["profiles"]["shed_box"]
    profile = build_profile("shed_box", custom)
    assert sorted(profile.commands) == ["current_limit"]
    assert profile.values["watts"].extract({"meter": {"power": 7400}}) == 7400


def _pki(directory: Any) -> dict[str, Any]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.UTC)

    def issue(key: Any, subject: str, signer: Any, issuer: str, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if subject == "127.0.0.1":
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    files: dict[str, Any] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue(ca_key, "evhub test CA", ca_key, "evhub test CA", True)
    files["ca"] = directory / "ca.pem"
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, cn in (("server", "127.0.0.1"), ("client", "evhub")):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(key, cn, ca_key, "evhub test CA", False)
        files[role] = directory / f"{role}.pem"
        files[role].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{role}_key"] = directory / f"{role}.key"
        files[f"{role}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files


async def test_tls_with_a_client_certificate_and_a_password_from_secrets(tmp_path: Any) -> None:
    import os
    import shutil

    from hub.bootstrap import new_hub
    from hub.clock import use_manual_clock
    from tests.integrations.mqtt.conftest import mosquitto_binary, no_broker

    binary = mosquitto_binary()
    passwd = shutil.which("mosquitto_passwd")
    if binary is None or passwd is None:
        no_broker("mosquitto (with mosquitto_passwd) is not installed")
    files = _pki(tmp_path)
    password_file = tmp_path / "passwords"
    tool = await asyncio.create_subprocess_exec(
        passwd, "-b", "-c", str(password_file), "evhub", "s3cret-broker-pass"
    )
    assert await tool.wait() == 0
    root = "user root\n" if os.geteuid() == 0 else ""
    broker = Broker(
        binary,
        tmp_path,
        listener=(
            f"cafile {files['ca']}\ncertfile {files['server']}\nkeyfile {files['server_key']}\n"
            f"require_certificate true\npassword_file {password_file}\n"
            f"allow_anonymous false\n{root}"
        ),
    )
    await broker.start()
    config_dir = tmp_path / "hub"
    config_dir.mkdir()
    (config_dir / "secrets.yaml").write_text("mqtt_password: s3cret-broker-pass\n")
    (config_dir / "configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        f"mqtt:\n  port: {broker.port}\n  client_id: evhub-tls-test\n"
        "  username: evhub\n  password: !secret mqtt_password\n"
        f"  tls:\n    ca_certs: {files['ca']}\n    certfile: {files['client']}\n"
        f"    keyfile: {files['client_key']}\n"
    )
    hub = new_hub(config_dir)
    use_manual_clock(hub, 1_800_000_000.0)
    await hub.start()
    try:
        mqtt = hub.data[DATA_MQTT]
        await wait_until(mqtt.connection.connected.is_set, 15, "connected over TLS")
        assert mqtt.status()["connected"] is True
    finally:
        await hub.stop()
        await broker.stop()


async def test_a_simulated_go_e_inside_the_hub(broker: Broker, hub_factory: HubFactory) -> None:
    chargers = "    - {id: sim, profile: go_e, serial: '000042', simulate: true}\n"
    hub = await hub_factory(_config(broker.port, chargers=chargers))
    await wait_until(lambda: _state(hub, "status", "sim") == "Available", what="simulated go-e")
    target = {"device_id": _charger(hub, "sim").device_id}
    answer = await hub.services.call("charger", "set_current_limit", {"limit": 20}, target)
    assert answer[target["device_id"]]["confirmed"] is True
    assert _state(hub, "current_limit", "sim") == "20"


async def test_an_open_session_survives_a_restart(broker: Broker, tmp_path: Any) -> None:
    from hub.bootstrap import new_hub
    from hub.clock import use_manual_clock

    simulator = await _simulator(broker)
    simulator.charger.set_state("charging")
    await simulator.publish_all()
    (tmp_path / "configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        + _config(broker.port)
    )
    transaction = None
    try:
        for round_ in range(2):
            hub = new_hub(tmp_path)
            use_manual_clock(hub, 1_800_000_000.0 + round_ * 100)
            events = _events(hub)
            await hub.start()
            try:
                await wait_until(
                    lambda hub=hub: _state(hub, "status") == "Charging", what="Charging"
                )
                charger = _charger(hub)
                assert charger.session is not None
                if transaction is None:
                    transaction = charger.session["transaction_id"]
                    assert [e["kind"] for e in events].count("session_started") == 1
                else:
                    # The same session goes on: no second start.
                    assert charger.session["transaction_id"] == transaction
                    assert "session_started" not in [e["kind"] for e in events]
                    simulator.charger.set_state("idle")
                    await simulator.publish_all()
                    await wait_until(
                        lambda events=events: [e for e in events if e["kind"] == "session_ended"],
                        what="end",
                    )
                    [ended] = [e for e in events if e["kind"] == "session_ended"]
                    assert ended["transaction_id"] == transaction
            finally:
                await hub.stop()
    finally:
        await simulator.stop()


async def test_a_plugin_adds_a_profile_through_the_hook(
    broker: Broker, tmp_path: Any, watch: Any
) -> None:
    from pathlib import Path

    from hub.bootstrap import new_hub
    from hub.hookspecs import hookimpl
    from hub.plugins import Integration, SetupContext, plugin_registry

    profile_file = tmp_path / "acme_mqtt.yaml"
    profile_file.write_text(
        "name: ACME MQTT box\nmanufacturer: ACME\nbase: acme/{serial}\n"
        "values:\n  state: {topic: state}\n"
        "status: {value: state, map: {0: Available, 1: Charging}}\n"
    )

    class VendorProfiles:
        """A vendor's package: its domain in the configuration, a profile for mqtt."""

        @staticmethod
        @hookimpl
        def evhub_integration() -> Integration:
            async def setup(ctx: SetupContext) -> bool:
                return True

            return Integration(domain="acme_profiles", name="ACME", version="1", setup=setup)

        @staticmethod
        @hookimpl
        def evhub_device_profiles(domain: str) -> list[Path] | None:
            return [profile_file] if domain == "mqtt" else None

    (tmp_path / "configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        "acme_profiles:\n"
        + _config(broker.port, chargers="    - {id: acme, profile: acme_mqtt, serial: '7'}\n")
    )
    watcher = await watch(broker.port, [])
    hub = new_hub(tmp_path)
    plugin_registry(hub).register(VendorProfiles)
    await hub.start()
    try:
        assert _charger(hub, "acme").profile.manufacturer == "ACME"
        await wait_until(hub.data[DATA_MQTT].connection.connected.is_set, what="connected")
        await watcher.client.publish("acme/7/state", b"1")
        await wait_until(lambda: _state(hub, "status", "acme") == "Charging", what="Charging")
    finally:
        await hub.stop()
