"""One hub following many simulated go-eChargers over MQTT and exporting every change.

A mosquitto broker on a free loopback port, the chargers (go-e API v2 simulators, each
publishing rbt, nrg, eto and wh every --interval, walking the charging cycle at --speed) in
a child process, and the hub in this one: it subscribes to every charger's topics, writes
their entities (with the recorder and the uptime engine listening as in production) and
exports every state change retained under evhub/v1/hub/ (coalesced per second), with Home
Assistant discovery on. After a warm-up it measures for --duration seconds, then stops by
itself (the whole run is bounded by --limit seconds) and prints:

    messages in/s           MQTT messages the hub received per second
    messages out/s          MQTT messages the hub published per second (export)
    charger messages/s      what the simulators published per second (the hub keeps up
                            when in/s matches it)
    CPU per message         the hub process's CPU time in the window / messages in
    loop lag p50/p99/max    how late a 10 ms timer fires in the hub's loop

Target: every message taken, nothing dropped, loop lag p99 under 10 ms.

    scripts/bench mqtt [--chargers 1000] [--interval 5] [--duration 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def serve(port: int, count: int, interval: float, speed: float) -> None:
    """Child process: the simulated chargers; print the messages published on EOF."""
    from integrations.mqtt.simulator import GoESimulator, fleet

    simulator = GoESimulator(
        "127.0.0.1", port, fleet(count), interval=interval, scenario="cycle", speed=speed
    )
    await simulator.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.ensure_future(loop.run_in_executor(None, sys.stdin.readline))
    while not reader.done():
        await asyncio.sleep(0.5)
        print(f"published {simulator.published}", flush=True)
    await simulator.stop(clean=False)


def _start_broker(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(binary, os.X_OK):
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    port = _free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_dest none\nmax_queued_messages 100000\n"
    )
    broker = subprocess.Popen([binary, "-c", str(config)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return broker, port
        except OSError:
            time.sleep(0.05)
    broker.kill()
    raise SystemExit("mosquitto did not start")


def write_config(directory: Path, args: argparse.Namespace, port: int) -> None:
    """The hub's configuration: every simulated charger, export and discovery on."""
    lines = [
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n",
        f"mqtt:\n  port: {port}\n  discovery: true\n  export:\n    interval: 1\n  chargers:\n",
    ]
    lines.extend(
        f"    - {{id: goe{index:05d}, profile: go_e, serial: '{index:06d}'}}\n"
        for index in range(args.chargers)
    )
    (directory / "configuration.yaml").write_text("".join(lines))


async def measure(args: argparse.Namespace, directory: Path, port: int) -> dict[str, Any]:
    """Run the hub and the simulators; return the figures of the measured window."""
    import logging

    from hub.bootstrap import new_hub
    from integrations.mqtt import DATA_MQTT

    logging.basicConfig(level=logging.WARNING)
    hub = new_hub(directory)
    await hub.start()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        str(port),
        "--chargers",
        str(args.chargers),
        "--interval",
        str(args.interval),
        "--speed",
        str(args.speed),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    published = [0]

    async def follow() -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            text = line.decode().strip()
            if text.startswith("published "):
                published[0] = int(text.split()[1])

    follower = asyncio.ensure_future(follow())
    try:
        mqtt = hub.data[DATA_MQTT]
        connection = mqtt.connection
        exporter = mqtt.exporter
        assert exporter is not None
        await asyncio.wait_for(connection.connected.wait(), 30)
        # Warm-up: every charger's retained keys arrive and a first interval passes.
        await asyncio.sleep(args.interval + 2)
        lags: list[float] = []
        stop = time.monotonic() + args.duration

        async def sample() -> None:
            while time.monotonic() < stop:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - before - 0.01)

        in0, out0, pub0 = connection.received, connection.sent, published[0]
        states0, coalesced0 = exporter.state_messages, exporter.coalesced
        malformed0 = sum(c.malformed for c in mqtt.chargers.values())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await sample()
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        received = connection.received - in0
        sent = connection.sent - out0
        charger_messages = published[0] - pub0
        online = sum(1 for c in mqtt.chargers.values() if c.online)
        return {
            "chargers": len(mqtt.chargers),
            "online": online,
            "interval_s": args.interval,
            "window_s": round(wall, 1),
            "messages_in_per_s": round(received / wall, 1),
            "messages_out_per_s": round(sent / wall, 1),
            "charger_messages_per_s": round(charger_messages / wall, 1),
            "state_exports_per_s": round((exporter.state_messages - states0) / wall, 1),
            "coalesced_per_s": round((exporter.coalesced - coalesced0) / wall, 1),
            "dropped": connection.dropped,
            "queued_at_end": connection.queued,
            "malformed": sum(c.malformed for c in mqtt.chargers.values()) - malformed0,
            "cpu_share": round(cpu / wall, 3),
            "cpu_per_message_ms": round(cpu / max(received, 1) * 1000, 3),
            "loop_lag_p50_ms": round(_percentile(lags, 0.50) * 1000, 2),
            "loop_lag_p99_ms": round(_percentile(lags, 0.99) * 1000, 2),
            "loop_lag_max_ms": round(max(lags, default=0.0) * 1000, 2),
            "loop_lag_mean_ms": round(statistics.fmean(lags) * 1000, 2) if lags else 0.0,
        }
    finally:
        if child.stdin is not None:
            child.stdin.write(b"\n")
            child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 10)
        except TimeoutError:
            child.kill()
            await child.wait()
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await hub.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated time factor")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds for the whole run")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.chargers, args.interval, args.speed))
        return 0

    def too_long(_signum: int, _frame: Any) -> None:
        raise SystemExit(f"bench mqtt: still running after {args.limit:g} s, stopped")

    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(int(args.limit))
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        broker, port = _start_broker(directory)
        try:
            write_config(directory, args, port)
            result = asyncio.run(measure(args, directory, port))
        finally:
            broker.terminate()
            try:
                broker.wait(10)
            except subprocess.TimeoutExpired:
                broker.kill()
    signal.alarm(0)
    kept_up = (
        result["messages_in_per_s"] >= 0.95 * result["charger_messages_per_s"]
        and result["dropped"] == 0
        and result["online"] == result["chargers"]
    )
    result["kept_up"] = kept_up
    result["target_met"] = kept_up and result["loop_lag_p99_ms"] < 10
    print(
        f"chargers           {result['chargers']} every {result['interval_s']:g} s"
        f" ({result['online']} online)"
    )
    print(f"messages in/s      {result['messages_in_per_s']}")
    print(
        f"messages out/s     {result['messages_out_per_s']}"
        f" (state exports {result['state_exports_per_s']}/s,"
        f" changes coalesced {result['coalesced_per_s']}/s)"
    )
    print(f"charger msgs/s     {result['charger_messages_per_s']} (what the simulators sent)")
    print(
        f"CPU per message    {result['cpu_per_message_ms']} ms"
        f" (hub process {result['cpu_share'] * 100:.1f} % of a core)"
    )
    print(
        f"loop lag           p50 {result['loop_lag_p50_ms']} ms, p99"
        f" {result['loop_lag_p99_ms']} ms, max {result['loop_lag_max_ms']} ms"
    )
    print(f"dropped            {result['dropped']}, malformed {result['malformed']}")
    print(f"target met         {result['target_met']}")
    print(json.dumps(result), file=sys.stderr if os.environ.get("BENCH_QUIET") else sys.stdout)
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
