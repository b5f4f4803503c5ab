"""One bad row never stops the recorder (issue 10), on SQLite and PostgreSQL.

A row a column cannot hold (an integer beyond the column, inf/NaN, a lone surrogate, NUL on
PostgreSQL) or that the database refuses is logged, counted in /metrics and skipped; the
rest of its batch commits and history goes on. A database that cannot be written shows the
recorder failed in /api/health, and ok again once it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import resource
import secrets
import signal
import sqlite3
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

from hub.bootstrap import new_hub
from hub.charger import EVENT_CHARGER, fire_charger_event
from hub.core import Context, Hub, State
from hub.http import DATA_HTTP
from integrations.recorder import Recorder, get_recorder
from integrations.recorder.backend import KIND_PORT_STATUS, KIND_SESSION, Batch
from tests.integrations.ocpp.conftest import ChargerCallError, RawChargePoint, ws_url

from .conftest import PgServer, StartHub

HTTP_OPEN = {"server_host": "127.0.0.1", "server_port": 0, "metrics_open": True}
BIG_INTEGERS = (2**31, 2**63, -(2**63) - 1, 2**64)


async def get_json(hub: Hub, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{hub.data[DATA_HTTP].url}{path}") as response,
    ):
        return response.status, await response.json()


async def skipped_in_metrics(hub: Hub) -> dict[tuple[str, str], float]:
    """evhub_recorder_rows_skipped_total by (table, reason), as /metrics shows it."""
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{hub.data[DATA_HTTP].url}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    found: dict[tuple[str, str], float] = {}
    prefix = "evhub_recorder_rows_skipped_total{"
    for line in text.splitlines():
        if line.startswith(prefix):
            labels, value = line[len(prefix) :].split("} ")
            parts = dict(part.split("=", 1) for part in labels.split(","))
            found[(parts["table"].strip('"'), parts["reason"].strip('"'))] = float(value)
    return found


async def rows(recorder: Recorder, sql: str) -> list[tuple[Any, ...]]:
    return await recorder.backend.fetch(sql)


async def test_rows_no_column_can_hold_are_skipped_and_the_rest_commits(
    start_hub: StartHub, db_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    hub, recorder = await start_hub(http=HTTP_OPEN)
    await recorder.flush()
    postgres = db_url is not None
    caplog.set_level(logging.WARNING, "integrations.recorder")
    t0 = time.time()
    # All in one go, without yielding to the loop: one batch, good and bad rows mixed.
    hub.states.set("sensor.good_1", "1")
    hub.states.set("sensor.nul", "a\x00b")
    hub.states.set("sensor.surrogate", "\ud800")
    hub.states.set("sensor.inf_time", "1", timestamp=math.inf)
    hub.states.set("sensor.nan_time", "1", timestamp=math.nan)
    hub.states.set("sensor.odd_attributes", "1", {"n": 2**70, "text": "\udc80", "nul": "\x00"})
    hub.states.set("sensor.good_2", "2")
    hub.bus.fire("probe", {"seq": 1, "n": 2**64 + 1, "text": "\ud83d"})
    hub.bus.fire("probe", {"seq": 2}, context=Context(user_id="\ud800"))
    hub.bus.fire("probe", {"seq": 3})
    # Straight onto the bus: fire_charger_event refuses a negative port at the door, and the
    # recorder must hold whatever reaches it anyway.
    for i, port in enumerate(BIG_INTEGERS):
        where = {"station_id": "st-bad", "device_id": f"st-bad-{i}", "port": port}
        hub.bus.fire(
            EVENT_CHARGER,
            {"kind": "session_started", "transaction_id": f"big-{i}", "started_at": t0, **where},
        )
        hub.bus.fire(EVENT_CHARGER, {"kind": "status", "status": "Available", **where})
    ended = {"started_at": t0, "stopped_at": t0 + 1}
    for transaction_id, change in (
        ("inf", {"energy_wh": math.inf}),
        ("nan", {"peak_power_w": math.nan}),
        ("huge", {"stopped_at": 10**400}),
        ("nul", {"id_tag": "TAG\x00"}),
    ):
        data = {"transaction_id": transaction_id, **ended, **change}
        # Straight onto the bus: fire_charger_event refuses a NaN at the door, and the
        # recorder must hold whatever reaches it anyway.
        hub.bus.fire(
            EVENT_CHARGER,
            {"kind": "session_ended", "station_id": "st-bad", "device_id": "st-bad", **data},
        )
    fire_charger_event(
        hub,
        "session_started",
        station_id="st-good",
        device_id="st-good-1",
        data={"transaction_id": "1", "port": 1, "started_at": t0},
    )
    fire_charger_event(
        hub,
        "status",
        station_id="st-good",
        device_id="st-good-1",
        data={"port": 1, "status": "Charging"},
    )
    await recorder.flush()

    # The good rows of the batch are in the database.
    history = await recorder.history(None, t0 - 1, t0 + 60)
    assert [row["state"] for row in history["sensor.good_1"]] == ["1"]
    assert [row["state"] for row in history["sensor.good_2"]] == ["2"]
    # Attributes are JSON: what JSON cannot hold is kept as text.
    assert history["sensor.odd_attributes"][0]["attributes"] == {
        "n": str(2**70),
        "text": "\\udc80",
        "nul": "\x00",
    }
    kept_nul = not postgres  # SQLite keeps NUL in text, PostgreSQL cannot
    assert ("sensor.nul" in history) is kept_nul
    for entity_id in ("sensor.surrogate", "sensor.inf_time", "sensor.nan_time"):
        assert entity_id not in history
    probes = [event["data"] for event in await recorder.events(["probe"], t0 - 1, t0 + 60)]
    assert probes == [{"seq": 1, "n": str(2**64 + 1), "text": "\\ud83d"}, {"seq": 3}]
    sessions = await rows(recorder, "SELECT station_id, transaction_id, port FROM sessions")
    # 2^31 fits SQLite's 64-bit INTEGER, not PostgreSQL's INTEGER.
    expected = {("st-good", "1", 1)} | ({("st-bad", "nul", None)} if kept_nul else set())
    if not postgres:
        expected.add(("st-bad", "big-0", 2**31))
    assert set(sessions) == expected
    statuses = await rows(recorder, "SELECT port_id, port, status FROM port_status")
    expected_status = {("st-good-1", 1, "Charging")}
    if not postgres:
        expected_status.add(("st-bad-0", 2**31, "Available"))
    assert set(statuses) == expected_status

    # Each skipped row is counted in /metrics by table and reason, and logged once.
    out_of_range = 3 + (1 if postgres else 0)
    expected_counts = {
        ("states", "not_finite"): 2.0,
        ("states", "bad_text"): 1.0 + (1 if postgres else 0),
        ("events", "bad_text"): 1.0,
        ("sessions", "out_of_range"): out_of_range + 1.0,  # and stopped_at 10**400
        ("sessions", "not_finite"): 2.0,
        ("port_status", "out_of_range"): float(out_of_range),
    }
    if postgres:
        expected_counts[("sessions", "bad_text")] = 1.0
    assert await skipped_in_metrics(hub) == expected_counts
    logged = [r.getMessage() for r in caplog.records if "Recorder skipped a" in r.getMessage()]
    assert len(logged) == sum(expected_counts.values())
    assert any(
        "sessions row" in line and "out_of_range" in line and "port: 9223372036854775808" in line
        for line in logged
    )

    # History goes on, and the recorder is healthy: it skipped rows, it did not stop.
    hub.states.set("sensor.good_1", "after")
    await recorder.flush()
    after = await recorder.history(["sensor.good_1"], t0 - 1)
    assert [row["state"] for row in after["sensor.good_1"]] == ["1", "after"]
    status, body = await get_json(hub, "/api/health")
    assert (status, body["status"]) == (200, "ok")
    assert body["integrations"]["recorder"]["state"] == "loaded"
    assert recorder.failures == 0


async def test_rows_the_database_refuses_are_found_and_skipped(
    start_hub: StartHub, db_url: str | None
) -> None:
    hub, recorder = await start_hub(http=HTTP_OPEN)
    await recorder.flush()
    t0 = time.time()
    # Rows the checks pass but the database refuses: a NULL port_id (NOT NULL) among good
    # rows of every kind, in one batch handed to the backend.
    now = State("sensor.fine", "1", last_changed_ts=t0)
    skipped = await recorder.backend.write(
        Batch(
            [now, ("fine", "{}", "local", t0, None, None)],
            [
                (KIND_PORT_STATUS, (t0, "st", "st-1", 1, "Available", None, None, None)),
                (KIND_PORT_STATUS, (t0, "st", None, 2, "Available", None, None, None)),
                (
                    KIND_SESSION,
                    ("st", "7", "st-1", 1, None, None, t0, None, None, None, None, None, t0),
                ),
                (KIND_PORT_STATUS, (t0 + 1, "st", "st-1", 1, "Charging", "Available", None, None)),
            ],
        )
    )
    assert [(row.table, row.reason) for row in skipped] == [("port_status", "refused")]
    assert "NULL" in skipped[0].detail.upper() or "null" in skipped[0].detail
    assert await rows(recorder, "SELECT port_id, status FROM port_status ORDER BY time") == [
        ("st-1", "Available"),
        ("st-1", "Charging"),
    ]
    assert await rows(recorder, "SELECT transaction_id FROM sessions") == [("7",)]
    assert (await recorder.history(["sensor.fine"], t0 - 1))["sensor.fine"][0]["state"] == "1"

    # From outside: an event type too long for PostgreSQL's index (2,704 bytes at most); SQLite
    # keeps it. The events around it are written either way.
    long_type = secrets.token_hex(10_000)
    hub.bus.fire("around", {"seq": 1})
    hub.bus.fire(long_type, {})
    hub.bus.fire("around", {"seq": 2})
    await recorder.flush()
    around = await recorder.events(["around"], t0 - 1, t0 + 60)
    assert [event["data"]["seq"] for event in around] == [1, 2]
    stored = await recorder.events([long_type], t0 - 1, t0 + 60)
    if db_url is None:
        assert len(stored) == 1
        assert await skipped_in_metrics(hub) == {}
    else:
        assert stored == []
        assert await skipped_in_metrics(hub) == {("events", "refused"): 1.0}
    assert recorder.failures == 0


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from hub.bootstrap import new_hub
    from hub.http import DATA_HTTP

    async def main():
        hub = new_hub(sys.argv[1])
        await hub.start()
        print(hub.data[DATA_HTTP].port, flush=True)
        i = 0
        while True:
            hub.states.set("sensor.tick", str(i))
            i += 1
            await asyncio.sleep(0.02)

    asyncio.run(main())
    """
)


async def health_of(port: int) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"http://127.0.0.1:{port}/api/health") as response,
    ):
        return response.status, await response.json()


async def wait_health(port: int, state: str, timeout: float = 60) -> tuple[int, dict[str, Any]]:
    """Wait until /api/health shows the recorder in state; return the answer."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = await health_of(port)
        if body["integrations"].get("recorder", {}).get("state") == state:
            return status, body
        if time.monotonic() > deadline:
            raise AssertionError(f"recorder never {state}: {body}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_health_shows_the_writer_failed_while_the_database_cannot_be_written(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    section: dict[str, Any] = {"commit_interval": 0.2}
    server: PgServer | None = None
    if backend == "postgresql":
        server = request.getfixturevalue("own_pg")
        section["db_url"] = server.dsn
    child_dir.joinpath("configuration.yaml").write_text(
        yaml.safe_dump({"http": {**HTTP_OPEN, "zeroconf": False}, "recorder": section})
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(child_dir), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 60))
        status, body = await wait_health(port, "loaded")
        assert (status, body["status"]) == (200, "ok")

        # The database cannot be written: a file size limit of one byte on the hub's process
        # (the disk is full, as SQLite sees it), or the PostgreSQL server stopped.
        if server is None:
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        else:
            await asyncio.to_thread(server.stop)
        status, body = await wait_health(port, "failed")
        recorder_status = body["integrations"]["recorder"]
        assert status == 200  # the hub still serves; see the health view
        assert body["status"] == "degraded"
        assert body["problems"] == ["recorder"]
        assert recorder_status["error"].startswith("writer: ")
        assert "commits in a row failed" in recorder_status["error"]
        assert recorder_status["components"]["writer"]["health"] == "failed"
        failed_at = time.time()
        await asyncio.sleep(1)

        # Writable again: the writer says so, and commits what waited.
        if server is None:
            limit = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, limit)
        else:
            await asyncio.to_thread(server.start)
        repaired_at = time.time()
        status, body = await wait_health(port, "loaded")
        assert (status, body["status"], body["problems"]) == (200, "ok", [])
        assert body["integrations"]["recorder"]["components"] == {}
        await asyncio.sleep(1.5)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()

    # Nothing queued meanwhile was lost, and history went on after the repair.
    hub = new_hub(child_dir)
    await hub.start()
    try:
        history = await get_recorder(hub).history(["sensor.tick"], 0, time.time() + 10)
    finally:
        await hub.stop()
    ticks = history["sensor.tick"]
    values = [int(row["state"]) for row in ticks]
    assert values == list(range(len(values)))
    stamps = [row["last_updated"] for row in ticks]
    # Set while the database could not be written (every 20 ms for at least a second).
    assert sum(failed_at < stamp < repaired_at for stamp in stamps) > 20
    assert max(stamps) > repaired_at + 0.5


OCPP = {
    "listeners": [{"port": 0, "host": "127.0.0.1", "security_profile": 0}],
    "heartbeat_interval": 30,
    "chargers": [{"id": "CP-1", "name": "Bay 1"}],
}


async def test_a_charger_sending_connector_2_to_the_31_does_not_stop_history(
    start_hub: StartHub, db_url: str | None
) -> None:
    hub, recorder = await start_hub(http=HTTP_OPEN, ocpp=OCPP)
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(ws_url(hub, "CP-1"), protocols=("ocpp1.6",))
    cp = RawChargePoint(session, ws)
    try:
        await charge_point_reports(cp)
    finally:
        await cp.close()
    await hub.block_till_done()
    await recorder.flush()
    found = await rows(recorder, "SELECT port, status FROM port_status")
    assert (1, "Available") in found
    assert (2**31, "Available") not in found or db_url is None
    _status, body = await get_json(hub, "/api/health")
    assert body["integrations"]["recorder"]["state"] == "loaded"
    assert recorder.failures == 0


async def charge_point_reports(cp: RawChargePoint) -> None:
    """Boot, report connector 2^31 (refused or not), then connector 1."""
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "DC50"})
    status = {"errorCode": "NoError", "status": "Available"}
    # Refused at the protocol or accepted: either way the recorder goes on.
    with contextlib.suppress(ChargerCallError):
        await cp.call("StatusNotification", {"connectorId": 2**31, **status})
    await asyncio.sleep(0.5)  # a commit in between
    await cp.call("StatusNotification", {"connectorId": 1, **status})


async def test_a_commit_stuck_behind_a_lock_shows_the_writer_failed(
    start_hub: StartHub, db_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("integrations.recorder.core.STALLED_AFTER", 0.5)
    hub, recorder = await start_hub(http=HTTP_OPEN)
    await recorder.flush()
    # Another process holds the database: a write lock on SQLite, the states table on
    # PostgreSQL. The next commit waits behind it.
    release: Any
    if db_url is None:
        holder = sqlite3.connect(hub.path("evhub.db"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")

        async def release() -> None:
            holder.execute("ROLLBACK")
            holder.close()

    else:
        conn = await asyncpg.connect(db_url)
        lock = conn.transaction()
        await lock.start()
        await conn.execute("LOCK TABLE states IN ACCESS EXCLUSIVE MODE")

        async def release() -> None:
            await lock.rollback()
            await conn.close()

    try:
        hub.states.set("sensor.waiting", "1")
        deadline = time.monotonic() + 20
        while True:
            _status, body = await get_json(hub, "/api/health")
            if body["integrations"]["recorder"]["state"] == "failed":
                break
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.1)
        assert "a commit has been running for over" in body["integrations"]["recorder"]["error"]
        assert body["status"] == "degraded"
    finally:
        await release()
    await recorder.flush()
    _status, body = await get_json(hub, "/api/health")
    assert (body["status"], body["integrations"]["recorder"]["state"]) == ("ok", "loaded")
    assert "sensor.waiting" in await recorder.history(["sensor.waiting"], 0)
