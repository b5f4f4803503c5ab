"""The Modbus integration against real pymodbus servers on loopback TCP ports.

Every profile is polled over TCP: statuses, scaling and word order, writes confirmed by
reading back, a rejected write, a server that restarts, a device that stops answering
(offline in uptime), garbage values, the failsafe heartbeat, RTU framing over TCP.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.charger import EVENT_CHARGER, get_charger
from hub.cli import main
from hub.core import Event, Hub
from hub.exceptions import ServiceValidationError
from hub.registry import device_registry
from hub.testing import ApiUser, HubFactory, http_url, manual_clock_of
from integrations.modbus.client import ModbusExceptionError
from integrations.modbus.device import ModbusCharger
from integrations.modbus.profile import build_profile, validate_profile
from integrations.modbus.simulator import Raw, SimulatedWallbox
from tests.integrations.modbus.conftest import PROFILES, StartServer, announce_keba

ALL = sorted(PROFILES)


def _config(devices: list[dict[str, Any]], extra: str = "") -> str:
    lines = ["modbus:", "  timeout: 0.5", "  devices:"]
    for device in devices:
        lines.append(f"    - id: {device['id']}")
        for key, value in device.items():
            if key != "id":
                lines.append(f"      {key}: {value}")
    return "\n".join(lines) + "\n" + extra


async def _phoenix_hub(hub_factory: HubFactory, port: int) -> Hub:
    """A hub with a Phoenix Contact EM-CP-PP-ETH (key pc) on the loopback port."""
    device = {"id": "pc", "profile": "phoenix_em_cp_pp_eth", "host": "127.0.0.1", "port": port}
    return await hub_factory(_config([device]))


def _charger(hub: Hub, key: str) -> ModbusCharger:
    device = device_registry(hub).get_by_identifier(("modbus", key))
    assert device is not None
    charger = get_charger(hub, device.id)
    assert isinstance(charger, ModbusCharger)
    return charger


def _state(hub: Hub, key: str, entity: str) -> str | None:
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


# Profiles as data ----------------------------------------------------------------------


def test_profiles_plan_the_fewest_contiguous_reads() -> None:
    plans = {
        key: [(b.function, b.address, b.count) for b in p.blocks] for key, p in PROFILES.items()
    }
    # ABB's map is one run of holding registers: one request per poll.
    assert plans["abb_terra_ac"] == [("holding", 16384, 33)]
    # KEBA's UINT32 input registers: adjacent ones joined, gaps (reserved addresses) not.
    assert ("input", 1004, 18) in plans["keba_p30"]
    assert all(block[1] != 5004 for block in plans["keba_p30"])  # write-only: never read
    # The EVC04's reserved odd addresses are spanned (max_gap: 2): one read for 1000-1021.
    assert ("input", 1000, 22) in plans["vestel_evc04"]
    # A coil is read with its own function.
    assert ("coil", 400, 1) in plans["phoenix_em_cp_pp_eth"]


def test_decoding_scales_orders_words_and_refuses_nonsense() -> None:
    def register(**spec: Any) -> Any:
        profile = build_profile(
            "t",
            validate_profile(
                {
                    "name": "t",
                    "registers": {"x": {"address": 0, **spec}, "s": {"address": 100}},
                    "status": {"register": "s", "map": {0: "A"}},
                }
            ),
        )
        return profile.registers["x"]

    big = register(type="u32", scale=0.001)
    little = register(type="u32", scale=0.001, word_order="little")
    assert big.decode([0x0001, 0x86A0]) == 100.0
    assert little.decode([0x86A0, 0x0001]) == 100.0
    assert little.encode(100.0) == [0x86A0, 0x0001]
    assert register(type="s16").decode([0xFFFE]) == -2
    assert register(type="s32", word_order="little").decode([0xFFFF, 0xFFFF]) == -1
    assert register(type="float32").decode(register(type="float32").encode(230.5)) == 230.5
    assert register(type="float64").decode([0x4059, 0, 0, 0]) == 100.0
    assert register(type="string", count=3).decode([0x4B45, 0x4241, 0x0000]) == "KEBA"
    assert register(type="u16", offset=-40, scale=0.5).decode([100]) == 10.0
    with pytest.raises(ValueError, match="above its maximum 500"):
        register(type="u16", min=0, max=500).decode([501])
    with pytest.raises(ValueError, match="not a number"):
        register(type="float32").decode([0x7FC0, 0x0000])
    with pytest.raises(ValueError, match="does not fit"):
        register(type="u16").encode(70000)


def test_a_profile_that_names_a_missing_register_is_refused() -> None:
    import voluptuous as vol

    with pytest.raises(vol.Invalid, match="no register named 'nope'"):
        validate_profile(
            {
                "name": "t",
                "registers": {"s": {"address": 1}},
                "status": {"register": "s", "map": {0: "A"}},
                "writes": {"current_limit": {"register": "nope"}},
            }
        )
    with pytest.raises(vol.Invalid, match="not writable"):
        validate_profile(
            {
                "name": "t",
                "registers": {"s": {"address": 1, "function": "input"}},
                "status": {"register": "s", "map": {0: "A"}},
                "writes": {"current_limit": {"register": "s"}},
            }
        )


def test_custom_profile_errors_name_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "configuration.yaml").write_text(
        "http:\n  server_port: 0\n"
        "modbus:\n"
        "  profiles:\n"
        "    my_box:\n"
        "      name: My box\n"
        "      registers:\n"
        "        state: {address: 70000}\n"
        "      status:\n"
        "        register: state\n"
        "        map: {0: Charging, 1: Z}\n"
    )
    assert main(["check-config", "--config", str(tmp_path)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert (
        "configuration.yaml, line 8: modbus → profiles → my_box → registers → state → address"
        in text
    )
    assert "configuration.yaml, line 11:" in text
    assert "'Z' is neither a connector status" in text


# Polling every profile over TCP --------------------------------------------------------


@pytest.mark.parametrize("key", ALL)
async def test_every_profile_polls_statuses_and_values_over_tcp(
    key: str, hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    server = await wallbox_server(key)
    wallbox = server.wallbox
    wallbox.energy_wh = 123_400.0
    hub = await hub_factory(
        _config([{"id": "box", "profile": key, "host": "127.0.0.1", "port": server.port}])
    )
    events = _events(hub)
    charger = _charger(hub, "box")
    assert await charger.refresh()
    assert _state(hub, "box", "connectivity") == "online"
    assert _state(hub, "box", "status") == "Available"
    assert [e["kind"] for e in events][:2] == ["online", "status"]

    wallbox.set_state("plugged")
    assert await charger.refresh()
    assert _state(hub, "box", "status") in ("SuspendedEV", "Preparing")

    wallbox.set_state("charging")
    assert await charger.refresh()
    assert _state(hub, "box", "status") == "Charging"
    assert float(_state(hub, "box", "power") or 0) == pytest.approx(230 * 16 * 3, rel=0.01)
    assert float(_state(hub, "box", "current_l1") or 0) == pytest.approx(16.0)
    assert float(_state(hub, "box", "voltage_l2") or 0) == pytest.approx(230.0)
    if "energy" in {r.entity for r in wallbox.profile.registers.values()}:
        # Scaled back to Wh from each product's unit (0.1 Wh, Wh, 0.1 kWh), in its word order.
        assert float(_state(hub, "box", "energy") or 0) == pytest.approx(123_400, abs=100)

    wallbox.set_state("fault")
    assert await charger.refresh()
    assert _state(hub, "box", "status") == "Faulted"
    news = [e for e in events if not e["kind"].startswith("session")]
    assert [e["kind"] for e in news][-2:] == ["fault", "status"]
    assert news[-1]["previous"] == "Charging"
    # The fault ends the session that was charging, as a charger's StopTransaction would.
    assert events[-1]["kind"] == "session_ended"
    assert events[-1]["stop_reason"] == "Other"
    wallbox.set_state("idle")
    assert await charger.refresh()
    assert _state(hub, "box", "status") == "Available"
    assert "recovered" in [e["kind"] for e in events]


async def test_one_poll_per_interval_on_the_hub_clock(
    hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    server = await wallbox_server("keba_p30")
    hub = await hub_factory(
        _config([{"id": "box", "profile": "keba_p30", "host": "127.0.0.1", "port": server.port}])
    )
    charger = _charger(hub, "box")
    clock = manual_clock_of(hub)
    await clock.advance(0)
    await charger.refresh()
    before = charger.polls
    for _ in range(3):
        await clock.advance(5)
        await charger.refresh()  # waits for the poll the interval started
    # Three intervals: three polls (refresh joined each, it started none of its own).
    assert charger.polls - before == 3
    assert charger.late == 0


# Writes --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ALL)
async def test_writes_take_effect_and_are_read_back(
    key: str, hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    server = await wallbox_server(key)
    wallbox = server.wallbox
    hub = await hub_factory(
        _config([{"id": "box", "profile": key, "host": "127.0.0.1", "port": server.port}])
    )
    charger = _charger(hub, "box")
    assert await charger.refresh()
    target = {"device_id": charger.device_id}
    answer = await hub.services.call("charger", "set_current_limit", {"limit": 10}, target)
    assert answer[charger.device_id]["result"] == "Accepted"
    assert wallbox.current_limit == 10.0
    assert float(_state(hub, "box", "current_limit") or 0) == 10.0
    with pytest.raises(ServiceValidationError, match="at most"):
        await hub.services.call("charger", "set_current_limit", {"limit": 999}, target)
    if "enable" in wallbox.profile.writes:
        await hub.services.call("charger", "set_availability", {"available": False}, target)
        assert wallbox.enabled is False
        assert _state(hub, "box", "status") == "Unavailable"
        await hub.services.call("charger", "set_availability", {"available": True}, target)
        assert wallbox.enabled is True
        assert _state(hub, "box", "status") == "Available"
    if "start_stop" in wallbox.profile.writes:
        wallbox.set_state("plugged")
        await hub.services.call("charger", "start_charging", {}, target)
        assert wallbox.state == "charging"
        assert _state(hub, "box", "status") == "Charging"
        await hub.services.call("charger", "stop_charging", {}, target)
        assert wallbox.state == "plugged"


def _phase_profile(max_current: float) -> Any:
    """A custom profile with phase switching (none of the built-in products has it)."""
    return {
        "name": "Custom box",
        "manufacturer": "Homemade",
        "unit_id": 7,
        "registers": {
            "state": {"address": 10, "function": "input", "type": "u16"},
            "power": {"address": 11, "function": "input", "type": "float32", "entity": "power"},
            "limit": {"address": 20, "type": "u16", "scale": 0.1, "entity": "current_limit"},
            "phases": {"address": 21, "type": "u16", "entity": "phases"},
        },
        "status": {"register": "state", "map": {0: "A", 1: "B", 2: "C", 3: "F"}},
        "writes": {
            "current_limit": {"register": "limit", "min": 6, "max": max_current},
            "phases": {"register": "phases", "values": {1: 1, 3: 3}},
        },
    }


async def test_custom_profile_phases_and_a_rejected_write(
    hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    import yaml

    # The device takes at most 16 A; the profile the user wrote says 32.
    device = build_profile("custom_box", validate_profile(_phase_profile(16)))
    server = await wallbox_server(device)
    section = yaml.safe_dump({"profiles": {"custom_box": _phase_profile(32)}})
    extra = "".join(f"  {line}\n" for line in section.splitlines())
    hub = await hub_factory(
        _config([{"id": "own", "profile": "custom_box", "host": "127.0.0.1", "port": server.port}])
        + extra
    )
    charger = _charger(hub, "own")
    assert await charger.refresh()
    target = {"device_id": charger.device_id}
    await hub.services.call("charger", "set_phases", {"phases": 1}, target)
    assert server.wallbox.phases == 1
    assert _state(hub, "own", "phases") == "1"
    await hub.services.call("charger", "set_current_limit", {"limit": 12.5}, target)
    assert server.wallbox.current_limit == 12.5
    with pytest.raises(ModbusExceptionError, match=r"exception 3 \(illegal data value\)"):
        await hub.services.call("charger", "set_current_limit", {"limit": 20}, target)
    assert server.wallbox.current_limit == 12.5
    assert charger.online  # a refused write is the device answering


# Connection loss -----------------------------------------------------------------------


async def test_reconnects_after_the_server_restarts(
    hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    from integrations.uptime import engine_of

    server = await wallbox_server("vestel_evc04")
    port = server.port
    hub = await hub_factory(
        _config([{"id": "box", "profile": "vestel_evc04", "host": "127.0.0.1", "port": port}])
    )
    events = _events(hub)
    charger = _charger(hub, "box")
    clock = manual_clock_of(hub)
    assert await charger.refresh()
    await server.stop()
    assert not await charger.refresh()
    assert charger.online  # one failed poll is not an outage yet (offline_after: 2)
    assert not await charger.refresh()
    assert not charger.online
    assert _state(hub, "box", "connectivity") == "offline"
    assert events[-1]["kind"] == "offline"
    [outage] = engine_of(hub).open_outages()
    assert outage.cause == "offline"

    restarted = await wallbox_server("vestel_evc04", port=port)
    assert restarted.port == port
    # Backoff: the interval's ticks bring the next attempt, no refresh by hand.
    for _ in range(12):
        await clock.advance(5)
        await asyncio.sleep(0.05)
        if charger.online:
            break
    await charger.refresh()
    assert charger.online
    assert _state(hub, "box", "connectivity") == "online"
    assert [e["kind"] for e in events].count("online") == 2
    assert engine_of(hub).open_outages() == []


async def test_a_device_that_stops_answering_is_offline_in_uptime(
    hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    from integrations.uptime import engine_of

    server = await wallbox_server("keba_p30")
    hub = await hub_factory(
        _config([{"id": "box", "profile": "keba_p30", "host": "127.0.0.1", "port": server.port}])
    )
    charger = _charger(hub, "box")
    assert await charger.refresh()
    server.mute()  # the socket stays open; nothing comes back
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await charger.refresh()
    assert not await charger.refresh()
    assert loop.time() - started < 5  # bounded by the timeout, no stall
    assert _state(hub, "box", "connectivity") == "offline"
    assert [o.cause for o in engine_of(hub).open_outages()] == ["offline"]
    server.mute(False)
    assert await charger.refresh()
    assert engine_of(hub).open_outages() == []


async def test_garbage_values_are_clear_errors_not_a_crash(
    hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    server = await wallbox_server("keba_p30")
    hub = await hub_factory(
        _config([{"id": "box", "profile": "keba_p30", "host": "127.0.0.1", "port": server.port}])
    )
    charger = _charger(hub, "box")
    server.wallbox.set_state("charging")
    assert await charger.refresh()
    assert _state(hub, "box", "status") == "Charging"
    server.wallbox.overrides = {
        "charging_state": 99,  # no such code
        "voltage_l1": Raw(0xFFFF, 0xFFFF),  # beyond the profile's range
    }
    assert await charger.refresh()
    assert charger.online
    assert _state(hub, "box", "status") == "Charging"  # the last known status stands
    assert _state(hub, "box", "voltage_l1") == "unknown"
    assert float(_state(hub, "box", "voltage_l2") or 0) == 230.0
    assert charger.problems == [
        "charging_state = 99 is above its maximum 5",
        "voltage_l1 = 4.29497e+09 is above its maximum 500",
    ]
    assert _state(hub, "box", "last_error") == "charging_state = 99 is above its maximum 5"
    server.wallbox.overrides = {}
    assert await charger.refresh()
    assert _state(hub, "box", "voltage_l1") == "230"


async def test_rtu_framing_over_tcp(hub_factory: HubFactory, wallbox_server: StartServer) -> None:
    server = await wallbox_server("abb_terra_ac", framer="rtu")
    hub = await hub_factory(
        _config(
            [
                {
                    "id": "gw",
                    "profile": "abb_terra_ac",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "framer": "rtu",
                }
            ]
        )
    )
    server.wallbox.set_state("charging")
    charger = _charger(hub, "gw")
    assert await charger.refresh()
    assert _state(hub, "gw", "status") == "Charging"


# Failsafe ------------------------------------------------------------------------------


def test_the_simulated_failsafe_falls_back_when_the_heartbeat_stops() -> None:
    now = [0.0]
    wallbox = SimulatedWallbox(PROFILES["vestel_evc04"], scenario="fixed", now=lambda: now[0])
    wallbox.set_state("charging")
    alive = PROFILES["vestel_evc04"].registers["alive"]
    limit = PROFILES["vestel_evc04"].registers["charging_current"]
    assert wallbox.write("holding", limit.address, limit.encode(32)) is None
    assert wallbox.write("holding", alive.address, [1]) is None
    assert wallbox.effective_limit == 32
    now[0] = 15.0
    assert wallbox.effective_limit == 32
    now[0] = 25.0  # past the 20 s failsafe timeout without a heartbeat
    assert wallbox.failsafe_active
    assert wallbox.effective_limit == 6
    assert wallbox.write("holding", alive.address, [1]) is None
    assert wallbox.effective_limit == 32
    assert wallbox.write("holding", alive.address, [7]) == 3  # illegal data value


@pytest.mark.parametrize("key", ["vestel_evc04", "keba_p30"])
async def test_the_hub_keeps_the_failsafe_heartbeat(
    key: str, hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    server = await wallbox_server(key)
    hub = await hub_factory(
        _config([{"id": "box", "profile": key, "host": "127.0.0.1", "port": server.port}])
    )
    charger = _charger(hub, "box")
    clock = manual_clock_of(hub)
    assert await charger.refresh()
    await hub.services.call(
        "charger", "set_current_limit", {"limit": 20}, {"device_id": charger.device_id}
    )
    before = server.wallbox.heartbeats
    period = float(PROFILES[key].failsafe["period"])  # type: ignore[index]
    for _ in range(3):
        await clock.advance(period)
        for _ in range(50):
            if charger.heartbeats and server.wallbox.heartbeats > before:
                break
            await asyncio.sleep(0.01)
    assert server.wallbox.heartbeats >= before + 2
    assert server.wallbox.effective_limit == 20


# The command line ----------------------------------------------------------------------


def test_evhub_simulate_modbus_serves_a_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["simulate", "modbus", "--profile", "abb_terra_ac", "--port", "0", "--duration", "0.2"]
        )
        == 0
    )
    assert "Simulating ABB Terra AC (abb_terra_ac) on 127.0.0.1:" in capsys.readouterr().out
    assert main(["simulate", "modbus", "--profile", "nope", "--port", "0"]) == 2
    assert main(["modbus", "profiles"]) == 0
    assert "vestel_evc04\tVestel EVC04\tcurrent_limit" in capsys.readouterr().out


# API -----------------------------------------------------------------------------------


async def test_devices_view_for_viewers(
    hub_factory: HubFactory, wallbox_server: StartServer, api_user: ApiUser
) -> None:
    server = await wallbox_server("phoenix_em_cp_pp_eth")
    hub = await _phoenix_hub(hub_factory, server.port)
    await _charger(hub, "pc").refresh()
    viewer = await api_user(hub, "viewer")
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{http_url(hub)}/api/modbus/devices", headers={"Authorization": f"Bearer {viewer}"}
        ) as resp,
    ):
        assert resp.status == 200
        [device] = await resp.json()
    assert device["online"] is True
    assert device["profile"] == "phoenix_em_cp_pp_eth"
    assert set(device["capabilities"]) >= {"set_current_limit", "set_availability"}


# Profiles from plugins -----------------------------------------------------------------


async def test_a_plugin_adds_a_profile_through_the_hook(
    tmp_path: Path, wallbox_server: StartServer
) -> None:
    import yaml

    from hub.bootstrap import new_hub
    from hub.hookspecs import hookimpl
    from hub.plugins import Integration, SetupContext, plugin_registry

    profile_file = tmp_path / "acme_wallbox.yaml"
    profile_file.write_text(yaml.safe_dump(_phase_profile(32)))
    device = build_profile("acme_wallbox", validate_profile(_phase_profile(32)))
    server = await wallbox_server(device)

    class VendorProfiles:
        """A vendor's package: its domain in the configuration, profiles for modbus."""

        @staticmethod
        @hookimpl
        def evhub_integration() -> Integration:
            async def setup(ctx: SetupContext) -> bool:
                return True

            return Integration(domain="acme_profiles", name="ACME", version="1", setup=setup)

        @staticmethod
        @hookimpl
        def evhub_device_profiles(domain: str) -> list[Path] | None:
            return [profile_file] if domain == "modbus" else None

    (tmp_path / "configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        "acme_profiles:\n"
        + _config(
            [{"id": "acme", "profile": "acme_wallbox", "host": "127.0.0.1", "port": server.port}]
        )
    )
    hub = new_hub(tmp_path)
    plugin_registry(hub).register(VendorProfiles)
    await hub.start()
    try:
        charger = _charger(hub, "acme")
        assert charger.profile.name == "Custom box"
        assert await charger.refresh()
        assert _state(hub, "acme", "status") == "Available"
    finally:
        await hub.stop()


# LAN discovery -------------------------------------------------------------------------


async def test_zeroconf_discovers_a_charger_and_an_admin_adopts_it(
    hub_factory: HubFactory, wallbox_server: StartServer, api_user: ApiUser
) -> None:
    import uuid

    server = await wallbox_server("keba_p30")
    # Names of their own: other hubs and chargers may be announced on this machine.
    unique = uuid.uuid4().hex[:8]
    hub = await hub_factory("modbus:\n  discovery:\n    interfaces: [127.0.0.1]\n")
    # The hub advertises itself on loopback too (the fixture turns it off: on here), on a
    # port of its own by which the test knows it.
    from hub.http.discovery import Advertiser

    own_port = 40000 + int(unique[:4], 16) % 20000
    advertiser = Advertiser(hub, "127.0.0.1", own_port, secure=False)
    advertiser.start()
    charger_name = f"KEBA KeContact P30 {unique}"
    announced = await announce_keba(unique)
    url = http_url(hub)
    admin, viewer = await api_user(hub, "admin"), await api_user(hub, "viewer")
    try:
        async with aiohttp.ClientSession() as session:
            found: dict[str, Any] = {}
            own: list[Any] = []
            for _ in range(100):
                async with session.get(
                    f"{url}/api/modbus/discovered", headers={"Authorization": f"Bearer {admin}"}
                ) as resp:
                    assert resp.status == 200
                    listing = (await resp.json())["discovered"]
                found = {entry["name"]: entry for entry in listing}
                own = [entry for entry in listing if entry["port"] == own_port]
                if charger_name in found and _modbus(hub).discovery.seen_self:
                    break
                await asyncio.sleep(0.1)
            entry = found[charger_name]
            assert entry["vendor"] == "KEBA"
            assert entry["profile"] == "keba_p30"
            assert entry["host"] == "127.0.0.1"
            assert entry["kind"] == "charger"
            # The hub's own advertisement (its token in the TXT record) was seen, not listed.
            assert _modbus(hub).discovery.seen_self >= 1
            assert own == []
            assert all(e["port"] != own_port for e in _discovered(hub))
            # Nothing is configured without the user.
            assert _modbus(hub).devices == {}
            async with session.get(
                f"{url}/api/modbus/discovered", headers={"Authorization": f"Bearer {viewer}"}
            ) as resp:
                assert resp.status == 403
            for token, expected in ((viewer, 403), (admin, 200)):
                async with session.post(
                    f"{url}/api/services/modbus/adopt",
                    json={"data": {"id": entry["id"], "device_id": "adopted", "port": server.port}},
                    headers={"Authorization": f"Bearer {token}"},
                ) as resp:
                    assert resp.status == expected, await resp.text()
        charger = _charger(hub, "adopted")
        assert await charger.refresh()
        assert _state(hub, "adopted", "status") == "Available"
        assert _discovered(hub)[0]["adopted"] == "adopted" or any(
            e["adopted"] == "adopted" for e in _discovered(hub)
        )
        # Adopted devices are kept: the store holds it for the next start.
        stored = await _modbus(hub).store.load()
        assert stored is not None
        assert stored["devices"][0]["port"] == server.port
        # And forgotten in one step too: polling stops, the store no longer holds it.
        polls = charger.polls
        await hub.services.call("modbus", "forget", {"device": "adopted"})
        assert "adopted" not in _modbus(hub).devices
        assert get_charger(hub, charger.device_id) is None
        await manual_clock_of(hub).advance(60)
        assert charger.polls == polls
        stored = await _modbus(hub).store.load()
        assert stored is not None
        assert stored["devices"] == []
    finally:
        await announced.withdraw()
        await advertiser.stop()


def _modbus(hub: Hub) -> Any:
    from integrations.modbus import DATA_MODBUS

    return hub.data[DATA_MODBUS]


def _discovered(hub: Hub) -> list[dict[str, Any]]:
    return list(_modbus(hub).discovery.listing())


def test_the_readme_examples_are_valid_configuration() -> None:
    import re

    import yaml

    from integrations.modbus import CONFIG_SCHEMA

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## Modbus TCP wallboxes", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    for block in blocks:
        config = CONFIG_SCHEMA(yaml.safe_load(block)["modbus"])
        assert config["devices"]
    custom = CONFIG_SCHEMA(yaml.safe_load(blocks[1])["modbus"])["profiles"]["my_box"]
    profile = build_profile("my_box", custom)
    assert sorted(profile.writes) == ["current_limit", "enable", "phases"]
    assert profile.registers["temperature"].decode([650]) == 25.0


# Sessions and history ------------------------------------------------------------------


async def test_sessions_and_statuses_reach_history_like_an_ocpp_chargers(
    hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    from integrations.recorder import get_recorder

    server = await wallbox_server("keba_p30")
    wallbox = server.wallbox
    hub = await hub_factory(
        _config([{"id": "box", "profile": "keba_p30", "host": "127.0.0.1", "port": server.port}])
    )
    events = _events(hub)
    charger = _charger(hub, "box")
    clock = manual_clock_of(hub)
    assert await charger.refresh()
    wallbox.set_state("plugged")
    assert await charger.refresh()
    wallbox.set_state("charging")
    assert await charger.refresh()
    await clock.advance(600)
    wallbox.session_wh += 7_300.0
    wallbox.energy_wh += 7_300.0
    assert await charger.refresh()
    wallbox.set_state("idle")
    assert await charger.refresh()
    kinds = [e["kind"] for e in events]
    assert "session_started" in kinds
    assert kinds.count("session_ended") == 1
    ended = next(e for e in events if e["kind"] == "session_ended")
    assert ended["energy_wh"] == pytest.approx(7_300, abs=5)
    assert ended["stop_reason"] == "EVDisconnected"
    assert ended["peak_power_w"] == pytest.approx(230 * 16 * 3, rel=0.01)
    assert ended["stopped_at"] - ended["started_at"] >= 600
    recorder = get_recorder(hub)
    await recorder.flush()
    [session] = await recorder.sessions(0, clock.time() + 1)
    assert session["energy_wh"] == pytest.approx(7_300, abs=5)
    statuses = [row["status"] for row in await recorder.port_status(0, clock.time() + 1)]
    assert statuses[-1] == "Available"
    assert "Charging" in statuses


async def test_an_open_session_survives_a_restart(
    tmp_path: Path, wallbox_server: StartServer
) -> None:
    from hub.bootstrap import new_hub
    from hub.clock import use_manual_clock

    server = await wallbox_server("vestel_evc04")
    server.wallbox.set_state("charging")
    (tmp_path / "configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        + _config(
            [{"id": "box", "profile": "vestel_evc04", "host": "127.0.0.1", "port": server.port}]
        )
    )
    transaction = None
    for round_ in range(2):
        hub = new_hub(tmp_path)
        use_manual_clock(hub, 1_800_000_000.0 + round_ * 100)
        await hub.start()
        try:
            charger = _charger(hub, "box")
            events = _events(hub)
            assert await charger.refresh()
            assert charger.session is not None
            if transaction is None:
                transaction = charger.session["transaction_id"]
                assert [e["kind"] for e in events].count("session_started") == 1
            else:
                # The same session goes on: no second start.
                assert charger.session["transaction_id"] == transaction
                assert "session_started" not in [e["kind"] for e in events]
                server.wallbox.set_state("idle")
                assert await charger.refresh()
                [ended] = [e for e in events if e["kind"] == "session_ended"]
                assert ended["transaction_id"] == transaction
        finally:
            await hub.stop()


# Hostile devices and files -------------------------------------------------------------


async def test_a_device_answering_garbage_frames_is_offline_not_a_stall(
    hub_factory: HubFactory,
) -> None:
    answers = [
        b"\xff" * 3,
        b"\x00\x01\x00\x00\x00\xff\xff\x03\x02",  # a length far beyond what follows
        bytes(range(256)) * 4,
    ]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for answer in answers * 20:
                if not await reader.read(260):
                    break
                writer.write(answer)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        hub = await hub_factory(
            _config([{"id": "junk", "profile": "vestel_evc04", "host": "127.0.0.1", "port": port}])
        )
        charger = _charger(hub, "junk")
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(3):
            assert not await charger.refresh()
        assert loop.time() - started < 10
        assert _state(hub, "junk", "connectivity") == "offline"
        assert charger.last_error
    finally:
        server.close()
        await server.wait_closed()


def test_a_bad_profile_file_is_named_with_line_and_key(tmp_path: Path) -> None:
    from hub.config import ConfigError
    from integrations.modbus.profile import load_profile_file, load_profiles

    bad = tmp_path / "broken_box.yaml"
    bad.write_text(
        "name: Broken\nregisters:\n  state: {address: 1, type: u24}\nstatus:\n"
        "  register: state\n  map: {0: A}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_profile_file(bad)
    assert str(info.value).startswith("broken_box.yaml:3: broken_box.registers.state.type:")
    profiles, errors = load_profiles([bad])
    assert "broken_box" not in profiles
    assert sorted(profiles) == ALL  # the good ones still load
    assert [error.line for error in errors] == [3]


async def test_serial_rtu_through_a_pseudo_terminal_pair(
    hub_factory: HubFactory, serial_line: tuple[str, str]
) -> None:
    """Modbus RTU on a serial line: two pseudo-terminals joined back to back."""
    from integrations.modbus.simulator import SimulatorServer

    simulator_end, hub_end = serial_line
    wallbox = SimulatedWallbox(PROFILES["abb_terra_ac"], scenario="fixed")
    wallbox.set_state("charging")
    server = SimulatorServer(wallbox, serial={"port": simulator_end, "baudrate": 19200})
    await server.start()
    try:
        hub = await hub_factory(
            "modbus:\n  timeout: 1\n  devices:\n"
            f"    - id: rs485\n      profile: abb_terra_ac\n"
            f"      serial: {{port: {hub_end}, baudrate: 19200}}\n"
        )
        charger = _charger(hub, "rs485")
        assert charger.client.framer == "rtu"
        assert await charger.refresh()
        assert _state(hub, "rs485", "status") == "Charging"
        await hub.services.call(
            "charger", "set_current_limit", {"limit": 8}, {"device_id": charger.device_id}
        )
        assert wallbox.current_limit == 8
    finally:
        await server.stop()


async def test_the_phoenix_profile_speaks_the_published_register_map(
    hub_factory: HubFactory, wallbox_server: StartServer
) -> None:
    """EM-CP-PP-ETH: maximum current in 0.1 A at holding 528, energy in Wh at holding 904 low
    word first, the pilot state as an ASCII letter at input 100, errors at input 107."""
    server = await wallbox_server("phoenix_em_cp_pp_eth")
    wallbox = server.wallbox
    wallbox.energy_wh = 123_400.0
    hub = await _phoenix_hub(hub_factory, server.port)
    charger = _charger(hub, "pc")
    assert await charger.refresh()
    target = {"device_id": charger.device_id}
    await hub.services.call("charger", "set_current_limit", {"limit": 10}, target)
    assert wallbox.read("holding", 528, 1) == [100]
    assert wallbox.read("holding", 904, 2) == [123_400 & 0xFFFF, 123_400 >> 16]
    assert wallbox.read("input", 100, 1) == [ord("A")]
    wallbox.set_state("fault")
    assert await charger.refresh()
    assert wallbox.read("input", 107, 1) != [0]
    assert _state(hub, "pc", "status") == "Faulted"
    assert _state(hub, "pc", "error_code") not in (None, "0")
