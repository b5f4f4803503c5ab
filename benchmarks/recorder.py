"""Recorder benchmark: a steady stream of state changes into a real hub recording to SQLite.

Drives RATE state changes per second (default 20,000) for SECONDS (default 10) over 1,000
entities with a unit and a name as attributes, paced in 5 ms slices, on a hub with the
recorder on SQLite in a temporary dir. A ticker task measures the event loop's lag (how
late a 5 ms sleep wakes). Prints the rows committed per second while driving, the loop lag
p99 and max, the largest backlog and the rows dropped, and whether the recorder kept up.
Targets: 20,000 rows/s sustained, lag p99 under 10 ms; `--rate 40000` shows the ceiling.
The hub runs with the collector policy of `evhub run`.

    scripts/bench recorder [--rate 20000] [--seconds 10] [--db-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from hub.core import Hub
from hub.recorder import get_recorder
from hub.util import tune_gc_after_start

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
        hub = Hub(config_dir)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--db-url", default=None)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.db_url))


if __name__ == "__main__":
    main()
