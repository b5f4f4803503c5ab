"""One hub polling many simulated Modbus TCP wallboxes: are all polls on time?

The wallboxes (the four built-in profiles in turn, each on a pymodbus server of its own,
charging and idling on the simulator's cycle) run in child processes, so the hub's process
measures only itself. The hub polls every device once per --interval over real loopback
TCP, with the recorder and the uptime engine listening as in production, for --duration
seconds, then stops by itself and prints:

    polls/s                 polls per second of the measured window
    on time                 polls made / polls the intervals called for (late: skipped
                            because the device's previous poll still ran; failed: no answer)
    CPU per poll            the hub process's CPU time in the window / polls
    loop lag p50/p99/max    how late a 10 ms timer fires in the hub's loop

Target: every poll on time, loop lag p99 under 10 ms.

    scripts/bench modbus [--devices 500] [--interval 5] [--duration 30] [--servers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROFILE_KEYS = ("keba_p30", "vestel_evc04", "abb_terra_ac", "phoenix_em_cp_pp_eth")


async def serve(count: int, first: int, speed: float) -> None:
    """Child process: count simulated wallboxes on free ports; print them; run until EOF."""
    import logging

    from integrations.modbus.profile import load_profiles
    from integrations.modbus.simulator import SimulatedWallbox, SimulatorServer

    logging.getLogger("pymodbus").setLevel(logging.ERROR)
    profiles, _ = load_profiles()
    servers = []
    for index in range(first, first + count):
        profile = profiles[PROFILE_KEYS[index % len(PROFILE_KEYS)]]
        wallbox = SimulatedWallbox(profile, scenario="cycle", speed=speed)
        # Not all in step: each starts somewhere in the cycle.
        wallbox._cycle_started -= (index * 7.3) % 170 / speed
        server = SimulatorServer(wallbox, "127.0.0.1", 0)
        await server.start()
        servers.append((index, profile.key, server))
    print(json.dumps([[i, key, s.port] for i, key, s in servers]), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for _, _, server in servers:
        await server.stop()


def _start_servers(devices: int, processes: int, speed: float) -> tuple[list[Any], list[Any]]:
    children = []
    per = -(-devices // processes)
    for first in range(0, devices, per):
        count = min(per, devices - first)
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve",
                    str(count),
                    "--first",
                    str(first),
                    "--speed",
                    str(speed),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
    found: list[Any] = []
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise SystemExit("a simulator process did not start")
        found.extend(json.loads(line))
    return children, sorted(found)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def write_config(directory: Path, args: argparse.Namespace, servers: list[Any]) -> None:
    """The hub's configuration: every simulated wallbox, HTTP on a free port."""
    lines = [
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n",
        f"modbus:\n  scan_interval: {args.interval}\n  timeout: 3\n  devices:\n",
    ]
    for index, key, port in servers:
        lines.append(
            f"    - {{id: wb{index:04d}, profile: {key}, host: 127.0.0.1, port: {port}}}\n"
        )
    (directory / "configuration.yaml").write_text("".join(lines))


async def measure(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """Run a hub polling every server for the duration; return the figures."""
    import logging

    from hub.bootstrap import new_hub
    from integrations.modbus import DATA_MODBUS

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    hub = new_hub(directory)
    await hub.start()
    try:
        chargers = list(hub.data[DATA_MODBUS].devices.values())
        # The first interval connects every device: measure from the second one.
        await asyncio.sleep(args.interval + 1)
        lags: list[float] = []
        stop = time.monotonic() + args.duration

        async def sample() -> None:
            while time.monotonic() < stop:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - before - 0.01)

        polls0 = sum(c.polls for c in chargers)
        late0 = sum(c.late for c in chargers)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await sample()
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        polls = sum(c.polls for c in chargers) - polls0
        late = sum(c.late for c in chargers) - late0
        offline = sum(1 for c in chargers if not c.online)
        failed = sum(1 for c in chargers if c.failures)
        expected = len(chargers) * wall / args.interval
        return {
            "devices": len(chargers),
            "interval_s": args.interval,
            "window_s": round(wall, 1),
            "polls": polls,
            "polls_expected": round(expected),
            "polls_per_s": round(polls / wall, 1),
            "late_polls": late,
            "failing_devices": failed,
            "offline_devices": offline,
            "cpu_share": round(cpu / wall, 3),
            "cpu_per_poll_ms": round(cpu / max(polls, 1) * 1000, 3),
            "loop_lag_p50_ms": round(_percentile(lags, 0.50) * 1000, 2),
            "loop_lag_p99_ms": round(_percentile(lags, 0.99) * 1000, 2),
            "loop_lag_max_ms": round(max(lags, default=0.0) * 1000, 2),
            "loop_lag_mean_ms": round(statistics.fmean(lags) * 1000, 2) if lags else 0.0,
        }
    finally:
        await hub.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--servers", type=int, default=2, help="simulator processes")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated time factor")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.first, args.speed))
        return 0
    children, servers = _start_servers(args.devices, max(1, args.servers), args.speed)
    try:
        with tempfile.TemporaryDirectory() as directory:
            write_config(Path(directory), args, servers)
            result = asyncio.run(measure(args, Path(directory)))
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
    on_time = (
        result["late_polls"] == 0
        and result["failing_devices"] == 0
        and result["polls"] >= 0.98 * result["polls_expected"]
    )
    result["all_polls_on_time"] = on_time
    result["target_met"] = on_time and result["loop_lag_p99_ms"] < 10
    print(f"devices            {result['devices']} every {result['interval_s']:g} s")
    print(f"polls/s            {result['polls_per_s']}")
    print(
        f"polls              {result['polls']} of {result['polls_expected']} expected"
        f" (late {result['late_polls']}, offline devices {result['offline_devices']})"
    )
    print(
        f"CPU per poll       {result['cpu_per_poll_ms']} ms"
        f" (hub process {result['cpu_share'] * 100:.1f} % of a core)"
    )
    print(
        f"loop lag           p50 {result['loop_lag_p50_ms']} ms, p99"
        f" {result['loop_lag_p99_ms']} ms, max {result['loop_lag_max_ms']} ms"
    )
    print(f"target met         {result['target_met']}")
    print(json.dumps(result), file=sys.stderr if os.environ.get("BENCH_QUIET") else sys.stdout)
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
