"""OCPP transaction store benchmark: concurrent start+stop pairs, group commit, latency.

Workload: N transactions (default 5,000), in waves of 500 concurrent chargers; each charger
awaits its StartTransaction record, then its StopTransaction record, as a central system
does before answering. Prints transactions/s, commits (each an fsync of the WAL) against
requests, the time from request to acknowledgement (p50, p99, max), and the longest stall
of the event loop while it ran (the SQLite work is on the writer thread, not in the loop).

    .venv/bin/python -m benchmarks.ocpp_transactions [--transactions N] [--wave W]
        [--max-batch B] [--dir DIR]

``--max-batch 1`` commits every request on its own: the cost group commit saves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from integrations.ocpp.transactions import DB_FILENAME, OCPP_16, TransactionStore

WAVE = 500


async def one_session(
    store: TransactionStore, n: int, latencies: list[float], base: float
) -> float:
    """Start and stop one transaction; return the energy stored."""
    cp = f"CP{n:05d}"
    at = base + n
    begin = time.perf_counter()
    started = await store.start_transaction(
        charge_point_id=cp,
        connector_id=1,
        id_tag=f"TAG{n}",
        meter_start_wh=1000.0,
        started_at=at,
        ocpp_version=OCPP_16,
        replay_key=f"{cp}|1|TAG{n}|{at}|1000",
    )
    middle = time.perf_counter()
    stopped = await store.stop_transaction(
        charge_point_id=cp,
        transaction_id=started.id,
        meter_stop_wh=8000.0,
        stopped_at=at + 1800,
        reason="EVDisconnected",
        replay_key=f"{cp}|{started.id}|{at + 1800}|8000",
    )
    end = time.perf_counter()
    latencies.append(middle - begin)
    latencies.append(end - middle)
    assert stopped is not None
    assert stopped.energy_wh is not None
    return stopped.energy_wh


async def watch_loop(stalls: list[float], stop: asyncio.Event) -> None:
    """Record how late a 1 ms sleep wakes up: the loop's longest stall."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        stalls.append(time.perf_counter() - before - 0.001)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(transactions: int, wave: int, max_batch: int, directory: str | None) -> None:
    with tempfile.TemporaryDirectory(dir=directory) as config_dir:
        store = TransactionStore(Path(config_dir) / DB_FILENAME, max_batch=max_batch)
        await store.open()
        base = time.time()
        latencies: list[float] = []
        stalls: list[float] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_loop(stalls, stop))
        commits, batches, requests = store.commits, store.batches, store.requests
        begin = time.perf_counter()
        energy = 0.0
        for first in range(0, transactions, wave):
            done = await asyncio.gather(
                *(
                    one_session(store, n, latencies, base)
                    for n in range(first, min(first + wave, transactions))
                )
            )
            energy += sum(done)
        elapsed = time.perf_counter() - begin
        stop.set()
        await watcher
        commits = store.commits - commits
        batches = store.batches - batches
        requests = store.requests - requests
        await store.close()
        assert energy == 7000.0 * transactions

    print(
        f"python {sys.version.split()[0]}, {transactions:,} start+stop pairs in waves of "
        f"{wave}, max batch {max_batch}, {Path(config_dir).parent}"
    )
    print(f"transactions: {transactions / elapsed:,.0f}/s ({elapsed:.2f} s)")
    print(f"requests: {requests:,} ({requests / elapsed:,.0f}/s)")
    print(
        f"commits (fsyncs): {commits:,}, {requests / max(commits, 1):,.1f} requests per commit; "
        f"{batches:,} batches"
    )
    print(
        "request to acknowledgement: "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    print(f"event loop: longest stall {max(stalls, default=0.0) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=5_000)
    parser.add_argument("--wave", type=int, default=WAVE)
    parser.add_argument("--max-batch", type=int, default=1024)
    parser.add_argument("--dir", default=None, help="where the database goes (a real disk)")
    args = parser.parse_args()
    if args.dir is not None:
        os.makedirs(args.dir, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.transactions, args.wave, args.max_batch, args.dir))


if __name__ == "__main__":
    main()
