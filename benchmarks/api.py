"""API under load benchmark: charger round trips while a dashboard polls GET /api/states.

The hub runs as its own process with one OCPP listener and the default integrations (the
recorder on), as in benchmarks/ocpp.py; --chargers (5,000) simulated OCPP 1.6 chargers
(benchmarks/ocpp_load.py) connect and then send --rate (500) calls/s in total, paced by the
clock, for --duration (60 s) after a warm-up, in --rounds (1) pairs of windows on the same
hub (the chargers reconnect for each), after a first connection that is not measured:

1. idle: no API client;
2. polled: one client GETs /api/states every --interval (1 s) with a bearer token, as a
   browser does (Accept-Encoding gzip unless --no-gzip, If-None-Match with the last ETag),
   from the moment the chargers are ready to the end of the window.

Printed: charger p50/p99 of each window, and the p99 of the polled windows less that of the
idle ones (medians over the rounds) against the target, under 10 ms added. A window lasts a
minute so that each holds one of the hub's once-a-minute jobs (the uptime engine's update,
a few hundred milliseconds of slices at 5,000 chargers): shorter windows catch it by chance,
and their alternation with its period can make it fall in the same kind of window each time.
Per poll: bytes on the wire and decoded, time to the first and last byte, answers that were
304, and the hub's CPU (its CPU in the polled windows less the idle ones). With --since the
client polls ?since= (changed since its last answer) instead; with --no-uptime the uptime
engine is off, which leaves the API's own cost to be seen.

Only loopback; every process started here is stopped on the way out, error or not.

    scripts/bench api [--chargers N] [--rate R] [--duration S] [--rounds N] [--interval S]
        [--since] [--no-gzip] [--no-uptime]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import importlib.util
import json
import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_SPEC = importlib.util.spec_from_file_location(
    "bench_ocpp", Path(__file__).resolve().parent / "ocpp.py"
)
assert _SPEC is not None
assert _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

TARGET_ADDED_MS = 10.0
USERNAME = "bench"
PASSWORD = "bench load password 1"


# The API client ------------------------------------------------------------------------------


def request(
    base: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on its own connection: (status, headers, body)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        sent = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        conn.request(method, path, payload, sent)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def bearer_token(base: str) -> str:
    """Onboard the first admin over the API and make a long-lived token for them."""
    creds = {"username": USERNAME, "password": PASSWORD}
    status, headers, body = request(base, "POST", "/api/onboarding", creds)
    if status not in (200, 201):
        raise bench.BenchError(f"onboarding answered {status}: {body[:200]!r}")
    cookie = headers.get("set-cookie", "").split(";", 1)[0]
    csrf = json.loads(body)["csrf_token"]
    status, _, body = request(
        base,
        "POST",
        "/api/tokens",
        {"name": "api bench"},
        {"Cookie": cookie, "X-CSRF-Token": csrf},
    )
    if status != 201:
        raise bench.BenchError(f"token creation answered {status}: {body[:200]!r}")
    return str(json.loads(body)["token"])


class Poller:
    """One dashboard: GET /api/states every interval on one kept-alive connection."""

    def __init__(self, base: str, token: str, interval: float, since: bool, gzip: bool) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or bench.HOST, url.port or 80
        self.token = token
        self.interval = interval
        self.since = since
        self.encodings = "gzip, deflate, br" if gzip else "identity"
        self.stop_flag = threading.Event()
        self.polls: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.decoded_first = 0
        self.entities_first = 0
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        self._thread.join(120)

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        etag: str | None = None
        revision = "0"
        next_at = time.perf_counter()
        while not self.stop_flag.is_set():
            headers = {
                "Authorization": f"Bearer {self.token}",
                "Accept-Encoding": self.encodings,
            }
            if etag is not None:
                headers["If-None-Match"] = etag
            path = f"/api/states?since={revision}" if self.since else "/api/states"
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                begin = time.perf_counter()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                first = time.perf_counter()
                body = response.read()
                last = time.perf_counter()
            except (OSError, http.client.HTTPException) as err:
                self.errors.append(f"{type(err).__name__}: {err}")
                if conn is not None:
                    conn.close()
                conn = None
            else:
                if response.status not in (200, 304):
                    self.errors.append(f"{response.status}: {body[:200]!r}")
                else:
                    etag = response.getheader("ETag") or etag
                    encoded = response.getheader("Content-Encoding")
                    if response.status == 200 and (not self.polls or self.since):
                        decoded = gzip.decompress(body) if encoded == "gzip" else body
                        document = json.loads(decoded)
                        if self.since:
                            revision = document["revision"]
                        if not self.polls:
                            self.decoded_first = len(decoded)
                            self.entities_first = len(
                                document["states"] if self.since else document
                            )
                    self.polls.append(
                        {
                            "status": response.status,
                            "bytes": len(body),
                            "first_ms": (first - begin) * 1000,
                            "last_ms": (last - begin) * 1000,
                            "encoding": encoded or "identity",
                        }
                    )
            next_at += self.interval
            self.stop_flag.wait(max(0.0, next_at - time.perf_counter()))
            next_at = max(next_at, time.perf_counter() - self.interval)
        if conn is not None:
            conn.close()


# Phases --------------------------------------------------------------------------------------


def window(
    procs: Any,
    hub: Any,
    args: argparse.Namespace,
    poller: Poller | None = None,
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Connect the chargers, run the paced load (polled or not), return what was measured."""

    def on_ready(ready: dict[str, Any]) -> None:
        if poller is not None:
            poller.start()

    try:
        return bench.run_load(  # type: ignore[no-any-return]
            procs, hub.workdir, hub, args, args.chargers, args.rate, on_ready
        )
    finally:
        if poller is not None:
            poller.stop()


def ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(fraction * len(ordered) + 0.999999) - 1)] if ordered else 0.0


def report_polls(pollers: list[Poller], cpu_ms: float) -> None:
    polls = [p for poller in pollers for p in poller.polls]
    errors = [e for poller in pollers for e in poller.errors]
    if not polls:
        print(f"  no poll answered; errors: {errors[:3]}")
        return
    full = [p for p in polls if p["status"] == 200]
    not_modified = len(polls) - len(full)
    wire = statistics.mean(p["bytes"] for p in full) if full else 0.0
    last = [p["last_ms"] for p in polls]
    first = [p["first_ms"] for p in polls]
    encodings = sorted({p["encoding"] for p in full})
    print(
        f"  {len(polls)} polls ({not_modified} answered 304), {pollers[0].entities_first:,} "
        f"states, the first answer {pollers[0].decoded_first / 1e6:,.1f} MB decoded; "
        f"{wire / 1e6:,.2f} MB on the wire per 200 ({', '.join(encodings) or '-'})"
    )
    print(
        f"  per poll: first byte p50 {ms(first, 0.5):,.1f} ms, last byte p50 "
        f"{ms(last, 0.5):,.1f} ms, max {max(last):,.1f} ms; hub CPU {cpu_ms:,.0f} ms per poll "
        f"(its CPU share polled less idle, over the windows)"
    )
    if errors:
        print(f"  poll errors: {len(errors)}, first: {errors[:3]}")


def run(procs: Any, work: Path, args: argparse.Namespace) -> bool:
    hub = bench.Server(procs, "hub", work / "hub")
    hub.workdir.mkdir()
    idle_p99: list[float] = []
    polled_p99: list[float] = []
    pollers: list[Poller] = []
    cpu_s = 0.0
    what = "?since= (changed since the last answer)" if args.since else "/api/states"
    try:
        hub.start_hub()
        base = hub.health_url.rsplit("/api/", 1)[0]
        token = bearer_token(base)
        # A fleet's first connection to a fresh hub creates its devices, entities and first
        # history (the first window after it was the slower one, polled or not): the windows
        # measure a hub that has seen its chargers before.
        ready, _, _ = window(procs, hub, argparse.Namespace(**{**vars(args), "duration": 10.0}))
        print(
            f"{ready['connected']:,}/{args.chargers:,} chargers connected to the fresh hub in "
            f"{ready['connect_s']:.1f} s ({ready['errors']} errors), then 10 s of load not "
            f"measured; {bench.settled(ready)}"
        )
        for number in range(1, args.rounds + 1):
            _, idle, idle_cpu = window(procs, hub, args, None)
            if number == 1:
                print(
                    f"each window: paced {args.rate:,.0f} calls/s over {idle['connected']:,} "
                    f"chargers for {args.duration:g} s; polled: one client GETs {what} every "
                    f"{args.interval:g} s"
                )
            print(f"round {number} idle:   {bench.figures(idle)}")
            print(f"  ({bench.health(idle, idle_cpu)})")
            poller = Poller(base, token, args.interval, args.since, not args.no_gzip)
            pollers.append(poller)
            _, polled, polled_cpu = window(procs, hub, args, poller)
            print(f"round {number} polled: {bench.figures(polled)}")
            print(f"  ({bench.health(polled, polled_cpu)})")
            if idle["calls"] and polled["calls"]:
                idle_p99.append(idle["p99_ms"])
                polled_p99.append(polled["p99_ms"])
            cpu_s += max(0.0, polled_cpu - idle_cpu) * args.duration
    finally:
        hub.stop()
    report_polls(pollers, cpu_s * 1000 / max(1, sum(len(p.polls) for p in pollers)))
    if not idle_p99:
        print("no window completed")
        return False
    idle_median, polled_median = statistics.median(idle_p99), statistics.median(polled_p99)
    added = polled_median - idle_median
    ok = added < TARGET_ADDED_MS
    print(
        f"charger p99, median of {len(idle_p99)} rounds: {idle_median:.1f} ms idle, "
        f"{polled_median:.1f} ms polled: {added:+.1f} ms added; target < "
        f"{TARGET_ADDED_MS:g} ms added ({bench.verdict(ok)})"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=500.0, help="paced charger calls/s")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per window")
    parser.add_argument("--rounds", type=int, default=1, help="idle and polled windows each")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--since", action="store_true", help="poll ?since= instead")
    parser.add_argument("--no-gzip", action="store_true", help="do not accept gzip")
    parser.add_argument(
        "--no-uptime",
        action="store_true",
        help="turn the uptime engine off: its minute job out of the windows, the API's own cost",
    )
    parser.add_argument("--wave", type=int, default=500, help="chargers connecting at a time")
    parser.add_argument("--load-procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--connect-timeout", type=float, default=600.0)
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    print(
        f"evhub {bench.git_revision()}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.2f} before start); warm-up {args.warmup:g} s"
    )
    if args.no_uptime:
        bench.CONFIG += "uptime: false\n"
    procs = bench.Processes()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with bench.workspace(args.keep_logs) as work:
            run(procs, work, args)
    except bench.BenchError as err:
        print(f"bench api: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench api: interrupted", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
