"""The Zaptec integration against a faithful fake of the cloud API on a loopback port.

Polling, token expiry and backoff run on the hub's manual clock: no real waiting, except
a hung request bounded by a short timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

from hub.charger import EVENT_CHARGER, get_charger
from hub.core import Event, Hub
from hub.exceptions import HubError
from hub.registry import device_registry
from hub.testing import ApiUser, HubFactory, http_url, manual_clock_of
from integrations.zaptec import account_of
from integrations.zaptec.charger import ZaptecCharger, meter_wh
from tests.integrations.zaptec.conftest import (
    CHARGER_ID,
    INSTALLATION_ID,
    PASSWORD,
    USERNAME,
    Failure,
    FakeZaptec,
    StartCloud,
)

INTERVAL = 30.0


def _config(cloud: FakeZaptec, extra: str = "") -> str:
    return (
        "zaptec:\n"
        f"  username: {USERNAME}\n"
        f"  password: {PASSWORD}\n"
        f"  base_url: {cloud.url}\n"
        f"  scan_interval: {INTERVAL}\n"
        "  timeout: 0.5\n" + extra
    )


async def _start(hub_factory: HubFactory, cloud: FakeZaptec, extra: str = "") -> Hub:
    hub = await hub_factory(_config(cloud, extra))
    cloud.now = manual_clock_of(hub).time
    await manual_clock_of(hub).advance(0)  # the first poll
    return hub


def _charger(hub: Hub) -> ZaptecCharger:
    device = device_registry(hub).get_by_identifier(("zaptec", CHARGER_ID))
    assert device is not None
    charger = get_charger(hub, device.id)
    assert isinstance(charger, ZaptecCharger)
    return charger


def _state(hub: Hub, entity: str) -> str | None:
    charger = _charger(hub)
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


def _kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["kind"] for event in events]


async def _tick(hub: Hub, times: int = 1) -> None:
    for _ in range(times):
        await manual_clock_of(hub).advance(INTERVAL)


# State to entities ---------------------------------------------------------------------


async def test_entities_follow_the_state(hub_factory: HubFactory, zaptec_cloud: StartCloud) -> None:
    cloud = await zaptec_cloud()
    hub = await _start(hub_factory, cloud)
    charger = _charger(hub)
    assert charger.online
    assert _state(hub, "connectivity") == "online"
    assert _state(hub, "status") == "Charging"
    assert _state(hub, "power") == "7245.5"
    assert _state(hub, "session_energy") == "5230.0"
    assert _state(hub, "energy") == "1234500.0"  # the OCMF meter reading, kWh to Wh
    assert [_state(hub, f"current_{p}") for p in ("l1", "l2", "l3")] == ["10.5", "10.4", "10.6"]
    assert _state(hub, "voltage_l2") == "229.8"
    assert _state(hub, "current_limit") == "16.0"
    assert _state(hub, "enabled") == "on"
    assert _state(hub, "error_code") == "unknown"  # no warnings
    assert charger.session is not None  # charging when first seen: a session is open

    events = _events(hub)
    cloud.set(**{"710": "5", "718": "0", "513": "0", "553": "7.5"})  # the car is full
    await _tick(hub)
    assert _state(hub, "status") == "SuspendedEV"
    cloud.set(**{"710": "1", "553": "0", "804": "16"})  # unplugged, a warning
    await _tick(hub)
    assert _state(hub, "status") == "Available"
    assert _state(hub, "error_code") == "16"
    statuses = [e["status"] for e in events if e["kind"] == "status"]
    assert statuses == ["SuspendedEV", "Available"]
    [ended] = [e for e in events if e["kind"] == "session_ended"]
    assert ended["energy_wh"] == 7500.0
    assert ended["stop_reason"] == "EVDisconnected"
    assert ended["peak_power_w"] == 7245.5
    cloud.set(**{"711": "0"})  # disabled: not available for use
    await _tick(hub)
    assert _state(hub, "status") == "Unavailable"


async def test_hostile_values_are_clear_problems_not_a_crash(
    hub_factory: HubFactory, zaptec_cloud: StartCloud
) -> None:
    cloud = await zaptec_cloud()
    hub = await _start(hub_factory, cloud)
    charger = _charger(hub)
    cloud.set(**{"513": "NaN", "501": "1e400", "502": "abc", "710": "42", "554": "OCMF|{|"})
    await _tick(hub)
    assert charger.online
    assert _state(hub, "power") == "unknown"
    assert _state(hub, "voltage_l1") == "unknown"
    assert _state(hub, "status") == "Charging"  # the last known status stands
    assert "operation mode 42 is not one Zaptec documents" in charger.problems
    assert any("observation 502" in problem for problem in charger.problems)
    # Whole answers of the wrong shape, or too large: the cloud is broken, nothing crashes.
    cloud.set(**{"710": "3"})
    for body in (b'{"not": "a list"}', b"<html>gateway</html>", b"[" * 100_000, b" " * 2_000_000):
        cloud.failures.append(Failure(status=200, body=body))
    await manual_clock_of(hub).advance(3600)
    assert cloud.failures == []
    assert _state(hub, "status") == "Charging"
    assert charger.online
    assert meter_wh('OCMF|{"RD":[{"RV":"12","RI":"1-0:1.8.0","RU":"kWh"}]}|{}') is None
    assert meter_wh('OCMF|{"RD":[{"RV":12,"RI":"1-0:1.8.0","RU":"Wh"}]}|{}') == 12.0


# Commands -------------------------------------------------------------------------------


async def test_commands_reach_the_cloud(hub_factory: HubFactory, zaptec_cloud: StartCloud) -> None:
    cloud = await zaptec_cloud()
    hub = await _start(hub_factory, cloud)
    charger = _charger(hub)
    target = {"device_id": charger.device_id}
    await hub.services.call("charger", "stop_charging", {}, target)
    assert cloud.commands == [(CHARGER_ID, 506)]
    await _tick(hub)
    assert _state(hub, "status") == "SuspendedEVSE"  # paused: FinalStopActive
    await hub.services.call("charger", "start_charging", {}, target)
    await hub.services.call("charger", "reset", {"type": "hard"}, target)
    assert cloud.commands[1:] == [(CHARGER_ID, 507), (CHARGER_ID, 102)]
    await hub.services.call("charger", "set_current_limit", {"limit": 20}, target)
    assert cloud.installation_updates == [(INSTALLATION_ID, {"availableCurrent": 20.0})]
    with pytest.raises(HubError, match="at most 32 A"):
        await hub.services.call("charger", "set_current_limit", {"limit": 40}, target)
    # A command the charger's state refuses (528) is an answer, not the cloud failing.
    await _tick(hub)
    with pytest.raises(HubError, match=r"rejected .*not paused"):
        await hub.services.call("charger", "start_charging", {}, target)
    account = account_of(hub)
    assert account is not None
    assert account.failures == 0
    events = _events(hub)
    assert await hub.services.call("charger", "trigger_status", {}, target)
    await hub.block_till_done()
    assert [e["status"] for e in events if e["kind"] == "status"] == ["Charging"]


# Tokens ---------------------------------------------------------------------------------


async def test_the_token_is_renewed_before_expiry_and_after_a_401(
    hub_factory: HubFactory, zaptec_cloud: StartCloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cloud = await zaptec_cloud()
    cloud.token_life = 600
    hub = await _start(hub_factory, cloud)
    events = _events(hub)
    assert cloud.logins == 1
    await _tick(hub, 18)  # 540 s: renewed before the 600 s are over
    assert cloud.logins == 2
    cloud.revoke_tokens()  # a 401 on the next request: one new token, the request again
    before = len(cloud.state_requests())
    await _tick(hub)
    assert cloud.logins == 3
    assert len(cloud.state_requests()) == before + 2
    assert "unknown" not in _kinds(events)
    assert _state(hub, "status") == "Charging"
    assert PASSWORD not in caplog.text


async def test_a_refused_password_is_a_clear_error_never_logged(
    hub_factory: HubFactory, zaptec_cloud: StartCloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cloud = await zaptec_cloud()
    hub = await hub_factory(_config(cloud).replace(PASSWORD, "wrong-Pa55"))
    assert account_of(hub) is None
    assert "refused the username or password" in caplog.text
    assert "wrong-Pa55" not in caplog.text
    assert cloud.logins == 0


async def test_a_config_error_names_the_key(
    hub_factory: HubFactory, zaptec_cloud: StartCloud, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = await zaptec_cloud()
    hub = await hub_factory(_config(cloud).replace("scan_interval: 30.0", "scan_interval: 1"))
    assert account_of(hub) is None
    assert "zaptec" in caplog.text
    assert "scan_interval" in caplog.text
    assert "configuration.yaml" in caplog.text
    assert PASSWORD not in caplog.text


# Backoff, unknown and offline -----------------------------------------------------------


async def test_429_waits_for_retry_after(hub_factory: HubFactory, zaptec_cloud: StartCloud) -> None:
    cloud = await zaptec_cloud()
    hub = await _start(hub_factory, cloud)
    events = _events(hub)
    start = manual_clock_of(hub).time()
    cloud.failures.append(Failure(status=429, headers={"Retry-After": "120"}))
    await _tick(hub)  # +30: 429
    await _tick(hub, 4)  # +60, +90, +120: waiting; +150 (Retry-After 120 s later): again
    polled = [when - start for when in cloud.state_requests() if when > start]
    assert polled == [30.0, 150.0]
    assert "unknown" not in _kinds(events)  # one throttled round: nothing unknown yet
    assert _charger(hub).online


async def test_5xx_backs_off_and_the_unreachable_cloud_is_unknown_not_an_outage(
    hub_factory: HubFactory, zaptec_cloud: StartCloud
) -> None:
    from integrations.uptime import engine_of

    cloud = await zaptec_cloud()
    hub = await _start(hub_factory, cloud)
    charger = _charger(hub)
    events = _events(hub)
    start = manual_clock_of(hub).time()
    cloud.down = Failure(status=503)
    await manual_clock_of(hub).advance(600)
    polled = [when - start for when in cloud.state_requests() if when > start]
    # Every failure doubles the wait: 30, 60, 120, 240 s between tries.
    assert polled == [30.0, 60.0, 120.0, 240.0, 480.0]
    assert _kinds(events) == ["unknown"]  # after the second failed round, once
    assert not charger.online
    assert _state(hub, "connectivity") == "unknown"
    assert _state(hub, "status") == "unknown"
    engine = engine_of(hub)
    assert engine.open_outages() == []
    assert charger.device_id in engine.unknown_stations()
    cloud.down = None
    await manual_clock_of(hub).advance(600)
    assert _kinds(events)[1:3] == ["online", "status"]
    assert _state(hub, "status") == "Charging"
    assert engine.open_outages() == []
    assert engine.outages() == []
    assert engine.unknown_stations() == {}


async def test_a_hung_cloud_times_out_into_unknown(
    hub_factory: HubFactory, zaptec_cloud: StartCloud
) -> None:
    from integrations.uptime import engine_of

    cloud = await zaptec_cloud()
    hub = await _start(hub_factory, cloud)
    events = _events(hub)
    cloud.down = Failure(status=200, hang=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await _tick(hub, 2)
    assert loop.time() - started < 3  # bounded by the 0.5 s timeout: no stall
    assert _kinds(events) == ["unknown"]
    assert "did not answer" in (_state(hub, "last_error") or "")
    assert engine_of(hub).open_outages() == []
    cloud.down = None


async def test_a_charger_the_cloud_reports_offline_is_an_outage(
    hub_factory: HubFactory, zaptec_cloud: StartCloud
) -> None:
    from integrations.uptime import engine_of

    cloud = await zaptec_cloud()
    hub = await _start(hub_factory, cloud)
    events = _events(hub)
    cloud.set(**{"-2": "0"})
    await _tick(hub)
    assert _kinds(events) == ["offline"]
    assert _state(hub, "connectivity") == "offline"
    [outage] = engine_of(hub).open_outages()
    assert outage.cause == "offline"
    cloud.set(**{"-2": "1"})
    await _tick(hub)
    assert engine_of(hub).open_outages() == []
    [closed] = engine_of(hub).outages()
    assert closed.end is not None
    assert closed.end - closed.start == INTERVAL


async def test_the_api_lists_the_chargers_without_credentials(
    hub_factory: HubFactory, zaptec_cloud: StartCloud, api_user: ApiUser
) -> None:
    cloud = await zaptec_cloud()
    hub = await _start(hub_factory, cloud)
    token = await api_user(hub, "viewer")
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{http_url(hub)}/api/zaptec/chargers", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        assert response.status == 200
        text = await response.text()
        body = await response.json()
    assert body["reachable"] is True
    assert [charger["id"] for charger in body["chargers"]] == [CHARGER_ID]
    assert body["chargers"][0]["status"] == "Charging"
    assert PASSWORD not in text
    assert USERNAME not in text
    assert "token-" not in text
