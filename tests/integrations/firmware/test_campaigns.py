"""Firmware campaigns over real websockets: simulated OCPP chargers (1.6 and 2.0.1) take the
update and come back with the new version; raw charge points fail or never come back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from hub.core import Event, Hub
from hub.exceptions import HubError, ServiceValidationError
from hub.testing import ApiUser, Connect, http_url
from tests.integrations.firmware.conftest import WAIT, Fleet, Site

LOCATION = "https://firmware.example/evhub-1.0.1.bin"
FIRMWARE = """
firmware:
  batch_size: 2
  timeout_minutes: 1
  minimum_versions:
    - {vendor: evhub, model: Simulator, version: "1.0.1"}
    - {vendor: ACME, version: "2.4.1"}
"""
IDS = [f"CP-{n}" for n in range(1, 6)]


async def firmware(hub: Hub, service: str, data: dict[str, Any] | None = None) -> Any:
    return await hub.services.call("firmware", service, data or {})


async def stations(hub: Hub) -> dict[str, str]:
    """Station name → device id, from the inventory."""
    found = await firmware(hub, "inventory")
    return {row["name"]: row["device_id"] for row in found["stations"]}


async def until(check: Callable[[], Any], timeout: float = WAIT) -> Any:
    async def poll() -> Any:
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), timeout)


async def campaign(hub: Hub, campaign_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await firmware(hub, "campaigns", {"campaign_id": campaign_id})
    return found


async def in_state(hub: Hub, campaign_id: str, state: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await campaign(hub, campaign_id)
        return found if found["state"] == state else None

    try:
        result: dict[str, Any] = await until(check)
    except TimeoutError:
        found = await campaign(hub, campaign_id)
        raise AssertionError(f"campaign is not {state}: {found}") from None
    return result


def items(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in found["items"]}


class InFlight:
    """Counts the updates under way, as the chargers see them: sent, not yet rebooted."""

    def __init__(self, hub: Hub) -> None:
        self.updating: set[str] = set()
        self.most = 0
        self.sent = 0
        hub.bus.listen("call_service", self.on_call)
        hub.bus.listen("charger_event", self.on_event)

    def on_call(self, event: Event) -> None:
        if (event.data["domain"], event.data["service"]) == ("charger", "update_firmware"):
            self.sent += 1
            self.updating.add(event.data["service_data"]["device_id"])
            self.most = max(self.most, len(self.updating))

    def on_event(self, event: Event) -> None:
        if event.data["kind"] == "boot":
            self.updating.discard(event.data["station_id"])


async def boot16(cp: Any, vendor: str = "evhub", model: str = "Simulator") -> None:
    answer = await cp.call(
        "BootNotification",
        {"chargePointVendor": vendor, "chargePointModel": model, "firmwareVersion": "1.0.0"},
    )
    assert answer["status"] == "Accepted"


async def test_campaign_of_five_in_batches_of_two(site: Site, fleet: Fleet) -> None:
    """Every station is updated, never more than two at once, and comes back with 1.0.1;
    the stations below the minimum are flagged before and cleared after."""
    hub = await site.start(FIRMWARE)
    sims = await fleet(site.base_url, IDS)
    ids = await stations(hub)
    before = await firmware(hub, "inventory")
    assert [row["name"] for row in before["below_minimum"]] == [f"Bay {n}" for n in range(1, 6)]
    (model,) = before["models"]
    assert (model["vendor"], model["model"], model["minimum"]) == ("evhub", "Simulator", "1.0.1")
    assert model["versions"] == [{"version": "1.0.0", "stations": 5}]
    assert model["below_minimum"] == 5

    counter = InFlight(hub)
    started = await firmware(
        hub,
        "start_campaign",
        {
            "name": "evhub 1.0.1",
            "location": LOCATION,
            "version": "1.0.1",
            "stations": [ids[f"Bay {n}"] for n in range(1, 6)],
        },
    )
    assert started["batch_size"] == 2
    assert started["progress"]["total"] == 5
    done = await in_state(hub, started["id"], "completed")
    assert done["progress"]["done"] == 5
    assert done["progress"]["percent"] == 100.0
    assert {item["version"] for item in done["items"]} == {"1.0.1"}
    assert {item["from_version"] for item in done["items"]} == {"1.0.0"}
    assert counter.sent == 5
    assert counter.most == 2
    assert [sim.firmware_version for sim in sims] == ["1.0.1"] * 5

    after = await firmware(hub, "inventory")
    assert after["below_minimum"] == []
    assert after["models"][0]["versions"] == [{"version": "1.0.1", "stations": 5}]
    listed = await firmware(hub, "campaigns")
    assert [c["id"] for c in listed["campaigns"]] == [started["id"]]


async def test_installation_failed_pauses_the_campaign(
    site: Site, fleet: Fleet, ocpp_charge_point: Connect
) -> None:
    """CP-1 reports InstallationFailed: the campaign pauses with the reason; what was under
    way finishes, nothing more is sent until it is resumed."""
    hub = await site.start(FIRMWARE)
    raw = await ocpp_charge_point(f"{site.base_url}/CP-1")
    raw.handlers["UpdateFirmware"] = lambda payload: {}
    await boot16(raw)
    sims = await fleet(site.base_url, IDS[1:])
    ids = await stations(hub)
    counter = InFlight(hub)
    started = await firmware(
        hub,
        "start_campaign",
        {"name": "fw", "location": LOCATION, "stations": [ids[f"Bay {n}"] for n in range(1, 6)]},
    )
    sent = await raw.wait_for_call("UpdateFirmware")
    assert sent["location"] == LOCATION
    await until(lambda: counter.sent == 2)
    await raw.call("FirmwareStatusNotification", {"status": "Downloading"})
    await raw.call("FirmwareStatusNotification", {"status": "InstallationFailed"})
    paused = await in_state(hub, started["id"], "paused")
    assert "Bay 1" in paused["reason"]
    assert "InstallationFailed" in paused["reason"]
    # Bay 2 was in the first batch: it finishes; Bay 3-5 wait.
    await until(lambda: sims[0].firmware_version == "1.0.1")
    found = await until(
        lambda: _with_state(hub, started["id"], "Bay 2", "done"),
    )
    by_name = items(found)
    assert by_name["Bay 1"]["state"] == "failed"
    assert by_name["Bay 1"]["status"] == "InstallationFailed"
    assert [by_name[f"Bay {n}"]["state"] for n in (3, 4, 5)] == ["pending"] * 3
    await asyncio.sleep(0.3)
    assert counter.sent == 2
    assert [sim.firmware_version for sim in sims[1:]] == ["1.0.0"] * 3

    # Only a paused campaign resumes; then the rest is updated, Bay 1 stays failed.
    with pytest.raises(HubError, match="not running"):
        await firmware(hub, "pause", {"campaign_id": started["id"]})
    await firmware(hub, "resume", {"campaign_id": started["id"]})
    done = await in_state(hub, started["id"], "completed")
    assert done["progress"]["done"] == 4
    assert done["progress"]["failed"] == 1
    assert [sim.firmware_version for sim in sims] == ["1.0.1"] * 4


async def _with_state(hub: Hub, campaign_id: str, name: str, state: str) -> dict[str, Any] | None:
    found = await campaign(hub, campaign_id)
    return found if items(found)[name]["state"] == state else None


async def test_a_station_that_never_comes_back_pauses_the_campaign(
    site: Site, fleet: Fleet, ocpp_charge_point: Connect
) -> None:
    """CP-1 takes the update and goes away: after the timeout (hub clock) it has failed and
    the campaign pauses; resumed with retry_failed it is tried again."""
    from hub.testing import manual_clock_of

    hub = await site.start(FIRMWARE)
    raw = await ocpp_charge_point(f"{site.base_url}/CP-1")
    raw.handlers["UpdateFirmware"] = lambda payload: {}
    await boot16(raw)
    await fleet(site.base_url, IDS[1:])
    ids = await stations(hub)
    started = await firmware(
        hub,
        "start_campaign",
        {"name": "fw", "location": LOCATION, "stations": [ids[f"Bay {n}"] for n in range(1, 6)]},
    )
    await raw.wait_for_call("UpdateFirmware")
    await raw.call("FirmwareStatusNotification", {"status": "Installing"})
    await raw.close()
    await until(lambda: _with_state(hub, started["id"], "Bay 2", "done"))
    # Not yet: a minute is the timeout.
    await manual_clock_of(hub).advance(30)
    assert (await campaign(hub, started["id"]))["state"] == "running"
    await manual_clock_of(hub).advance(40)
    paused = await in_state(hub, started["id"], "paused")
    assert "not back online with the new firmware within 1 min" in paused["reason"]
    assert "last status Installing" in paused["reason"]
    assert items(paused)["Bay 1"]["state"] == "failed"

    # The station is back (with its old firmware): retried, it gets the update again.
    raw = await ocpp_charge_point(f"{site.base_url}/CP-1")
    raw.handlers["UpdateFirmware"] = lambda payload: {}
    await boot16(raw)
    raw.received.clear()
    resumed = await firmware(hub, "resume", {"campaign_id": started["id"], "retry_failed": True})
    assert items(resumed)["Bay 1"]["state"] in ("pending", "updating")
    await raw.wait_for_call("UpdateFirmware")
    answer = await raw.call(
        "BootNotification",
        {
            "chargePointVendor": "evhub",
            "chargePointModel": "Simulator",
            "firmwareVersion": "1.0.1",
        },
    )
    assert answer["status"] == "Accepted"
    done = await in_state(hub, started["id"], "completed")
    assert done["progress"]["done"] == 5


async def test_resume_after_a_hub_restart(site: Site, fleet: Fleet) -> None:
    """The hub stops while the first batch installs; the next hub on the same config dir
    sees them come back, sends the other three and completes; nobody is updated twice."""
    hub = await site.start(FIRMWARE)
    sims = await fleet(site.base_url, IDS)
    for sim in sims:
        sim.speed = 5.0  # slow enough that the first batch is still installing at the stop
    ids = await stations(hub)
    started = await firmware(
        hub,
        "start_campaign",
        {"name": "fw", "location": LOCATION, "stations": [ids[f"Bay {n}"] for n in range(1, 6)]},
    )

    def told() -> list[Any]:
        return [s for s in sims if any(name == "UpdateFirmware" for name, _ in s.received_calls)]

    await until(lambda: len(told()) == 2)
    await site.stop(hub)
    assert len(told()) == 2

    hub = await site.start(FIRMWARE)
    counter = InFlight(hub)
    stored = await campaign(hub, started["id"])
    assert stored["state"] == "running"
    assert stored["progress"]["updating"] == 2
    done = await in_state(hub, started["id"], "completed")
    assert done["progress"]["done"] == 5
    assert counter.sent == 3
    assert [sim.firmware_version for sim in sims] == ["1.0.1"] * 5


async def test_cancel(site: Site, fleet: Fleet) -> None:
    """Cancelled: the stations not yet sent are cancelled, and nothing more is sent."""
    hub = await site.start(FIRMWARE)
    sims = await fleet(site.base_url, IDS)
    for sim in sims:
        sim.speed = 5.0
    ids = await stations(hub)
    counter = InFlight(hub)
    started = await firmware(
        hub,
        "start_campaign",
        {"name": "fw", "location": LOCATION, "stations": [ids[f"Bay {n}"] for n in range(1, 6)]},
    )
    await until(lambda: counter.sent == 2)
    cancelled = await firmware(hub, "cancel", {"campaign_id": started["id"]})
    assert cancelled["state"] == "cancelled"
    assert cancelled["progress"]["cancelled"] == 3
    await asyncio.sleep(1.5)
    assert counter.sent == 2
    with pytest.raises(HubError, match="already cancelled"):
        await firmware(hub, "cancel", {"campaign_id": started["id"]})


async def test_start_campaign_checks_its_input(site: Site, fleet: Fleet) -> None:
    hub = await site.start(FIRMWARE)
    await fleet(site.base_url, IDS[:2])
    ids = await stations(hub)
    bad: list[dict[str, Any]] = [
        {"name": "x", "location": "not a url", "stations": [ids["Bay 1"]]},
        {"name": "x", "location": LOCATION, "stations": ["no-such-device"]},
        {"name": "x", "location": LOCATION},
        {"name": "x", "location": LOCATION, "vendor": "Nobody"},
        {"name": "x", "location": LOCATION, "stations": [ids["Bay 1"]], "batch_size": 0},
        {"name": "x", "location": LOCATION, "stations": [ids["Bay 1"]], "version": "no digits"},
        {"name": "", "location": LOCATION, "stations": [ids["Bay 1"]]},
    ]
    for data in bad:
        with pytest.raises(ServiceValidationError):
            await firmware(hub, "start_campaign", data)
    with pytest.raises(HubError, match="no firmware campaign"):
        await firmware(hub, "pause", {"campaign_id": "nope"})
    # By vendor and model; a station already at the target version is skipped.
    started = await firmware(
        hub,
        "start_campaign",
        {"name": "x", "location": LOCATION, "vendor": "EVHUB", "model": "simulator"},
    )
    assert started["progress"]["total"] == 2
    with pytest.raises(ServiceValidationError, match="already in campaign"):
        await firmware(
            hub, "start_campaign", {"name": "y", "location": LOCATION, "vendor": "evhub"}
        )
    await in_state(hub, started["id"], "completed")
    again = await firmware(
        hub,
        "start_campaign",
        {"name": "z", "location": LOCATION, "vendor": "evhub", "version": "1.0.1"},
    )
    assert again["state"] == "completed"
    assert again["progress"]["skipped"] == 2


async def test_minimum_version_flags_a_station_and_raises_an_alert(
    site: Site, fleet: Fleet, ocpp_charge_point: Connect, api_user: ApiUser
) -> None:
    """Below the minimum: the compliance sensor says so and an alert is open; at or above
    (a vendor suffix counts as the release) it is ok and the alert resolved."""
    hub = await site.start(FIRMWARE, stations=3)
    await fleet(site.base_url, ["CP-1"], firmware_version="1.0.1-evhub2")
    acme = await ocpp_charge_point(f"{site.base_url}/CP-2")
    await boot16(acme, vendor="ACME", model="DC50")  # 1.0.0 < ACME's 2.4.1
    other = await ocpp_charge_point(f"{site.base_url}/CP-3")
    await boot16(other, vendor="Other", model="X")  # no minimum

    async def sensor(name: str) -> Any:
        return await until(lambda: hub.states.get(f"sensor.bay_{name}_firmware_compliance"))

    assert (await sensor("1")).state == "ok"
    flagged = await sensor("2")
    assert flagged.state == "below_minimum"
    assert flagged.attributes["firmware"] == "1.0.0"
    assert flagged.attributes["minimum"] == "2.4.1"
    assert (await sensor("3")).state == "no_minimum"
    found = await firmware(hub, "inventory")
    assert [row["name"] for row in found["below_minimum"]] == ["Bay 2"]

    token = await api_user(hub, "viewer")

    async def alerts() -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{http_url(hub)}/api/alerts",
                headers={"Authorization": f"Bearer {token}"},
            ) as response,
        ):
            assert response.status == 200
            result: list[dict[str, Any]] = await response.json()
            return [a for a in result if a["key"].startswith("firmware_below_minimum")]

    (alert,) = await until(alerts)
    assert alert["state"] == "open"
    assert "Bay 2" in alert["title"]

    # The station reboots with a newer firmware (a vendor build of 2.4.1 counts).
    await acme.call(
        "BootNotification",
        {"chargePointVendor": "ACME", "chargePointModel": "DC50", "firmwareVersion": "v2.4.1.7"},
    )
    await until(lambda: hub.states.get("sensor.bay_2_firmware_compliance").state == "ok")
    (alert,) = await until(
        lambda: _resolved(alerts),
    )
    assert alert["state"] == "resolved"


async def _resolved(alerts: Callable[[], Any]) -> list[dict[str, Any]] | None:
    found = await alerts()
    return found if found and all(a["state"] == "resolved" for a in found) else None


async def test_roles(site: Site, fleet: Fleet, api_user: ApiUser) -> None:
    """A viewer reads the inventory and campaigns; only an admin starts one."""
    hub = await site.start(FIRMWARE, stations=1)
    await fleet(site.base_url, ["CP-1"])
    ids = await stations(hub)
    base = http_url(hub)
    data = {"name": "x", "location": LOCATION, "stations": [ids["Bay 1"]]}
    async with aiohttp.ClientSession() as session:
        for role, service, body, status in (
            ("viewer", "inventory", {}, 200),
            ("viewer", "campaigns", {}, 200),
            ("viewer", "start_campaign", data, 403),
            ("operator", "start_campaign", data, 403),
            ("admin", "start_campaign", data, 200),
        ):
            token = await api_user(hub, role)
            async with session.post(
                f"{base}/api/services/firmware/{service}",
                json={"data": body},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == status, (role, service, await response.text())


async def test_a_damaged_store_loses_only_what_is_damaged(site: Site, fleet: Fleet) -> None:
    """Campaigns on disk that do not read are reported and left out; the good one goes on."""
    import json

    hub = await site.start(FIRMWARE, stations=1)
    await fleet(site.base_url, ["CP-1"])
    ids = await stations(hub)
    good = await firmware(
        hub, "start_campaign", {"name": "good", "location": LOCATION, "stations": [ids["Bay 1"]]}
    )
    await in_state(hub, good["id"], "completed")
    await site.stop(hub)
    path = site.directory / ".storage" / "firmware.campaigns"
    document = json.loads(path.read_text())
    document["data"]["campaigns"] += [
        "nonsense",
        {**document["data"]["campaigns"][0], "id": "bad1", "batch_size": "x"},
        {**document["data"]["campaigns"][0], "id": "bad2", "state": "exploded"},
        {"id": "bad3"},
    ]
    path.write_text(json.dumps(document))
    hub = await site.start(FIRMWARE, stations=1)
    listed = await firmware(hub, "campaigns")
    assert [c["id"] for c in listed["campaigns"]] == [good["id"]]
    assert listed["campaigns"][0]["state"] == "completed"


CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ\n-----END CERTIFICATE-----\n"
SIGNATURE = "MEUCIQDx2v3Yf5m0q0Zb7Yl8pQ=="


async def test_a_signed_campaign(site: Site, fleet: Fleet) -> None:
    """A signed firmware reaches a 1.6 station as SignedUpdateFirmware and a 2.0.1 one as
    UpdateFirmware with its signature; both verify it and come back with the new version."""
    hub = await site.start(FIRMWARE, stations=2)
    sims = await fleet(site.base_url, IDS[:2])
    ids = await stations(hub)
    data = {"name": "signed", "location": LOCATION, "stations": [ids["Bay 1"], ids["Bay 2"]]}
    with pytest.raises(ServiceValidationError, match="needs both"):
        await firmware(hub, "start_campaign", {**data, "signature": SIGNATURE})
    with pytest.raises(ServiceValidationError, match="PEM"):
        await firmware(
            hub, "start_campaign", {**data, "signature": SIGNATURE, "signing_certificate": "x"}
        )
    started = await firmware(
        hub,
        "start_campaign",
        {**data, "signing_certificate": CERTIFICATE, "signature": SIGNATURE},
    )
    assert started["signed"] is True
    assert "signature" not in started
    done = await in_state(hub, started["id"], "completed")
    assert done["progress"]["done"] == 2
    v16, v201 = sims
    (signed16,) = [p for name, p in v16.received_calls if name == "SignedUpdateFirmware"]
    assert signed16["firmware"]["signature"] == SIGNATURE
    (signed201,) = [p for name, p in v201.received_calls if name == "UpdateFirmware"]
    assert signed201["firmware"]["signingCertificate"] == CERTIFICATE
    updates = await hub.services.call(
        "ocpp", "get_firmware_updates", {}, target={"device_id": ids["Bay 2"]}
    )
    (request,) = updates["requests"].values()
    assert "SignatureVerified" in [status for status, _at in request["history"]]
