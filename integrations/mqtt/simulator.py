"""Simulated go-eChargers publishing on a real broker, as go-e's MQTT API v2 says.

Each charger publishes its API keys as retained JSON on ``go-eCharger/<serial>/<key>``,
takes writes on ``<key>/set`` (amp, frc, psm), answers on ``<key>/result`` and publishes the
new value. A simulator of one charger has its last will on ``mcc`` (false, retained), as the
real one; a fleet (the benchmark's thousand chargers) shares one connection. The cycle
scenario walks each charger through idle, plugged, charging, complete and back.

``evhub simulate mqtt --broker 127.0.0.1 --port 1883 --serial 012345``
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from typing import Any, Final

import aiomqtt
import orjson

_LOGGER = logging.getLogger(__name__)

PREFIX: Final = "go-eCharger"
# carState: Unknown/Error=0, Idle=1, Charging=2, WaitCar=3, Complete=4, Error=5
CAR: Final = {"idle": 1, "charging": 2, "plugged": 3, "complete": 4, "fault": 5}
CYCLE: Final = (("idle", 40.0), ("plugged", 10.0), ("charging", 90.0), ("complete", 20.0))
VOLTAGE: Final = 230.0
WRITABLE: Final = {"amp", "frc", "psm"}


class SimulatedGoE:
    """One go-eCharger's API keys and how they change."""

    def __init__(self, serial: str, *, prefix: str = PREFIX, ama: int = 32) -> None:
        self.serial = serial
        self.base = f"{prefix}/{serial}"
        self.state = "idle"
        self.amp = 16
        self.ama = ama
        self.frc = 0
        self.psm = 0
        self.eto = 1_234_000.0
        self.wh = 0.0
        self.rbt = 0
        self.commands: list[tuple[str, Any]] = []
        self.cycle_at = 0.0

    @property
    def charging(self) -> bool:
        """Whether current flows."""
        return self.state == "charging" and self.frc != 1

    def set_state(self, state: str) -> None:
        """Move to idle, plugged, charging, complete or fault."""
        if state not in CAR:
            raise ValueError(f"unknown state {state!r}")
        if self.state == "idle" and state != "idle":
            self.wh = 0.0  # energy since the car was connected
        self.state = state

    def phases(self) -> int:
        """Phases in use (psm Force_1: one)."""
        return 1 if self.psm == 1 else 3

    def nrg(self) -> list[float]:
        """U L1 L2 L3 N, I L1 L2 L3, P L1 L2 L3 N total, pf L1 L2 L3 N."""
        current = float(self.amp) if self.charging else 0.0
        currents = [current if phase < self.phases() else 0.0 for phase in range(3)]
        powers = [round(VOLTAGE * i, 1) for i in currents]
        return [
            VOLTAGE,
            VOLTAGE,
            VOLTAGE,
            0.0,
            *currents,
            *powers,
            0.0,
            round(sum(powers), 1),
            *([99.0 if self.charging else 0.0] * 3),
            0.0,
        ]

    def car(self) -> int:
        """The carState code."""
        if self.state == "charging" and self.frc == 1:
            return CAR["plugged"]
        return CAR[self.state]

    def keys(self) -> dict[str, Any]:
        """Every key the profile reads, as the charger publishes them."""
        return {
            "car": self.car(),
            "err": 13 if self.state == "fault" else 0,
            "alw": self.frc != 1 and self.state != "fault",
            "amp": self.amp,
            "ama": self.ama,
            "frc": self.frc,
            "psm": self.psm,
            "nrg": self.nrg(),
            "eto": round(self.eto),
            "wh": round(self.wh, 1),
            "rbt": self.rbt,
            "mcc": True,
        }

    def advance(self, seconds: float) -> None:
        """Time passes: energy flows while charging."""
        self.rbt += int(seconds * 1000)
        if self.charging:
            energy = VOLTAGE * self.amp * self.phases() * seconds / 3600
            self.eto += energy
            self.wh += energy

    def cycle(self, seconds: float) -> bool:
        """Walk the cycle scenario; True when the state changed."""
        self.cycle_at += seconds
        total = sum(length for _, length in CYCLE)
        position = self.cycle_at % total
        for state, length in CYCLE:
            if position < length:
                if state != self.state:
                    self.set_state(state)
                    return True
                return False
            position -= length
        return False

    def command(self, key: str, payload: bytes) -> str:
        """A write on <key>/set: the /result answer (go-e's words)."""
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return f"invalid json: {payload[:40]!r}"
        if key not in WRITABLE:
            return f"key {key} is not writable"
        if not isinstance(value, int) or isinstance(value, bool):
            return "value must be an integer"
        if key == "amp":
            if not 6 <= value <= self.ama:
                return f"amp must be between 6 and {self.ama}"
            self.amp = value
        elif key in ("frc", "psm"):
            if value not in (0, 1, 2):
                return f"{key} must be 0, 1 or 2"
            setattr(self, key, value)
        self.commands.append((key, value))
        return "success"


class GoESimulator:
    """Simulated go-eChargers on one broker connection, publishing every interval."""

    def __init__(
        self,
        host: str,
        port: int,
        chargers: Iterable[SimulatedGoE],
        *,
        interval: float | None = 5.0,
        scenario: str = "fixed",
        speed: float = 1.0,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.chargers = {charger.serial: charger for charger in chargers}
        self.interval = interval
        self.scenario = scenario
        self.speed = speed
        self.client_id = client_id
        self.username = username
        self.password = password
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.paused = False
        self.published = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def charger(self) -> SimulatedGoE:
        """The only (or first) charger."""
        return next(iter(self.chargers.values()))

    async def start(self) -> None:
        """Connect (and keep reconnecting) in the background; wait for the first connection."""
        self._task = asyncio.ensure_future(self._run())
        await asyncio.wait_for(self.connected.wait(), 10)

    async def stop(self, *, clean: bool = True) -> None:
        """Say offline (mcc false, as the charger does on a clean disconnect) and disconnect."""
        if clean and self.client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError):
                for charger in self.chargers.values():
                    await self.client.publish(f"{charger.base}/mcc", b"false", qos=1, retain=True)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        will = None
        if len(self.chargers) == 1:
            will = aiomqtt.Will(f"{self.charger.base}/mcc", b"false", qos=1, retain=True)
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    username=self.username,
                    password=self.password,
                    will=will,
                    timeout=10,
                ) as client:
                    client.pending_calls_threshold = 10_000
                    self.client = client
                    bases = {charger.base.rpartition("/")[0] for charger in self.chargers.values()}
                    await client.subscribe([(f"{base}/+/+/set", 1) for base in sorted(bases)])
                    await self.publish_all()
                    self.connected.set()
                    ticker = asyncio.ensure_future(self._tick())
                    try:
                        async for message in client.messages:
                            await self._on_set(message)
                    finally:
                        ticker.cancel()
                        await asyncio.gather(ticker, return_exceptions=True)
            except aiomqtt.MqttError as err:
                _LOGGER.debug("simulator: broker %s:%d: %s", self.host, self.port, err)
            finally:
                self.client = None
                self.connected.clear()
            await asyncio.sleep(0.5)

    async def _on_set(self, message: aiomqtt.Message) -> None:
        parts = message.topic.value.split("/")
        if len(parts) < 3 or parts[-1] != "set":
            return
        key = parts[-2]
        charger = self.chargers.get(parts[-3])
        if charger is None or self.client is None:
            return
        payload = message.payload if isinstance(message.payload, bytes) else b""
        result = charger.command(key, payload)
        await self.client.publish(f"{charger.base}/{key}/result", result.encode())
        if result == "success":
            await self.publish(charger, ("amp", "frc", "psm", "car", "alw", "nrg"))

    async def publish(self, charger: SimulatedGoE, keys: Iterable[str] | None = None) -> None:
        """Publish some (or all) of a charger's keys, retained."""
        client = self.client
        if client is None or self.paused:
            return
        values = charger.keys()
        chosen = list(values) if keys is None else list(keys)
        await asyncio.gather(
            *(
                client.publish(f"{charger.base}/{key}", orjson.dumps(values[key]), retain=True)
                for key in chosen
            )
        )
        self.published += len(chosen)

    async def publish_all(self) -> None:
        """Publish every key of every charger."""
        for charger in self.chargers.values():
            await self.publish(charger)

    async def publish_raw(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish anything (tests: malformed payloads)."""
        assert self.client is not None
        await self.client.publish(topic, payload, retain=retain)

    async def _tick(self) -> None:
        """Every interval, each charger (spread over the interval) publishes what moves."""
        if not self.interval:
            return
        chargers = list(self.chargers.values())
        slots = max(1, min(50, len(chargers)))
        step = self.interval / slots
        loop = asyncio.get_running_loop()
        started = loop.time()
        tick = 0
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * step - loop.time()))
            for index in range(tick % slots, len(chargers), slots):
                charger = chargers[index]
                seconds = self.interval * self.speed
                charger.advance(seconds)
                keys = ["rbt", "nrg", "eto", "wh"]
                if self.scenario == "cycle" and charger.cycle(seconds):
                    keys += ["car", "alw", "err"]
                await self.publish(charger, keys)


def fleet(count: int, *, first: int = 0, scatter: bool = True) -> list[SimulatedGoE]:
    """count chargers with serials 000000.. and each somewhere else in the cycle."""
    chargers = []
    rng = random.Random(first)
    for index in range(first, first + count):
        charger = SimulatedGoE(f"{index:06d}")
        if scatter:
            charger.cycle_at = rng.uniform(0, sum(length for _, length in CYCLE))
        chargers.append(charger)
    return chargers


async def simulate_until_stopped(
    host: str,
    port: int,
    serials: list[str],
    *,
    interval: float,
    scenario: str,
    speed: float,
    duration: float | None,
    stop: asyncio.Event,
    username: str | None = None,
    password: str | None = None,
) -> int:
    """Run simulated chargers until stop is set (or duration passes)."""
    simulator = GoESimulator(
        host,
        port,
        [SimulatedGoE(serial) for serial in serials],
        interval=interval,
        scenario=scenario,
        speed=speed,
        username=username,
        password=password,
    )
    await simulator.start()
    _LOGGER.info(
        "Simulating %d go-eCharger(s) on %s:%d: %s",
        len(serials),
        host,
        port,
        ", ".join(f"{PREFIX}/{serial}" for serial in serials[:5]),
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), duration)
    await simulator.stop()
    return 0
