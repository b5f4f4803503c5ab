"""Recorder benchmark: a steady stream of state changes into a real hub recording to SQLite.

Drives RATE state changes per second (default 20,000) for SECONDS (default 10) over 1,000
entities with a unit and a name as attributes, paced in 5 ms slices, on a hub with the
recorder on SQLite in a temporary dir. A ticker task measures the event loop's lag (how
late a 5 ms sleep wakes). Prints the rows committed per second while driving, the loop lag
p99 and max, the largest backlog and the rows dropped, and whether the recorder kept up.
Targets: 20,000 rows/s sustained, lag p99 under 10 ms; `--rate 40000` shows the ceiling.
The hub runs with the collector policy of `evhub run`.

    scripts/bench recorder [--rate 20000] [--seconds 10] [--db-url postgresql://...]

With --kills N it measures instead what a crash loses: N times, an `evhub run` process takes
OCPP MeterValues from 20 chargers over real websockets (about 10 state changes each, --rate
changes/s in all, default 3,000 here), is killed with SIGKILL after 6-7 s, and the newest
committed state is compared with the kill time.

    scripts/bench recorder --kills 10 [--rate 3000] [--db-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from hub.bootstrap import new_hub
from hub.util import tune_gc_after_start
from integrations.recorder import get_recorder

ENTITIES = 1_000
SLICE = 0.005
TICK = 0.005


async def ticker(lags: list[float], stop: asyncio.Event) -> None:
    """Sleep TICK again and again; keep how late each wake-up is."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(TICK)
        lags.append(max(0.0, loop.time() - before - TICK))


async def run(rate: int, seconds: float, db_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as config_dir:
        section: dict[str, object] = {"max_backlog": 1_000_000}
        if db_url:
            section["db_url"] = db_url
        config = {"http": {"server_host": "127.0.0.1", "server_port": 0}, "recorder": section}
        # Before the hub starts: nothing else runs in the loop yet.
        Path(config_dir, "configuration.yaml").write_text(yaml.safe_dump(config))  # noqa: ASYNC240
        hub = new_hub(config_dir)
        await hub.start()
        recorder = get_recorder(hub)
        await recorder.flush()
        # The collector policy `evhub run` applies once started.
        tune_gc_after_start()
        entity_ids = [f"sensor.cp_{i}_power" for i in range(ENTITIES)]
        attributes = [
            {"unit_of_measurement": "W", "friendly_name": f"CP {i} power"} for i in range(ENTITIES)
        ]
        set_state = hub.states.set
        per_slice = max(1, int(rate * SLICE))
        lags: list[float] = []
        stop = asyncio.Event()
        tick_task = asyncio.create_task(ticker(lags, stop))
        loop = asyncio.get_running_loop()
        committed_before = recorder.committed
        max_backlog = 0
        written = 0
        start = loop.time()
        n = 0
        value = 0
        while True:
            now = loop.time()
            if now - start >= seconds:
                break
            for _ in range(per_slice):
                index = n % ENTITIES
                set_state(entity_ids[index], str(value), attributes[index])
                n += 1
                if index == ENTITIES - 1:
                    value += 1
            written += per_slice
            max_backlog = max(max_backlog, recorder.backlog)
            n_slice = written // per_slice
            delay = start + n_slice * SLICE - loop.time()
            await asyncio.sleep(max(0.0, delay))
        elapsed = loop.time() - start
        committed_during = recorder.committed - committed_before
        backlog_at_end = recorder.backlog
        drain_start = time.perf_counter()
        await recorder.flush()
        drain = time.perf_counter() - drain_start
        stop.set()
        await tick_task
        committed_total = recorder.committed - committed_before
        rows = await recorder.backend.fetch("SELECT count(*) FROM states")
        await hub.stop()

    lags_ms = sorted(lag * 1000 for lag in lags)
    p99 = lags_ms[int(len(lags_ms) * 0.99) - 1] if lags_ms else 0.0
    print(f"recorder benchmark ({'PostgreSQL' if db_url else 'SQLite'}), target {rate} rows/s")
    rate_driven = written / elapsed
    print(f"  driven:     {written} state changes in {elapsed:.2f} s = {rate_driven:,.0f}/s")
    during = committed_during / elapsed
    print(f"  committed:  {committed_during} rows while driving = {during:,.0f} rows/s")
    print(
        f"  sustained:  {committed_total} rows in {elapsed + drain:.2f} s incl. drain"
        f" = {committed_total / (elapsed + drain):,.0f} rows/s (drain {drain:.2f} s)"
    )
    print(f"  states in the database: {rows[0][0]}")
    print(
        f"  loop lag:   p50 {statistics.median(lags_ms):.2f} ms, p99 {p99:.2f} ms,"
        f" max {lags_ms[-1]:.2f} ms over {len(lags_ms)} ticks"
    )
    print(
        f"  backlog:    max {max_backlog}, at the end {backlog_at_end}; dropped {recorder.dropped}"
    )
    # Keeping up: nothing dropped, the backlog never more than about two commit intervals of
    # input (rows wait for the next commit by design), and the rest drained within one.
    keeps_up = recorder.dropped == 0 and max_backlog <= 2 * rate and drain <= 1.0
    print(
        f"  keeps up with {rate_driven:,.0f} changes/s: {'yes' if keeps_up else 'NO'}"
        f" (largest backlog {max_backlog / rate_driven:.1f} s of input)"
    )


ROOT = Path(__file__).resolve().parents[1]
KILL_CHARGERS = 20
CHANGES_PER_METER_VALUES = 10  # measured: 11 entities, one of them seldom changes


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _charger(session: aiohttp.ClientSession, url: str, period: float) -> None:
    """A charger that boots, starts a transaction and sends MeterValues every period."""
    ws = await session.ws_connect(url, protocols=("ocpp1.6",))
    answers: dict[str, asyncio.Future[Any]] = {}
    counter = 0

    async def read() -> None:
        async for message in ws:
            frame = json.loads(message.data)
            if frame[0] == 2:
                await ws.send_str(json.dumps([3, frame[1], {"status": "Accepted"}]))
            elif frame[1] in answers:
                answers.pop(frame[1]).set_result(frame)

    async def call(action: str, payload: dict[str, Any]) -> Any:
        nonlocal counter
        counter += 1
        answer = answers[str(counter)] = asyncio.get_running_loop().create_future()
        await ws.send_str(json.dumps([2, str(counter), action, payload]))
        return (await asyncio.wait_for(answer, 30))[2]

    reader = asyncio.create_task(read())
    try:
        await call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "DC50"})
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        await call("StatusNotification", status)
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": _now()}
        tx_id = (await call("StartTransaction", start))["transactionId"]
        loop = asyncio.get_running_loop()
        due = loop.time()
        k = 0
        while True:
            k += 1
            values = [
                {"value": str(k), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": str(7000 + k % 50), "measurand": "Power.Active.Import", "unit": "W"},
                {"value": str(k % 100), "measurand": "SoC", "unit": "Percent"},
            ]
            for phase in ("L1", "L2", "L3"):
                current = {"value": f"{16 + k % 7 / 10}", "measurand": "Current.Import"}
                voltage = {"value": f"{230 + k % 5 / 10}", "measurand": "Voltage"}
                values += [{**current, "phase": phase}, {**voltage, "phase": phase}]
            meter = [{"timestamp": _now(), "sampledValue": values}]
            await call(
                "MeterValues", {"connectorId": 1, "transactionId": tx_id, "meterValue": meter}
            )
            due += period
            await asyncio.sleep(max(0.0, due - loop.time()))
    finally:
        reader.cancel()


async def _newest(config_dir: Path, db_url: str | None) -> tuple[float, int]:
    """The newest committed state's time, and how many states came in the 3 s before it."""
    newest = "SELECT MAX(last_updated_ts) FROM states"
    window = "SELECT count(*) FROM states WHERE last_updated_ts > {}"
    if db_url is None:
        with contextlib.closing(sqlite3.connect(config_dir / "evhub.db")) as conn:
            last = float(conn.execute(newest).fetchone()[0])
            return last, int(conn.execute(window.format(last - 3)).fetchone()[0])
    conn = await asyncpg.connect(db_url)
    try:
        last = float(await conn.fetchval(newest))
        return last, int(await conn.fetchval(window.format(last - 3)))
    finally:
        await conn.close()


async def kill_once(rate: int, db_url: str | None) -> tuple[float, float]:
    """Load a hub, SIGKILL it; return (history lost in s, changes/s committed before)."""
    with tempfile.TemporaryDirectory() as directory:
        config_dir = Path(directory)
        port = _free_port()
        chargers = [{"id": f"CP-{i}", "name": f"Bay {i}"} for i in range(KILL_CHARGERS)]
        config: dict[str, Any] = {
            "http": {"server_host": "127.0.0.1", "server_port": 0, "zeroconf": False},
            "ocpp": {
                "listeners": [{"port": port, "host": "127.0.0.1", "security_profile": 0}],
                "id_tags": ["TAG"],
                "chargers": chargers,
            },
        }
        if db_url:
            config["recorder"] = {"db_url": db_url}
        (config_dir / "configuration.yaml").write_text(yaml.safe_dump(config))
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from hub.cli import main; sys.exit(main())",
            "run",
            "--config",
            str(config_dir),
            "--log-level",
            "error",
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                break
            period = KILL_CHARGERS * CHANGES_PER_METER_VALUES / rate
            async with aiohttp.ClientSession() as session:
                tasks = [
                    asyncio.create_task(
                        _charger(session, f"ws://127.0.0.1:{port}/ocpp/{c['id']}", period)
                    )
                    for c in chargers
                ]
                await asyncio.sleep(6 + random.random())
                killed_at = time.time()
                os.kill(child.pid, signal.SIGKILL)
                await child.wait()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        last, count = await _newest(config_dir, db_url)
        return killed_at - last, count / 3


async def kills(count: int, rate: int, db_url: str | None) -> None:
    losses: list[float] = []
    print(f"history lost per SIGKILL ({'PostgreSQL' if db_url else 'SQLite'}), {rate}/s offered")
    for _ in range(count):
        lost, committed = await kill_once(rate, db_url)
        losses.append(lost)
        print(f"  lost {lost:.3f} s at {committed:,.0f} changes/s", flush=True)
    losses.sort()
    print(
        f"  {count} kills: min {losses[0]:.2f} s, median {statistics.median(losses):.2f} s,"
        f" max {losses[-1]:.2f} s; promise < 1 s: {'met' if losses[-1] < 1 else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--kills", type=int, default=0)
    args = parser.parse_args()
    if args.kills:
        asyncio.run(kills(args.kills, args.rate or 3_000, args.db_url))
    else:
        asyncio.run(run(args.rate or 20_000, args.seconds, args.db_url))


if __name__ == "__main__":
    main()
