"""OCPP central system benchmark: throughput against a baseline, 10,000 chargers, memory.

The hub runs as its own process (``python -m hub.cli run``) on a generated config dir with one
OCPP listener (security profile 0, unknown chargers accepted); simulated OCPP 1.6 chargers run
in other processes (benchmarks/ocpp_load.py), each keeping one call outstanding: Heartbeat,
StatusNotification, MeterValues in turn, timed from send to CALLRESULT.

1. throughput: --chargers (1,000) in a closed loop for --duration (15 s) after a warm-up:
   calls/s, p50, p99;
2. the same load on the baseline, the `ocpp` package's documented minimal central system
   (benchmarks/peers/ocpp_baseline.py, its own process): calls/s, p50, p99, ratio;
3. --big (10,000) chargers connected to a fresh hub, --wave (500) connecting at a time, then
   --rate (2,000) calls/s in total, paced by the clock, for --duration: calls/s, p50, p99;
4. the hub's RSS before any charger connects and once --big are connected, booted and have
   sent a StatusNotification and a MeterValues each: KiB per charger.

Each load starts once the server is quiet again after the chargers connected; how long it
stayed busy, and the slowest /api/health answer meanwhile (an event-loop stall every charger
feels), are printed beside the figures. Server, client and whole-machine CPU during the window
show whether the server was the bottleneck and whether anything else ran.

Only loopback; every process started here is stopped on the way out, error or not.

    scripts/bench ocpp [--quick] [--chargers N] [--duration S] [--skip-baseline] [--skip-10k]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
LOAD = Path(__file__).resolve().parent / "ocpp_load.py"
BASELINE = Path(__file__).resolve().parent / "peers" / "ocpp_baseline.py"
HOST = "127.0.0.1"
LOG_STEP = math.log(1.01)  # as in ocpp_load.py
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0

CONFIG = """\
http:
  server_host: {host}
  server_port: 0
ocpp:
  listeners:
    - host: {host}
      port: {port}
      security_profile: 0
  unknown_chargers: accept
  heartbeat_interval: 3600
  rate_limit:
    rate: 1000
    burst: 1000
"""


class BenchError(Exception):
    """A phase could not run; the message says why."""


# Processes -----------------------------------------------------------------------------------


class Processes:
    """Every process this benchmark starts, so all of them are stopped at the end."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[Any]] = []

    def start(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(argv, cwd=ROOT, **kwargs)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after timeout; return the exit status."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  (pid {proc.pid} ignored SIGTERM for {timeout:g} s: killed)")
                proc.kill()
                proc.wait(10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(ValueError):
            self._procs.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in list(self._procs):
            self.stop(proc, timeout=15.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float, log: Path) -> None:
    """Wait until something accepts on port; fail early if proc dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"process exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1.0):
            return
        time.sleep(0.1)
    raise BenchError(f"nothing listens on {HOST}:{port} after {timeout:g} s:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def proc_rss_kib(pid: int, field: str = "VmRSS") -> int:
    """VmRSS (or VmHWM, the peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {field} for pid {pid}")


def machine_busy_s() -> float:
    """CPU seconds all CPUs spent not idle since boot (to see other processes' load)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Server:
    """The hub or the baseline, running as a separate process."""

    def __init__(self, procs: Processes, name: str, workdir: Path) -> None:
        self.procs = procs
        self.name = name
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.port = free_port()
        self.proc: subprocess.Popen[Any] | None = None
        self.health_url: str | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _spawn(self, argv: list[str]) -> subprocess.Popen[Any]:
        self._log_file = self.log.open("wb")
        self.proc = self.procs.start(
            argv, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        return self.proc

    def start_hub(self) -> None:
        config_dir = self.workdir / "config"
        config_dir.mkdir()
        (config_dir / "configuration.yaml").write_text(CONFIG.format(host=HOST, port=self.port))
        proc = self._spawn([sys.executable, "-m", "hub.cli", "run", "--config", str(config_dir)])
        wait_port(self.port, proc, START_TIMEOUT, self.log)
        match = None
        deadline = time.monotonic() + START_TIMEOUT
        while match is None and time.monotonic() < deadline:
            match = re.search(r"HTTP server listening on http://[^:]+:(\d+)", self.log.read_text())
            if match is None:
                time.sleep(0.1)
        if match is None:
            raise BenchError(f"the hub logged no HTTP port:\n{tail(self.log)}")
        self.health_url = f"http://{HOST}:{match.group(1)}/api/health"
        while time.monotonic() < deadline:
            if self.healthy(2.0):
                return
            time.sleep(0.2)
        raise BenchError(f"{self.health_url} never said ok:\n{tail(self.log)}")

    def healthy(self, timeout: float) -> bool:
        """Whether the hub's /api/health answers ok within timeout."""
        assert self.health_url is not None
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(self.health_url, timeout=timeout) as response,
        ):
            return bool(json.loads(response.read()).get("status") == "ok")
        return False

    def wait_idle(self, timeout: float = 180.0) -> tuple[float, float]:
        """Wait until the server used under 10 % CPU in each of three half seconds in a row.

        Three, as the hub's registries save one second after their last change. Return how
        long it stayed busy and the slowest /api/health answer meanwhile (the hub's event
        loop stalls: a health request waits for the loop as a charger's call does).
        """
        begin = time.perf_counter()
        slowest = 0.0
        quiet_since: float | None = None
        while time.perf_counter() - begin < timeout:
            cpu0, wall0 = proc_cpu_s(self.pid), time.perf_counter()
            if self.health_url is not None:
                self.healthy(60.0)
                slowest = max(slowest, time.perf_counter() - wall0)
            time.sleep(max(0.0, 0.5 - (time.perf_counter() - wall0)))
            share = (proc_cpu_s(self.pid) - cpu0) / (time.perf_counter() - wall0)
            if share >= 0.10:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = wall0
            elif time.perf_counter() - quiet_since >= 1.5:
                return quiet_since - begin, slowest
        return time.perf_counter() - begin, slowest

    def start_baseline(self) -> None:
        proc = self._spawn(
            [sys.executable, str(BASELINE), "--host", HOST, "--port", str(self.port)]
        )
        wait_port(self.port, proc, START_TIMEOUT, self.log)

    def stop(self) -> None:
        if self.proc is not None:
            code = self.procs.stop(self.proc)
            if code not in (0, None, -signal.SIGTERM):
                print(f"  ({self.name} exited with {code}; log {self.log}:\n{tail(self.log, 5)})")
            self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


# Load processes ------------------------------------------------------------------------------


class Load:
    """One load generator process, driven over its stdin and stdout."""

    def __init__(self, procs: Processes, workdir: Path, index: int, argv: list[str]) -> None:
        self.procs = procs
        self.log = workdir / f"load{index}.log"
        self._log_file = self.log.open("wb")
        self.proc = procs.start(
            [sys.executable, str(LOAD), "--control", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):
            for line in self.proc.stdout:
                self.lines.put(line)
        self.lines.put(None)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(
                    f"load generator: no {event} within {timeout:g} s:\n{tail(self.log)}"
                ) from None
            if line is None:
                raise BenchError(f"load generator exited before {event}:\n{tail(self.log)}")
            with contextlib.suppress(ValueError):
                message: dict[str, Any] = json.loads(line)
                if message.get("event") == event:
                    return message

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def stop(self) -> None:
        self.send("close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(30)
        self.procs.stop(self.proc, timeout=10.0)
        self._log_file.close()


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum several load processes' results; percentiles from their merged histograms."""
    if len(results) == 1:
        return results[0]
    merged: dict[str, Any] = {"duration": results[0]["duration"]}
    for key in (
        "connected",
        "calls",
        "errors",
        "callerrors",
        "disconnects",
        "timeouts",
        "unsent",
    ):
        merged[key] = sum(r[key] for r in results)
    merged["calls_per_s"] = merged["calls"] / merged["duration"]
    merged["max_ms"] = max(r["max_ms"] for r in results)
    merged["warmup_max_ms"] = max(r["warmup_max_ms"] for r in results)
    merged["max_pace_lag_ms"] = max(r["max_pace_lag_ms"] for r in results)
    merged["client_cpu"] = sum(r["client_cpu"] for r in results)
    merged["first_errors"] = [e for r in results for e in r["first_errors"]][:5]
    hist: dict[int, int] = {}
    for r in results:
        for bucket, count in r["hist"].items():
            hist[int(bucket)] = hist.get(int(bucket), 0) + count
    merged["p50_ms"] = hist_percentile(hist, 0.50)
    merged["p99_ms"] = hist_percentile(hist, 0.99)
    return merged


def hist_percentile(hist: dict[int, int], fraction: float) -> float:
    total = sum(hist.values())
    if not total:
        return 0.0
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return math.exp((bucket + 0.5) * LOG_STEP) / 1000.0
    return 0.0


def run_load(
    procs: Processes,
    workdir: Path,
    server: Server,
    args: argparse.Namespace,
    chargers: int,
    rate: float = 0.0,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Connect chargers, run the load, return (ready, result, server CPU share in the window)."""
    count = max(1, min(args.load_procs, chargers))
    loads: list[Load] = []
    try:
        first = 0
        for index in range(count):
            share = chargers // count + (1 if index < chargers % count else 0)
            argv = [
                "--port",
                str(server.port),
                "--first",
                str(first),
                "--chargers",
                str(share),
                "--wave",
                str(max(1, args.wave // count)),
                "--duration",
                str(args.duration),
                "--warmup",
                str(args.warmup),
                "--rate",
                str(rate / count),
                "--max-wait",
                str(args.connect_timeout + 120),
                "--connect-timeout",
                str(args.connect_timeout),
            ]
            loads.append(Load(procs, workdir, index, argv))
            first += share
        readies = [load.expect("ready", args.connect_timeout + 60) for load in loads]
        ready = {
            "connected": sum(r["connected"] for r in readies),
            "connect_s": max(r["connect_s"] for r in readies),
            "errors": sum(r["connect_errors"] + r["boot_rejected"] for r in readies),
            "first_errors": [e for r in readies for e in r["first_errors"]][:5],
        }
        # The load starts on a quiet server: what the connect storm left to do (registry
        # writes) is measured here, not mixed into the window.
        ready["busy_s"], ready["slowest_health_s"] = server.wait_idle()
        if on_ready is not None:
            on_ready(ready)
        for load in loads:
            load.send("go")
        time.sleep(args.warmup)
        cpu0, busy0, wall0 = proc_cpu_s(server.pid), machine_busy_s(), time.perf_counter()
        time.sleep(args.duration)
        wall = time.perf_counter() - wall0
        share = (proc_cpu_s(server.pid) - cpu0) / wall
        machine = (machine_busy_s() - busy0) / wall
        result = merge([load.expect("result", args.duration + 60) for load in loads])
        result["machine_cpu"] = machine
        return ready, result, share
    finally:
        for load in loads:
            load.stop()


# Reporting -----------------------------------------------------------------------------------


def figures(result: dict[str, Any]) -> str:
    return (
        f"{result['calls_per_s']:,.0f} calls/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms"
    )


def health(result: dict[str, Any], server_cpu: float) -> str:
    text = (
        f"errors {result['errors']}, server CPU {server_cpu:.0%}, "
        f"client CPU {result['client_cpu']:.0%}, all CPUs {result['machine_cpu']:.0%} of "
        f"{(os.cpu_count() or 1) * 100}%, warm-up max {result['warmup_max_ms']:.0f} ms"
    )
    if result.get("unsent"):
        text += f", {result['unsent']:,} calls not sent (every charger waiting)"
    if result["first_errors"]:
        text += f"; first errors: {result['first_errors'][:3]}"
    return text


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    """A scratch dir for config dirs and logs: removed unless asked to keep or a phase failed."""
    path = Path(tempfile.mkdtemp(prefix="evhub-bench-ocpp-"))
    failed = True
    try:
        yield path
        failed = False
    finally:
        if keep or failed:
            print(f"logs kept in {path}", file=sys.stderr if failed else sys.stdout)
        else:
            shutil.rmtree(path, ignore_errors=True)


def settled(ready: dict[str, Any]) -> str:
    return (
        f"after the last charger was ready the server stayed busy {ready['busy_s']:.1f} s, "
        f"slowest /api/health meanwhile {ready['slowest_health_s'] * 1000:,.0f} ms"
    )


def phase_throughput(procs: Processes, work: Path, args: argparse.Namespace) -> float | None:
    hub = Server(procs, "hub", work / "throughput")
    hub.workdir.mkdir()
    try:
        hub.start_hub()
        ready, result, cpu = run_load(procs, hub.workdir, hub, args, args.chargers)
    finally:
        hub.stop()
    print(
        f"evhub, {ready['connected']:,}/{args.chargers:,} chargers, closed loop, "
        f"{args.duration:g} s: {figures(result)}"
    )
    print(f"  ({health(result, cpu)}; {settled(ready)})")
    calls: float = result["calls_per_s"]
    return calls if result["calls"] else None


def phase_baseline(
    procs: Processes, work: Path, args: argparse.Namespace, evhub_calls: float | None
) -> None:
    base = Server(procs, "baseline", work / "baseline")
    base.workdir.mkdir()
    try:
        base.start_baseline()
        ready, result, cpu = run_load(procs, base.workdir, base, args, args.chargers)
    finally:
        base.stop()
    print(
        f"baseline ocpp {version('ocpp')} minimal central system (websockets "
        f"{version('websockets')}), {ready['connected']:,}/{args.chargers:,} chargers, same "
        f"load: {figures(result)}"
    )
    print(f"  ({health(result, cpu)})")
    if evhub_calls and result["calls_per_s"]:
        ratio = evhub_calls / result["calls_per_s"]
        print(f"ratio evhub/baseline: {ratio:.2f}x calls/s; target >= 3x ({verdict(ratio >= 3)})")


def phase_big(procs: Processes, work: Path, args: argparse.Namespace) -> None:
    hub = Server(procs, "hub", work / "big")
    hub.workdir.mkdir()
    memory: dict[str, int] = {}
    try:
        hub.start_hub()
        hub.wait_idle()
        time.sleep(args.settle)
        memory["before"] = proc_rss_kib(hub.pid)

        def measure(ready: dict[str, Any]) -> None:
            time.sleep(args.settle)
            memory["after"] = proc_rss_kib(hub.pid)
            memory["peak"] = proc_rss_kib(hub.pid, "VmHWM")

        ready, result, cpu = run_load(procs, hub.workdir, hub, args, args.big, args.rate, measure)
        memory["end"] = proc_rss_kib(hub.pid)
    finally:
        hub.stop()
    connected = ready["connected"]
    print(
        f"{connected:,}/{args.big:,} chargers connected, booted and reporting in "
        f"{ready['connect_s']:.1f} s ({connected / max(ready['connect_s'], 1e-9):,.0f}/s, "
        f"at most {args.wave} connecting at a time), {ready['errors']} errors; "
        f"target {args.big:,} connected ({verdict(connected == args.big)})"
    )
    print(f"  ({settled(ready)})")
    if ready["first_errors"]:
        print(f"  (first errors: {ready['first_errors'][:3]})")
    print(
        f"paced {args.rate:,.0f} calls/s over {connected:,} chargers, {args.duration:g} s: "
        f"{figures(result)}; target p99 < 50 ms ({verdict(0 < result['p99_ms'] < 50)})"
    )
    print(f"  ({health(result, cpu)})")
    per_charger = (memory["after"] - memory["before"]) / max(connected, 1)
    print(
        f"hub RSS {memory['before'] / 1024:,.1f} MiB before, {memory['after'] / 1024:,.1f} MiB "
        f"with {connected:,} chargers: {per_charger:,.1f} KiB per charger; target <= 40 KiB "
        f"({verdict(per_charger <= 40)})"
    )
    print(
        f"  (hub RSS peak {memory['peak'] / 1024:,.1f} MiB; after the paced load "
        f"{memory['end'] / 1024:,.1f} MiB)"
    )


def git_revision() -> str:
    """The commit the hub runs from, +dirty when the tree has changes."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "(no git)"
    return out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, help="chargers for the throughput phases")
    parser.add_argument("--duration", type=float, help="measured seconds of each load")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds before each")
    parser.add_argument("--big", type=int, help="chargers connected in the 10k phase")
    parser.add_argument("--rate", type=float, default=2000.0, help="paced calls/s, 10k phase")
    parser.add_argument("--wave", type=int, default=500, help="chargers connecting at a time")
    parser.add_argument("--load-procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before RSS readings")
    parser.add_argument("--connect-timeout", type=float, default=600.0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-10k", action="store_true")
    parser.add_argument("--quick", action="store_true", help="200 chargers, 5 s, 1,000 big")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    quick = args.quick
    args.chargers = args.chargers or (200 if quick else 1000)
    args.duration = args.duration or (5.0 if quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 3.0)
    args.big = args.big or (1000 if quick else 10_000)

    print(
        f"evhub {git_revision()}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs (load "
        f"average {os.getloadavg()[0]:.2f} before start); hub, baseline and {args.load_procs} "
        f"load process(es) each on their own; warm-up {args.warmup:g} s"
    )
    procs = Processes()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with workspace(args.keep_logs) as work:
            evhub_calls = phase_throughput(procs, work, args)
            if not args.skip_baseline:
                phase_baseline(procs, work, args, evhub_calls)
            if not args.skip_10k:
                phase_big(procs, work, args)
    except BenchError as err:
        print(f"bench ocpp: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench ocpp: interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
