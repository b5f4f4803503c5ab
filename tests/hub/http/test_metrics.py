"""/metrics from a real OCPP charger: stations and ports by id and by name (escaped as the
Prometheus text format says), their status, power, energy and sessions, and the station
figures of the uptime and charge success integrations as metrics of their own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hub.clock import ManualClock, use_manual_clock
from hub.core import Hub
from hub.registry import DeviceKind, device_registry
from hub.testing import Connect
from tests.hub.http.conftest import Api, api_of, configured_hub
from tests.integrations.ocpp.conftest import (  # noqa: F401 - the fixture
    connect,
    meter_values,
    ocpp_config,
    start_transaction,
    wait_state,
    ws_url,
)

# A name with every character the text format escapes: a quote, a backslash, a newline.
NAME = 'Bay "7" \\ north\nrow 2'
EXTRA = ocpp_config(
    """
    id_tags: [TAG-1]
    chargers:
      - {id: CP-A, name: "Bay \\"7\\" \\\\ north\\nrow 2", site: Depot}
    """
)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Api, ManualClock]]:
    """A hub on a manual clock (the uptime figures are computed every minute)."""
    hub = configured_hub(tmp_path, extra=EXTRA)
    manual = use_manual_clock(hub, time.time())
    await hub.start()
    yield await api_of(hub), manual
    await hub.stop()


async def scrape(api: Api) -> tuple[str, dict[str, list[Sample]]]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{api.url}/metrics", headers=api.headers("admin")) as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        families.setdefault(family.name, []).extend(family.samples)
    return text, families


def station_and_port(hub: Hub) -> tuple[str, str]:
    devices = device_registry(hub)
    station = next(d for d in devices.devices(kind=DeviceKind.STATION) if d.integration == "ocpp")
    port = next(d for d in devices.descendants(station.id) if d.kind is DeviceKind.CONNECTOR)
    return station.id, port.id


async def test_stations_and_ports_by_id_and_name(
    api: tuple[Api, ManualClock],
    connect: Connect,  # noqa: F811
) -> None:
    api, manual = api
    hub = api.hub
    cp = await connect(ws_url(hub, "CP-A"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    for status in ("Available", "Preparing"):
        await cp.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status}
        )
    transaction_id = await start_transaction(cp, meter_start=1000)
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
    )
    await meter_values(cp, 7400, 12345, transaction_id=transaction_id)
    await manual.advance(61)
    station_id, port_id = station_and_port(hub)
    port_name = device_registry(hub).get(port_id).name  # type: ignore[union-attr]
    assert port_name
    for _ in range(100):
        text, families = await scrape(api)
        if families.get("evhub_port_energy_wh") and families.get("evhub_station_uptime_percent"):
            break
        await asyncio.sleep(0.05)
    station = {"station_id": station_id, "name": NAME}
    port = {"device_id": port_id, "port_name": port_name, **station}

    def value(family: str, **labels: str) -> float:
        found = [s.value for s in families[family] if s.labels == labels]
        assert len(found) == 1, (family, labels, families.get(family))
        return found[0]

    assert value("evhub_charger_online", charge_point_id="CP-A", **station) == 1.0
    assert value("evhub_port_status", status="Charging", **port) == 1.0
    assert value("evhub_port_power_watts", **port) == 7400.0
    assert value("evhub_port_energy_wh", **port) == 12345.0
    assert value("evhub_station_power_watts", **station) == 7400.0
    assert value("evhub_station_energy_wh", **station) == 12345.0
    assert value("evhub_station_sessions_active", **station) == 1.0
    # The text itself escapes the name as the exposition format says.
    assert 'name="Bay \\"7\\" \\\\ north\\nrow 2"' in text
    # The uptime integration's figures: per port with its names, per station on their own.
    uptime_entities = [s.labels["entity_id"] for s in families["evhub_port_uptime_percent"]]
    assert len(uptime_entities) == 1
    assert value("evhub_port_uptime_percent", entity_id=uptime_entities[0], **port) == 100.0
    assert value("evhub_station_uptime_percent", **station) == 100.0
    assert value("evhub_station_cec_uptime_percent", **station) == 100.0
    assert value("evhub_station_outage_minutes", **station) == 0.0
    # The charge success integration's station figures carry the same labels.
    for _ in range(100):
        _text, families = await scrape(api)
        if families.get("evhub_charge_attempts_total"):
            break
        await asyncio.sleep(0.05)
    assert any(s.labels == station for s in families["evhub_charge_attempts_total"])

    # Offline: the charger's gauge drops, its names stay.
    await cp.close()
    for _ in range(100):
        _text, families = await scrape(api)
        if value("evhub_charger_online", charge_point_id="CP-A", **station) == 0.0:
            break
        await asyncio.sleep(0.05)
    assert value("evhub_charger_online", charge_point_id="CP-A", **station) == 0.0
