"""A hub recording under load is killed with SIGKILL: after a restart the database holds every
row older than a second before the kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from hub.bootstrap import new_hub
from integrations.recorder import get_recorder
from tests import hub_process
from tests.hub_process import free_port, open_charger, wait_port
from tests.integrations.ocpp.conftest import RawChargePoint

from .conftest import StartHub

HISTORY_BOUND_S = 1.0  # the README's promise: a crash loses less than a second of history

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from hub.charger import fire_charger_event
    from hub.bootstrap import new_hub

    async def main():
        hub = new_hub(sys.argv[1])
        await hub.start()
        print("ready", flush=True)
        i = 0
        while True:
            for _ in range(20):
                hub.states.set("sensor.counter", str(i), {"n": i % 7}, timestamp=time.time())
                if i % 100 == 0:
                    fire_charger_event(hub, "session_started", station_id="st1",
                        data={"transaction_id": i, "started_at": time.time()})
                i += 1
            await asyncio.sleep(0.005)

    asyncio.run(main())
    """
)


async def test_sigkill_loses_at_most_about_a_second(
    start_hub: StartHub, db_url: str | None, tmp_path: Path
) -> None:
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    section: dict[str, object] = {"commit_interval": 1}  # the default
    if db_url is not None:
        section["db_url"] = db_url
    child_dir.joinpath("configuration.yaml").write_text(
        yaml.safe_dump(
            {"http": {"server_host": "127.0.0.1", "server_port": 0}, "recorder": section}
        )
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(child_dir), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"ready"
    await asyncio.sleep(3.5)  # let it record under load for a while
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()

    _hub, recorder = await start_hub(config_dir=child_dir)
    rows = (await recorder.history(["sensor.counter"], 0, killed_at + 10))["sensor.counter"]
    values = [int(row["state"]) for row in rows]
    # Nothing missing in between: the committed rows are exactly 0..n-1.
    assert values == list(range(len(values)))
    assert len(values) > 1000
    newest = rows[-1]["last_updated"]
    assert newest >= killed_at - HISTORY_BOUND_S, f"lost {killed_at - newest:.2f} s of history"
    sessions = await recorder.sessions(0, killed_at + 10, ["st1"])
    assert (
        sorted(int(s["transaction_id"]) for s in sessions)
        == list(range(0, len(values), 100))[: len(sessions)]
    )
    assert len(sessions) >= len(values) // 100


# The load of issue 10: ~3,000 state changes/s from OCPP chargers over real websockets (each
# MeterValues below changes 11 entities), into a hub running as `evhub run`.
LOAD_CHARGERS = 20
METER_VALUES_PER_S = 300
LOAD_S = 8.0
SETTLE_S = 2.0


def iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def sample(value: float, measurand: str, unit: str, phase: str | None = None) -> dict[str, str]:
    found = {"value": f"{value:.3f}", "measurand": measurand, "unit": unit}
    if phase is not None:
        found["phase"] = phase
    return found


async def meter_forever(cp: RawChargePoint, period: float) -> None:
    """Boot, start a transaction, then send MeterValues every period seconds."""
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "DC50"})
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    start = {"connectorId": 1, "idTag": "TAG-OK", "meterStart": 0, "timestamp": iso_now()}
    tx_id = (await cp.call("StartTransaction", start))["transactionId"]
    loop = asyncio.get_running_loop()
    due = loop.time()
    k = 0
    while True:
        k += 1
        values = [
            sample(k, "Energy.Active.Import.Register", "Wh"),
            sample(7000 + k % 50, "Power.Active.Import", "W"),
            sample(k % 100, "SoC", "Percent"),
        ]
        for phase in ("L1", "L2", "L3"):
            values.append(sample(16 + k % 7 / 10, "Current.Import", "A", phase))
            values.append(sample(230 + k % 5 / 10, "Voltage", "V", phase))
        await cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx_id,
                "meterValue": [{"timestamp": iso_now(), "sampledValue": values}],
            },
        )
        due += period
        await asyncio.sleep(max(0.0, due - loop.time()))


class NewestRow:
    """Reads the newest committed state's time from the database, as another process would."""

    def __init__(self, directory: Path, db_url: str | None) -> None:
        self.path = directory / "evhub.db"
        self.db_url = db_url
        self._pg: asyncpg.Connection | None = None

    async def __call__(self) -> float | None:
        sql = "SELECT MAX(last_updated_ts) FROM states"
        if self.db_url is None:
            if not self.path.exists():
                return None

            def read() -> Any:
                with contextlib.closing(
                    sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
                ) as conn:
                    return conn.execute(sql).fetchone()[0]

            return await asyncio.to_thread(read)
        if self._pg is None:
            self._pg = await asyncpg.connect(self.db_url)
        try:
            return await self._pg.fetchval(sql)  # type: ignore[no-any-return]
        except asyncpg.UndefinedTableError:
            return None

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()


async def test_sigkill_under_ocpp_load_loses_less_than_a_second(
    tmp_path: Path, db_url: str | None
) -> None:
    """At ~3,000 changes/s, at no moment is more than a second of history uncommitted, and a
    SIGKILL loses less than a second."""
    ocpp_port = free_port()
    chargers = [{"id": f"CP-{i}", "name": f"Bay {i}"} for i in range(LOAD_CHARGERS)]
    config: dict[str, Any] = {
        "http": {"server_host": "127.0.0.1", "server_port": 0, "zeroconf": False},
        "ocpp": {
            "listeners": [{"port": ocpp_port, "host": "127.0.0.1", "security_profile": 0}],
            "heartbeat_interval": 60,
            "id_tags": ["TAG-OK"],
            "chargers": chargers,
        },
    }
    if db_url is not None:
        config["recorder"] = {"db_url": db_url}
    tmp_path.joinpath("configuration.yaml").write_text(yaml.safe_dump(config))
    child = await hub_process.start_hub(tmp_path)
    newest = NewestRow(tmp_path, db_url)
    exposures: list[float] = []
    clients: list[RawChargePoint] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await wait_port(ocpp_port)
        for charger in chargers:
            cp = await open_charger(ocpp_port, charger["id"])
            clients.append(cp)
            tasks.append(asyncio.create_task(meter_forever(cp, LOAD_CHARGERS / METER_VALUES_PER_S)))
        await asyncio.sleep(SETTLE_S)
        # How much history a kill at each moment would lose: now minus the newest row on disk.
        loop = asyncio.get_running_loop()
        until = loop.time() + LOAD_S
        while loop.time() < until:
            found = await newest()
            if found is not None:
                exposures.append(time.time() - found)
            await asyncio.sleep(0.05)
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for cp in clients:
            await cp.close()
    assert child.returncode == -signal.SIGKILL

    # What the database holds after the kill, read by a new hub on the same config dir.
    del config["ocpp"]
    tmp_path.joinpath("configuration.yaml").write_text(yaml.safe_dump(config))
    hub = new_hub(tmp_path)
    await hub.start()
    try:
        recorder = get_recorder(hub)
        (last,) = await recorder.backend.fetch("SELECT MAX(last_updated_ts) FROM states")
        window = await recorder.backend.fetch(
            "SELECT count(*) FROM states WHERE last_updated_ts > ?", [last[0] - 4]
        )
    finally:
        await hub.stop()
        await newest.close()
    rate = window[0][0] / 4
    lost = killed_at - last[0]
    exposures.sort()
    print(
        f"\n{rate:,.0f} changes/s; lost at the kill {lost:.3f} s; exposure over"
        f" {len(exposures)} reads: p50 {exposures[len(exposures) // 2]:.3f} s,"
        f" max {exposures[-1]:.3f} s"
    )
    assert rate > 2000, "too little load"
    assert lost < HISTORY_BOUND_S, f"lost {lost:.3f} s of history at the kill"
    assert exposures[-1] < HISTORY_BOUND_S, f"{exposures[-1]:.3f} s of history uncommitted"
