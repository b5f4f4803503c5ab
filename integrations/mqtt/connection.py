"""The hub's one connection to the MQTT broker: connect, subscribe, publish, reconnect.

One aiomqtt client per hub. The hub's own availability is a retained last will on
``<prefix>/status`` ("offline"; "online" once connected, "offline" published before a clean
disconnect). A lost connection is retried with backoff (1 s doubling to 60 s, with jitter)
until the integration unloads; every subscription is made again on each connection, and
whoever asked to be told (the export, the chargers) is told of each connection and loss.
Outgoing messages go through a bounded queue drained in batches, so a burst never
stalls the loop and a broker that is away never grows memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import aiomqtt

from hub.core import Hub
from hub.plugins import health_reporter

_LOGGER = logging.getLogger(__name__)

ONLINE: Final = "online"
OFFLINE: Final = "offline"
MIN_BACKOFF: Final = 1.0
MAX_BACKOFF: Final = 60.0
BATCH: Final = 100
SUBSCRIBE_BATCH: Final = 200

MessageHandler = Callable[[str, bytes, bool], None]


class MqttConnection:
    """The broker connection of one set-up of the MQTT integration."""

    def __init__(
        self,
        hub: Hub,
        domain: str,
        *,
        host: str,
        port: int,
        client_id: str | None,
        username: str | None,
        password: str | None,
        tls: dict[str, Any] | None,
        keepalive: int,
        status_topic: str,
        max_queued: int = 100_000,
    ) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self.client_id = client_id
        self.username = username
        self.password = password
        self.tls = tls
        self.keepalive = keepalive
        self.status_topic = status_topic
        self.max_queued = max_queued
        self.health = health_reporter(hub, domain, "broker")
        self.client: aiomqtt.Client | None = None
        self.handlers: dict[str, MessageHandler] = {}
        self.on_connect: list[Callable[[], None]] = []
        self.on_disconnect: list[Callable[[], None]] = []
        self._outgoing: deque[tuple[str, bytes, int, bool]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._new_topics: list[str] = []
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        # Counters (the API, /metrics and the benchmark read them).
        self.received = 0
        self.sent = 0
        self.dropped = 0
        self.connections = 0

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"

    def start(self, create_task: Callable[..., asyncio.Task[None]]) -> None:
        """Connect in the background (and keep reconnecting) until stop."""
        self._task = create_task(self._run(), f"broker {self.where}")

    async def stop(self) -> None:
        """Say offline (retained) and disconnect cleanly."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # Subscriptions and publishing -------------------------------------------------------

    def subscribe(self, topic: str, handler: MessageHandler) -> Callable[[], None]:
        """Hand every message on topic (exact, no wildcards) to handler(topic, payload, retain)."""
        self.handlers[topic] = handler
        if self.connected.is_set():
            self._new_topics.append(topic)
            self._wake.set()

        def unsubscribe() -> None:
            if self.handlers.get(topic) is handler:
                del self.handlers[topic]

        return unsubscribe

    def publish(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 0
    ) -> bool:
        """Queue a message; False (counted as dropped) when not connected or the queue is full."""
        if not self.connected.is_set() or len(self._outgoing) >= self.max_queued:
            self.dropped += 1
            return False
        data = payload.encode() if isinstance(payload, str) else payload
        self._outgoing.append((topic, data, qos, retain))
        if len(self._outgoing) == 1:
            self._wake.set()
        return True

    @property
    def queued(self) -> int:
        """Messages waiting to be written."""
        return len(self._outgoing)

    # The connection -------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext | None:
        """The TLS context (reads files: run in the executor)."""
        tls = self.tls
        if not tls:
            return None
        context = ssl.create_default_context(cafile=tls.get("ca_certs"))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls.get("certfile"):
            context.load_cert_chain(tls["certfile"], tls.get("keyfile"))
        if tls.get("insecure"):
            context.check_hostname = False
        return context

    def _client(self, tls_context: ssl.SSLContext | None) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=self.client_id,
            will=aiomqtt.Will(self.status_topic, OFFLINE.encode(), qos=1, retain=True),
            tls_context=tls_context,
            keepalive=self.keepalive,
            timeout=10,
            clean_session=True,
        )
        # A batch is written at once: that many pending publishes are the design, not a jam.
        client.pending_calls_threshold = BATCH * 2
        return client

    async def _run(self) -> None:
        backoff = MIN_BACKOFF
        failures = 0
        while True:
            try:
                tls_context = await self.hub.run_in_executor(self._tls_context)
            except (OSError, ssl.SSLError) as err:
                self._lost(f"TLS set-up failed: {err}", failures)
                failures += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            client = self._client(tls_context)
            try:
                async with client:
                    self.client = client
                    await self._connected(client)
                    failures = 0
                    backoff = MIN_BACKOFF
                    await self._serve(client)

            except (aiomqtt.MqttError, OSError) as err:
                failures += 1
                self._lost(str(err) or type(err).__name__, failures)
            except Exception as err:
                failures += 1
                _LOGGER.exception("MQTT connection to %s failed", self.where)
                self._lost(f"{type(err).__name__}: {err}", failures)
            finally:
                self.client = None
                if self.connected.is_set():
                    self.connected.clear()
                    self._outgoing.clear()
                    for callback in list(self.on_disconnect):
                        callback()
            delay = backoff * random.uniform(0.8, 1.2)
            backoff = min(backoff * 2, MAX_BACKOFF)
            await asyncio.sleep(delay)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Read and write until the connection fails; say offline when cancelled."""
        parts = {
            asyncio.ensure_future(self._read(client)),
            asyncio.ensure_future(self._write(client)),
        }
        try:
            done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Unloading or the hub stopping: a clean disconnect sends no last will.
            with contextlib.suppress(aiomqtt.MqttError, asyncio.CancelledError):
                await client.publish(
                    self.status_topic, OFFLINE.encode(), qos=1, retain=True, timeout=1
                )
            raise
        finally:
            for part in parts:
                part.cancel()
            await asyncio.gather(*parts, return_exceptions=True)
        for part in done:
            error = part.exception()
            if error is not None:
                raise error
        raise aiomqtt.MqttError("the connection ended")

    def _lost(self, reason: str, failures: int) -> None:
        self.last_error = reason
        if failures <= 1 or failures % 10 == 0:
            _LOGGER.warning("MQTT broker %s: %s (retrying with backoff)", self.where, reason)
        self.health.failed(f"broker {self.where}: {reason}")

    async def _connected(self, client: aiomqtt.Client) -> None:
        self.connections += 1
        self.last_error = None
        await client.publish(self.status_topic, ONLINE.encode(), qos=1, retain=True)
        topics = list(self.handlers)
        for start in range(0, len(topics), SUBSCRIBE_BATCH):
            await client.subscribe(
                [(topic, 0) for topic in topics[start : start + SUBSCRIBE_BATCH]]
            )
        self._new_topics.clear()
        self.connected.set()
        self.health.ok()
        _LOGGER.info("Connected to the MQTT broker %s (%d topics)", self.where, len(topics))
        for callback in list(self.on_connect):
            callback()

    async def _read(self, client: aiomqtt.Client) -> None:
        handlers = self.handlers
        async for message in client.messages:
            self.received += 1
            handler = handlers.get(message.topic.value)
            if handler is None:
                continue
            payload: Any = message.payload
            data = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
            try:
                handler(message.topic.value, data, bool(message.retain))
            except Exception:
                # One bad message or handler bug never ends the connection.
                _LOGGER.exception("MQTT message on %s not handled", message.topic.value)

    async def _write(self, client: aiomqtt.Client) -> None:
        outgoing = self._outgoing
        while True:
            if self._new_topics:
                topics, self._new_topics = self._new_topics, []
                for start in range(0, len(topics), SUBSCRIBE_BATCH):
                    await client.subscribe(
                        [(topic, 0) for topic in topics[start : start + SUBSCRIBE_BATCH]]
                    )
            if not outgoing:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [outgoing.popleft() for _ in range(min(BATCH, len(outgoing)))]
            await asyncio.gather(
                *(
                    client.publish(topic, payload, qos=qos, retain=retain)
                    for topic, payload, qos, retain in batch
                )
            )
            self.sent += len(batch)
            await asyncio.sleep(0)  # let the readers in between batches
