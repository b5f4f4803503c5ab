"""Fixtures for the MQTT tests: a real mosquitto broker on a free loopback port.

Without mosquitto the tests are skipped on a developer's machine and fail in CI (CI=true):
.ci/run installs the Debian package.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

import aiomqtt
import pytest

from hub.testing import (  # noqa: F401 (evhub's pytest plugin's fixtures)
    api_user,
    hub_factory,
)

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str | None:
    """The mosquitto executable, if installed."""
    for path in MOSQUITTO_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("mosquitto")


def no_broker(message: str) -> NoReturn:
    """Skip a test for want of mosquitto, or fail it in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """A mosquitto of the test's own, which it may stop and start again on the same port."""

    def __init__(self, binary: str, directory: Path, listener: str = "") -> None:
        self.binary = binary
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + (listener or "allow_anonymous true\n")
            + "persistence false\nlog_dest none\n"
        )
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start mosquitto and wait until it accepts connections."""
        process = self.process = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            str(self.config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(500):
            if process.returncode is not None:
                error = await process.stderr.read() if process.stderr else b""
                raise RuntimeError(f"mosquitto exited: {error.decode()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise RuntimeError("mosquitto did not listen within 10 s")

    async def stop(self) -> None:
        """Stop mosquitto (its retained messages are lost: persistence is off)."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """A running mosquitto on a free loopback port."""
    binary = mosquitto_binary()
    if binary is None:
        no_broker("mosquitto is not installed (apt-get install mosquitto)")
    started = Broker(binary, tmp_path)
    await started.start()
    yield started
    await started.stop()


class Watcher:
    """A plain MQTT client of the test: what was published on some topics."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.port = port
        self.topics = topics
        self.messages: list[tuple[str, bytes, bool]] = []
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.client: aiomqtt.Client | None = None

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        await asyncio.wait_for(self.ready.wait(), 10)

    async def _run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            self.client = client
            for topic in self.topics:
                await client.subscribe(topic)
            self.ready.set()
            async for message in client.messages:
                payload: Any = message.payload
                self.messages.append(
                    (message.topic.value, bytes(payload or b""), bool(message.retain))
                )

    def on(self, topic: str) -> list[bytes]:
        """Payloads published on topic, oldest first."""
        return [payload for got, payload, _ in self.messages if got == topic]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def watch() -> AsyncIterator[Callable[..., Awaitable[Watcher]]]:
    """``await watch(port, ["topic/#"])``: a subscriber collecting messages."""
    started: list[Watcher] = []

    async def make(port: int, topics: list[str]) -> Watcher:
        watcher = Watcher(port, topics)
        await watcher.start()
        started.append(watcher)
        return watcher

    yield make
    for watcher in started:
        await watcher.stop()


async def wait_until(
    condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll condition (real time) until it is truthy; fail after timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
