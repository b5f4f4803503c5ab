"""A real `evhub run` process for tests that kill it, and chargers talking to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import aiohttp

from tests.integrations.ocpp.conftest import RawChargePoint

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """A blocking JSON request to the hub on a loopback port: the status, the JSON body (None
    when empty) and the response headers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None, dict(err.headers)


async def start_hub(
    config_dir: Path, *, log_level: str = "warning", stderr: int | IO[bytes] | None = None
) -> asyncio.subprocess.Process:
    """Start `evhub run --config config_dir` as a child process."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from hub.cli import main; sys.exit(main())",
        "run",
        "--config",
        str(config_dir),
        "--log-level",
        log_level,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL if stderr is None else stderr,
    )


async def kill(child: asyncio.subprocess.Process) -> None:
    """SIGKILL the child (if it still runs) and reap it."""
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGKILL)
        await child.wait()


async def wait_port(
    port: int, timeout: float = 60, child: asyncio.subprocess.Process | None = None
) -> None:
    """Wait until something accepts connections on port (failing early if child exits)."""
    deadline = time.monotonic() + timeout
    while True:
        if child is not None and child.returncode is not None:
            raise AssertionError(f"evhub exited early with {child.returncode}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def open_charger(port: int, cp_id: str, protocol: str = "ocpp1.6") -> RawChargePoint:
    """Connect a charge point to the OCPP listener on port (security profile 0)."""
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(
            f"ws://127.0.0.1:{port}/ocpp/{cp_id}", protocols=(protocol,), autoping=True
        )
    except BaseException:
        await session.close()
        raise
    return RawChargePoint(session, ws)
