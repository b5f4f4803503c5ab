"""Uptime after SIGKILL: outages keep their length, absent chargers count as offline."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hub.bootstrap import new_hub
from integrations.recorder import get_recorder
from integrations.uptime import engine_of
from tests.hub_process import free_port, kill, open_charger, start_hub, wait_port
from tests.integrations.ocpp.conftest import RawChargePoint


def write_config(directory: Path, port: int, extra: str = "") -> None:
    directory.joinpath("configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        "ocpp:\n"
        "  listeners:\n"
        f"    - {{port: {port}, host: 127.0.0.1, security_profile: 0}}\n"
        "  heartbeat_interval: 30\n"
        "  unknown_chargers: accept\n"
        "uptime:\n  offline_grace: 2\n" + extra
    )


async def boot(cp: RawChargePoint) -> None:
    await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )


async def test_an_outage_begun_just_before_a_crash_keeps_its_length(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, port)
    child = await start_hub(tmp_path)
    try:
        await wait_port(port)
        cp = await open_charger(port, "CP-1")
        await boot(cp)
        # Well past the hub's start (its minute tick saved "alive" then), the port faults.
        await asyncio.sleep(2)
        faulted_at = time.time()
        await cp.call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"},
        )
        await asyncio.sleep(4)
        killed_at = time.time()
        await kill(child)
        await cp.close()
    finally:
        await kill(child)

    hub = new_hub(tmp_path)
    await hub.start()
    try:
        cp = await open_charger(port, "CP-1")
        try:
            # Repaired while the hub was down: the outage ends at the last moment alive.
            await boot(cp)
            await hub.block_till_done()
        finally:
            await cp.close()
        recorder = get_recorder(hub)
        await recorder.flush()
        [outage] = [
            row for row in await recorder.outages(0, time.time() + 1) if row["cause"] == "faulted"
        ]
        assert abs(outage["start"] - faulted_at) < 1.0
        # It lasted until the crash (within the second the alive mark may lag), not 0 s.
        assert killed_at - 1.5 <= outage["end"] <= killed_at + 0.5
    finally:
        await hub.stop()


async def test_an_accepted_charger_that_never_returns_counts_offline(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, port)
    child = await start_hub(tmp_path)
    try:
        await wait_port(port)
        cp = await open_charger(port, "STRANGER")
        await boot(cp)
        await asyncio.sleep(1.5)
        await kill(child)
        await cp.close()
    finally:
        await kill(child)

    hub = new_hub(tmp_path)
    await hub.start()
    try:
        # Not connected: offline at once, not "online" from the restored states.
        assert hub.states.get("sensor.stranger_connectivity").state == "offline"
        engine = engine_of(hub)
        for _ in range(100):
            if engine.open_outages():
                break
            await asyncio.sleep(0.1)
        [outage] = engine.open_outages()
        assert outage.cause == "offline"
    finally:
        await hub.stop()
