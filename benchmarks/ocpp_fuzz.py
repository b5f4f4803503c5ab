"""Memory under hostile OCPP traffic: does the hub give back what a fuzzer made it take?

The hub runs as its own process (as in benchmarks/ocpp.py) with the recorder on and unknown
chargers pending. Each round, --connections fuzzing clients connect (half with ids the hub
knows, half with new made-up ones), each sends --frames frames made from valid OCPP 1.6 and
2.0.1 messages with one field replaced by something hostile (huge or negative integers,
absurd floats and timestamps, long or control-character strings, wrong types, nesting), made-
up actions and broken JSON, then disconnects. The hub's RSS is printed after every round and
once more after it settled; the figure that matters is the growth from the end of the first
round (allocator arenas and caches warmed) to the end: bounded, not growing with rounds.

    scripts/bench ocpp_fuzz [--rounds 8] [--connections 200] [--frames 50] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

_SPEC = importlib.util.spec_from_file_location(
    "bench_ocpp", Path(__file__).resolve().parent / "ocpp.py"
)
assert _SPEC is not None
assert _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

KNOWN = 100
CONFIG = """\
http:
  server_host: {host}
  server_port: 0
ocpp:
  listeners:
    - host: {host}
      port: {port}
      security_profile: 0
  unknown_chargers: pending
  heartbeat_interval: 3600
  rate_limit:
    rate: 100000
    burst: 100000
  chargers:
""" + "".join(f"    - id: FZ-KNOWN-{i}\n" for i in range(KNOWN))

NOW = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
MESSAGES_16: list[tuple[str, dict[str, Any]]] = [
    ("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}),
    ("Heartbeat", {}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
    (
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": NOW,
                    "sampledValue": [
                        {"value": "1500", "measurand": "Energy.Active.Import.Register"},
                        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                    ],
                }
            ],
        },
    ),
    ("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": NOW}),
    ("StopTransaction", {"transactionId": 1, "meterStop": 10, "timestamp": NOW}),
    ("SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": NOW}),
    ("DataTransfer", {"vendorId": "acme", "data": "x"}),
]
MESSAGES_201: list[tuple[str, dict[str, Any]]] = [
    (
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
    ),
    (
        "StatusNotification",
        {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    ),
    (
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": NOW,
                    "sampledValue": [
                        {"value": 1.5, "unitOfMeasure": {"unit": "kWh", "multiplier": 0}}
                    ],
                }
            ],
        },
    ),
    (
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": NOW,
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "TX"},
            "evse": {"id": 1, "connectorId": 1},
        },
    ),
    (
        "NotifyEvent",
        {
            "generatedAt": NOW,
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": NOW,
                    "trigger": "Delta",
                    "actualValue": "Faulted",
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                    "variable": {"name": "AvailabilityState"},
                }
            ],
        },
    ),
]


def hostile(rng: random.Random) -> Any:
    """A value no real charger would send."""
    return rng.choice(
        [
            2**63,
            2**64 + 7,
            -(2**63) - 1,
            2**31,
            -1,
            rng.randrange(1, 10**6),
            10_000_000,
            1e308,
            -1e308,
            "inf",
            "NaN",
            "1e309",
            "",
            "A" * rng.randrange(1, 5000),
            "".join(chr(rng.randrange(0, 0x2FFF)) for _ in range(rng.randrange(1, 200))),
            "\u202e\x00\n",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            None,
            True,
            [],
            {},
            [[[[[[1]]]]]],
            {"a": {"b": {"c": {"d": 1}}}},
        ]
    )


def mutate(rng: random.Random, node: Any) -> Any:
    """A copy of node with one value somewhere replaced by a hostile one."""
    if isinstance(node, dict) and node and rng.random() < 0.8:
        key = rng.choice(list(node))
        copy = dict(node)
        copy[key] = mutate(rng, node[key]) if rng.random() < 0.6 else hostile(rng)
        if rng.random() < 0.1:
            copy[f"x{rng.randrange(10**9)}"] = hostile(rng)
        return copy
    if isinstance(node, list) and node and rng.random() < 0.8:
        copy = list(node)
        index = rng.randrange(len(copy))
        copy[index] = mutate(rng, copy[index])
        return copy
    return hostile(rng)


def frame(rng: random.Random, version: str, number: int) -> str:
    """One fuzzed frame."""
    messages = MESSAGES_16 if version == "ocpp1.6" else MESSAGES_201
    action, payload = rng.choice(messages)
    roll = rng.random()
    message_id = f"f{number}"
    if roll < 0.05:
        return "[2, " + json.dumps(message_id) + ", " + json.dumps(action) + ", {"  # broken JSON
    if roll < 0.1:
        return json.dumps([2, message_id, f"Made{rng.randrange(10**9)}Up", {}])
    if roll < 0.15:
        return json.dumps([rng.randrange(0, 10), hostile(rng), action, payload])
    if roll < 0.3:
        return json.dumps([2, message_id, action, payload])  # valid
    return json.dumps([2, message_id, action, mutate(rng, payload)])


async def client(
    session: aiohttp.ClientSession, url: str, version: str, frames: int, rng: random.Random
) -> int:
    """Connect, send frames one at a time (waiting for each answer), disconnect."""
    try:
        ws = await session.ws_connect(
            url, protocols=(version,), timeout=aiohttp.ClientWSTimeout(ws_close=10)
        )
    except (aiohttp.ClientError, TimeoutError):
        return 0
    answered = 0
    try:
        for number in range(frames):
            await ws.send_str(frame(rng, version, number))
            try:
                msg = await ws.receive(timeout=1)
            except TimeoutError:
                continue  # unanswerable frames get no answer
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            answered += 1
    finally:
        await ws.close()
    return answered


async def fuzz_round(
    port: int, round_no: int, connections: int, frames: int, rng: random.Random
) -> int:
    """Run one round of fuzzing clients, a few dozen at a time; return answers received."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        jobs = []
        for index in range(connections):
            if index % 2:
                cp_id = f"FZ-KNOWN-{rng.randrange(KNOWN)}"
            else:
                cp_id = f"FZ-NEW-{round_no}-{index}"
            version = rng.choice(("ocpp1.6", "ocpp2.0.1"))
            url = f"ws://{bench.HOST}:{port}/ocpp/{cp_id}"
            jobs.append(client(session, url, version, frames, random.Random(rng.random())))
        answered = 0
        for start in range(0, len(jobs), 50):
            answered += sum(await asyncio.gather(*jobs[start : start + 50]))
        return answered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    procs = bench.Processes()
    bench.CONFIG = CONFIG
    with tempfile.TemporaryDirectory(prefix="evhub-fuzz-") as tmp:
        server = bench.Server(procs, "hub", Path(tmp))
        try:
            server.start_hub()
            server.wait_idle()
            base = bench.proc_rss_kib(server.pid)
            print(f"hub RSS at start: {base / 1024:.1f} MiB")
            after_first = base
            started = time.monotonic()
            for round_no in range(args.rounds):
                answered = asyncio.run(
                    fuzz_round(server.port, round_no, args.connections, args.frames, rng)
                )
                rss = bench.proc_rss_kib(server.pid)
                if round_no == 0:
                    after_first = rss
                print(
                    f"round {round_no + 1}: {args.connections} connections x {args.frames}"
                    f" frames, {answered} answers; RSS {rss / 1024:.1f} MiB"
                )
            busy, stall = server.wait_idle()
            settled = bench.proc_rss_kib(server.pid)
            peak = bench.proc_rss_kib(server.pid, "VmHWM")
            print(
                f"settled {busy:.1f} s after the last round (slowest /api/health {stall * 1000:.0f}"
                f" ms); RSS {settled / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB"
            )
            print(
                f"growth after round 1: {(settled - after_first) / 1024:+.1f} MiB over"
                f" {args.rounds - 1} more rounds; from start {(settled - base) / 1024:+.1f} MiB"
                f" ({time.monotonic() - started:.0f} s of fuzzing)"
            )
            alive = server.healthy(5.0)
            print(f"hub healthy afterwards: {alive}")
            return 0 if alive else 1
        except bench.BenchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        finally:
            server.stop()
            procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
