"""What `evhub run` writes to its log, read from a real process's stderr.

A port another program holds is one clear line, never a traceback, and "evhub started"
is not said while a listener is down; OCPP frames are DEBUG detail, never INFO.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp

from tests.hub_process import ROOT, free_port, kill, start_hub, wait_port

# hub.cli.LOG_FORMAT: "<date> <time> <LEVEL> <logger>: <message>".
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?P<level>[A-Z]+) +(?P<logger>[\w.]+): ")
# An OCPP-J frame: [2,"id","Action",{...}] (CALL), [3,"id",{...}] (CALLRESULT), [4,...].
FRAME = re.compile(r'\[\s*[234]\s*,\s*"')


@contextlib.contextmanager
def _held_port() -> Iterator[int]:
    """A loopback port held by a listening socket of the test's own: "another program"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _config(directory: Path, http_port: int, ocpp_port: int, extra: str = "") -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "configuration.yaml").write_text(
        f"http:\n  server_host: 127.0.0.1\n  server_port: {http_port}\n  zeroconf: false\n"
        "ocpp:\n  listeners:\n"
        f"    - host: 127.0.0.1\n      port: {ocpp_port}\n      security_profile: 0\n"
        "  unknown_chargers: accept\n" + extra
    )
    return directory


def _run_briefly(config_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "run", "--config", str(config_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_an_http_port_in_use_is_one_clear_line_and_the_hub_does_not_start(
    tmp_path: Path,
) -> None:
    with _held_port() as port:
        result = _run_briefly(_config(tmp_path / "config", port, 0))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    expected = f"HTTP port {port} on 127.0.0.1 is in use by another program"
    assert output.count(expected) == 1, output
    assert "Traceback" not in output
    assert "evhub started" not in output
    assert "Errno" not in output


async def _read_lines(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace").rstrip("\n"))


async def _wait_for(lines: list[str], text: str, child: asyncio.subprocess.Process) -> str:
    """The first log line containing text, waiting up to 60 s for it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in lines:
            if text in line:
                return line
        assert child.returncode is None, "\n".join(lines)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log line with {text!r}:\n" + "\n".join(lines))


async def _stop(child: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    try:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
        await asyncio.wait_for(child.wait(), 30)
        await asyncio.wait_for(reader, 10)
    finally:
        await kill(child)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


@contextlib.asynccontextmanager
async def _hub_log(
    config_dir: Path, log_level: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[str]]]:
    """`evhub run` on config_dir, its stderr read into a list of lines; stopped at the end."""
    lines: list[str] = []
    child = await start_hub(config_dir, log_level=log_level, stderr=asyncio.subprocess.PIPE)
    assert child.stderr is not None
    reader = asyncio.create_task(_read_lines(child.stderr, lines))
    try:
        yield child, lines
    finally:
        await _stop(child, reader)


async def _two_simulators_log(tmp_path: Path, prefix: str, log_level: str, last: str) -> list[str]:
    """The log of a hub with two simulated chargers on its own listener, {prefix}-1 (OCPP
    1.6) and {prefix}-2 (2.0.1), until both booted and a line with last was written.

    Their random tags are accepted, so their sessions charge and send meter values at once
    (refused, a session stops before its first sample, but for the odd one that wins the race).
    """
    simulator = (
        "  authorize_unknown_id_tags: true\n"
        "simulator:\n  speed: 20\n  meter_interval: 1\n  stations:\n"
        f"    - id: {prefix}-1\n      version: '1.6'\n"
        f"    - id: {prefix}-2\n      version: 2.0.1\n"
    )
    config_dir = _config(tmp_path / "config", free_port(), 0, simulator)
    async with _hub_log(config_dir, log_level) as (child, lines):
        await _wait_for(lines, f"{prefix}-1: boot accepted", child)
        await _wait_for(lines, f"{prefix}-2: boot accepted", child)
        await _wait_for(lines, last, child)
    return lines


async def test_an_ocpp_port_in_use_is_one_line_per_attempt_and_the_start_names_it(
    tmp_path: Path,
) -> None:
    http_port = free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    ocpp_port = blocker.getsockname()[1]
    reason = f"OCPP port {ocpp_port} on 127.0.0.1 is in use by another program"
    config_dir = _config(tmp_path / "config", http_port, ocpp_port)
    try:
        async with _hub_log(config_dir, "info") as (child, lines):
            await wait_port(http_port, child=child)
            line = await _wait_for(lines, "evhub running without", child)
            assert line.split()[2] == "WARNING"
            assert line.endswith(f"evhub running without ocpp ({reason}; retrying)")
            # The health check tells the same.
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{http_port}/api/health") as resp,
            ):
                health = await resp.json()
            assert health["status"] == "degraded"
            assert "ocpp" in health["problems"]
            assert health["integrations"]["ocpp"]["state"] == "retrying"
            assert health["integrations"]["ocpp"]["error"] == reason
            # The other program lets go: the retry (5 s later) listens, and only now is the
            # hub said to be started.
            blocker.close()
            started = await _wait_for(lines, "evhub started", child)
            assert started.split()[2] == "INFO"
            await wait_port(ocpp_port, child=child)
    finally:
        blocker.close()
    log = "\n".join(lines)
    assert "Traceback" not in log
    assert "Errno" not in log
    attempts = [line for line in lines if reason in line and "Set-up of ocpp failed" in line]
    assert len(attempts) == 1, log
    assert log.count("evhub started") == 1
    assert log.index("evhub running without") < log.index("evhub started")


async def test_ocpp_frames_are_logged_at_debug_never_at_info(tmp_path: Path) -> None:
    """Simulated chargers on the hub's own listener, at --log-level debug: every frame line
    (either side's) is DEBUG, so at the default INFO there is none."""
    lines = await _two_simulators_log(tmp_path, "SIM-LOG", "debug", '"MeterValues"')
    records = [(LINE.match(line), line) for line in lines]
    frames = [(match, line) for match, line in records if match and FRAME.search(line)]
    # Both versions' frames, both ways, were there to be logged.
    assert any("BootNotification" in line and "SIM-LOG-1" in line for _, line in frames)
    assert any("BootNotification" in line and "SIM-LOG-2" in line for _, line in frames)
    assert any("receive message" in line for _, line in frames)
    at_info = [line for match, line in frames if match["level"] != "DEBUG"]
    assert at_info == [], "\n".join(at_info)
    # What is left at INFO says what happened, once: connected, booted.
    info = [line for match, line in records if match and match["level"] == "INFO"]
    assert any("SIM-LOG-1: connected to" in line for line in info)
    assert any("SIM-LOG-1: boot accepted" in line for line in info)


async def test_no_frame_reaches_the_log_at_info(tmp_path: Path) -> None:
    """What `scripts/run` shows: the chargers connect and boot, and not one frame is logged."""
    # Each boot's BootNotification and StatusNotifications went both ways before the start.
    lines = await _two_simulators_log(tmp_path, "SIM-Q", "info", "evhub started")
    assert [line for line in lines if FRAME.search(line)] == []
    assert not any(".wire:" in line for line in lines)
