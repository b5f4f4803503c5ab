"""A charger's identity survives the hub being killed moments after its first contact.

`evhub run` runs as a real process; a charger it has never seen connects over a real
websocket, the hub is killed with SIGKILL well inside the registries' 10 s snapshot delay, and
started again: the charger keeps its device id and its entity ids (no ``_2``). Temporary files
of store writes cut short are gone after the restart, and nothing else is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.hub_process import ROOT, free_port, start_hub, wait_port
from tests.integrations.ocpp.conftest import RawChargePoint

EVHUB = [sys.executable, "-m", "hub.cli"]
PASSWORD = "correct horse battery"
CP_ID = "CP-NEW"
NOW = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_config(directory: Path, http_port: int, ocpp_port: int) -> None:
    directory.joinpath("configuration.yaml").write_text(
        f"http:\n  server_host: 127.0.0.1\n  server_port: {http_port}\n  zeroconf: false\n"
        "ocpp:\n"
        "  listeners:\n"
        f"    - {{port: {ocpp_port}, host: 127.0.0.1, security_profile: 0}}\n"
        "  unknown_chargers: accept\n"
        "  heartbeat_interval: 30\n"
    )


@contextlib.asynccontextmanager
async def running_hub(
    config_dir: Path, http_port: int, ocpp_port: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`evhub run` on config_dir; killed on the way out if the test did not stop it."""
    log = config_dir.joinpath("evhub.log").open("ab")
    child = await start_hub(config_dir, log_level="info", stderr=log)
    try:
        await wait_port(http_port, child=child)
        await wait_port(ocpp_port, child=child)
        yield child
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        log.close()


@contextlib.asynccontextmanager
async def api_session(http_port: int) -> AsyncIterator[aiohttp.ClientSession]:
    """A logged-in admin session (the cookie jar must accept cookies of an IP host)."""
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{http_port}", cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        response = await session.post(
            "/api/auth/login", json={"username": "ada", "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        yield session


async def station(session: aiohttp.ClientSession) -> dict[str, Any]:
    """The charger as /api/chargers shows it: ids of its device, ports and entities."""
    response = await session.get("/api/chargers")
    assert response.status == 200, await response.text()
    found = [item for item in await response.json() if item["charge_point_id"] == CP_ID]
    assert len(found) == 1, found
    item: dict[str, Any] = found[0]
    return {
        "device_id": item["device_id"],
        "vendor": item["vendor"],
        "entities": item["entities"],
        "ports": [
            {"device_id": port["device_id"], "entities": port["entities"]} for port in item["ports"]
        ],
    }


async def first_contact(ocpp_port: int) -> RawChargePoint:
    """The charger connects, boots and reports: its device, port and entities are made."""
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(
            f"ws://127.0.0.1:{ocpp_port}/ocpp/{CP_ID}", protocols=("ocpp1.6",)
        )
    except BaseException:
        await session.close()
        raise
    cp = RawChargePoint(session, ws)
    boot = await cp.call(
        "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "DC50"}
    )
    assert boot["status"] == "Accepted"
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    sample = {"value": "1234", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    await cp.call(
        "MeterValues",
        {"connectorId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": [sample]}]},
    )
    return cp


def assert_kept(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Same device ids, and every entity known before under the same id (more may come)."""
    assert after["device_id"] == before["device_id"]
    assert [port["device_id"] for port in after["ports"]] == [
        port["device_id"] for port in before["ports"]
    ]
    pairs = [(before["entities"], after["entities"])] + [
        (old["entities"], new["entities"])
        for old, new in zip(before["ports"], after["ports"], strict=True)
    ]
    for old_entities, new_entities in pairs:
        assert {key: new_entities.get(key) for key in old_entities} == old_entities


def snapshot_devices(config_dir: Path) -> list[str]:
    path = config_dir.joinpath(".storage", "core.device_registry")
    if not path.exists():
        return []
    return [device["id"] for device in json.loads(path.read_text())["data"]["devices"]]


async def test_new_charger_keeps_its_identity_across_a_sigkill(tmp_path: Path) -> None:
    adding = await asyncio.create_subprocess_exec(
        *EVHUB,
        *("user", "add", "ada", "--role", "admin", "--password-stdin", "-c", str(tmp_path)),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(adding.communicate(PASSWORD.encode() + b"\n"), 60)
    assert adding.returncode == 0, err
    http_port, ocpp_port = free_port(), free_port()
    write_config(tmp_path, http_port, ocpp_port)

    async with (
        running_hub(tmp_path, http_port, ocpp_port) as child,
        api_session(http_port) as api,
    ):
        contact = time.monotonic()
        cp = await first_contact(ocpp_port)
        try:
            before = await station(api)
            # The station's identity was fsync'd before its boot was Accepted; the port's
            # entities, made by later messages, reach the OS within a loop iteration.
            await asyncio.sleep(0.3)
            os.kill(child.pid, signal.SIGKILL)
            killed_after = time.monotonic() - contact
            await child.wait()
        finally:
            await cp.close()
    assert child.returncode == -signal.SIGKILL
    # Well inside the registries' snapshot delay: only the journal can have the identity.
    assert killed_after < 5, killed_after
    assert before["device_id"] not in snapshot_devices(tmp_path)
    assert len(before["ports"]) == 1
    assert {"connectivity", "boot_reason"} <= set(before["entities"])
    assert before["vendor"] == "ACME"
    assert "energy" in before["ports"][0]["entities"]

    # Writes a crash cut short left temporary files; only the stores' own go at start.
    storage = tmp_path.joinpath(".storage")
    stale = [".core.auth.k2j4_x9q.tmp", ".core.device_registry.abcdefgh.tmp"]
    foreign = [".core.auth.backup.tmp", "notes.tmp", ".mine.abcdefgh.tmp"]
    for name in stale + foreign:
        storage.joinpath(name).write_bytes(b"{" * 4096)

    async with running_hub(tmp_path, http_port, ocpp_port) as child:
        async with api_session(http_port) as api:
            # Before the charger is back: the registry alone knows it, ports included.
            assert_kept(before, await station(api))
            cp = await first_contact(ocpp_port)
            try:
                assert_kept(before, await station(api))
            finally:
                await cp.close()
        child.send_signal(signal.SIGTERM)
        await asyncio.wait_for(child.wait(), 60)
    assert child.returncode == 0
    ours = [
        *before["entities"].values(),
        *(eid for port in before["ports"] for eid in port["entities"].values()),
    ]
    # The snapshot of the clean stop: every entity the hub knows, none of them a duplicate.
    registry = json.loads(storage.joinpath("core.entity_registry").read_text())
    entity_ids = [entity["entity_id"] for entity in registry["data"]["entities"]]
    assert set(ours) <= set(entity_ids)
    assert [eid for eid in entity_ids if eid.endswith("_2")] == []
    left = set(os.listdir(storage))
    assert not left & set(stale)
    assert set(foreign) <= left
