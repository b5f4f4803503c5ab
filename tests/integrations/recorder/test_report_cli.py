"""`evhub report uptime` reads the recorder's database, SQLite or PostgreSQL, hub stopped."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from hub.const import EVENT_OUTAGE
from hub.core import Context

from .conftest import StartHub

T0 = datetime(2026, 7, 31, 23, 0, tzinfo=UTC).timestamp()


async def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", "report", "uptime", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    return await asyncio.get_running_loop().run_in_executor(None, run)


async def test_report_from_either_database(start_hub: StartHub, tmp_path: Path) -> None:
    hub, recorder = await start_hub(hub={"time_zone": "UTC"}, uptime=False)
    hub.bus.fire(
        "charger_event",
        {
            "kind": "status",
            "station_id": "st1",
            "device_id": "p1",
            "port": 1,
            "status": "Faulted",
            "previous": None,
            "error_code": "GroundFailure",
            "time": T0,
        },
        Context(),
    )
    hub.bus.fire(
        EVENT_OUTAGE,
        {
            "outage_id": "o1",
            "port_id": "p1",
            "station_id": "st1",
            "start": T0,
            "end": T0 + 90 * 60,
            "cause": "faulted",
        },
    )
    await recorder.flush()
    await hub.stop()

    result = await run_report(
        "--from", "2026-07-31", "--to", "2026-08-01", "--config", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split(",") for line in result.stdout.splitlines()]
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    [port] = [r for r in records if r["record"] == "port"]
    # In service from 23:00 on 31 July to the end of 1 August: 25 h, 90 minutes down.
    assert (port["window_min"], port["t_outage_min"]) == ("1500", "90")
    assert port["uptime_percent"] == f"{(1500 - 90) / 1500 * 100:.4f}"
    [outage] = [r for r in records if r["record"] == "outage"]
    assert (outage["cause"], outage["duration_min"]) == ("faulted", "90")
