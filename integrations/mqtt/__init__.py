"""MQTT: chargers that publish on a broker, and the hub's states exported to it.

Built on nothing but the plugin contract (the set-up context), as a vendor's package is.
Configuration::

    mqtt:
      host: 192.168.1.10            # the broker
      port: 8883
      client_id: evhub
      username: !secret mqtt_username
      password: !secret mqtt_password
      tls:                          # or tls: true (the system's CAs)
        ca_certs: /etc/evhub/broker-ca.pem
        certfile: /etc/evhub/client.pem
        keyfile: /etc/evhub/client.key
      prefix: evhub                 # <prefix>/status: the hub's availability (last will)
      chargers:
        - id: garage
          name: Garage go-e
          profile: go_e             # a file in profiles/, a plugin's, or one of profiles:
          serial: "012345"
        - id: carport
          profile: my_box           # a generic profile of the configuration's own
          serial: carport
      profiles:                     # same schema as the files
        my_box: {...}
      export:                       # states, devices, alerts, events under <prefix>/v1/<node>
        interval: 1                 # seconds: changes of one entity within are coalesced
        exclude: ["sensor.*_latency"]
      discovery: true               # Home Assistant MQTT discovery (homeassistant/...)

A charger with ``simulate: true`` (go_e profile) gets a simulated go-eCharger of its serial
on the same broker, which is how the example configuration shows one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from typing import Any, Final

import voluptuous as vol
from aiohttp import web

from hub.auth import Role
from hub.clock import clock
from hub.commands import CliCommands
from hub.config import ConfigError
from hub.core import HubKey, ServiceCall
from hub.exceptions import HubError, ServiceValidationError
from hub.hookspecs import hookimpl
from hub.http.schemas import (
    BOOLEAN,
    CAPABILITIES,
    CHARGER_SESSION,
    CONNECTOR_STATUS,
    INTEGER,
    OPT_BOOLEAN,
    OPT_NUMBER,
    OPT_STRING,
    STRING,
    array,
    device_profile,
    json_ok,
    nullable,
    obj,
)
from hub.http.view import json_response
from hub.plugins import Integration, IntegrationNotReadyError, SetupContext
from hub.storage import Store
from integrations.mqtt.charger import DOMAIN, MqttCharger
from integrations.mqtt.connection import MqttConnection
from integrations.mqtt.export import LAYOUT_VERSION, Exporter
from integrations.mqtt.profile import (
    Profile,
    build_profile,
    check_topic,
    load_profiles,
    validate_profile,
)

_LOGGER = logging.getLogger(__name__)

CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_CLIENT_ID: Final = "client_id"
CONF_USERNAME: Final = "username"
CONF_PASSWORD: Final = "password"
CONF_TLS: Final = "tls"
CONF_KEEPALIVE: Final = "keepalive"
CONF_PREFIX: Final = "prefix"
CONF_NODE: Final = "node"
CONF_CHARGERS: Final = "chargers"
CONF_PROFILES: Final = "profiles"
CONF_EXPORT: Final = "export"
CONF_DISCOVERY: Final = "discovery"
CONF_MAX_PAYLOAD: Final = "max_payload"
CONF_SIMULATE: Final = "simulate"
MAX_PUBLISH: Final = 65536
STORE_VERSION: Final = 1
STORE_KEY: Final = "mqtt.sessions"

_ID = r"^[A-Za-z0-9_-]{1,48}$"
_PROFILE_NAME = r"^[a-z][a-z0-9_]{0,47}$"


def _level(value: Any) -> str:
    """One topic level (a serial, a node id): no /, wildcards or control characters."""
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", text):
        raise vol.Invalid(f"{value!r}: 1 to 64 letters, digits, _ . : and - (one topic level)")
    return text


def _prefix(value: Any) -> str:
    topic = check_topic(value, what="prefix")
    if topic.startswith("/") or topic.endswith("/") or "//" in topic:
        raise vol.Invalid(f"{topic!r}: a prefix has no empty topic levels")
    return topic


TLS_SCHEMA: Final = vol.Any(
    bool,
    {
        vol.Optional("ca_certs"): vol.All(str, vol.Length(min=1, max=4096)),
        vol.Optional("certfile"): vol.All(str, vol.Length(min=1, max=4096)),
        vol.Optional("keyfile"): vol.All(str, vol.Length(min=1, max=4096)),
        # Skip the host name check (a broker reached by IP address with a named certificate).
        vol.Optional("insecure", default=False): bool,
    },
)

CHARGER_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): vol.Match(_ID, msg="letters, digits, _ and - (at most 48)"),
        vol.Optional("name"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Required("profile"): vol.Match(_PROFILE_NAME, msg="a profile name"),
        vol.Optional("serial"): _level,
        # The charger's base topic, when it is not the profile's with the serial.
        vol.Optional("base"): _prefix,
        vol.Optional("silent_after"): vol.All(vol.Coerce(float), vol.Range(min=1, max=86400)),
        vol.Optional("site"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional(CONF_SIMULATE, default=False): bool,
    }
)

EXPORT_SCHEMA: Final = vol.Any(
    bool,
    {
        vol.Optional("interval", default=1.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.05, max=3600)
        ),
        vol.Optional("include", default=["*"]): [vol.All(str, vol.Length(min=1, max=255))],
        vol.Optional("exclude", default=list): [vol.All(str, vol.Length(min=1, max=255))],
        vol.Optional("states", default=True): bool,
        vol.Optional("alerts", default=True): bool,
        vol.Optional("security", default=True): bool,
        vol.Optional("events", default=True): bool,
    },
)

DISCOVERY_SCHEMA: Final = vol.Any(bool, {vol.Optional("prefix", default="homeassistant"): _prefix})


def _unique_ids(chargers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    for index, charger in enumerate(chargers):
        if charger["id"] in seen:
            raise vol.Invalid(f"charger id {charger['id']!r} is used twice", path=[index, "id"])
        seen.add(charger["id"])
    return chargers


CONFIG_SCHEMA: Final = vol.Schema(
    vol.All(
        lambda value: {} if value is None else value,
        {
            vol.Optional(CONF_HOST, default="127.0.0.1"): vol.All(str, vol.Length(min=1, max=253)),
            vol.Optional(CONF_PORT): vol.All(vol.Coerce(int), vol.Range(min=1, max=65535)),
            vol.Optional(CONF_CLIENT_ID): vol.All(
                str, vol.Length(min=1, max=128), vol.Match(r"^[\x21-\x7e]+$")
            ),
            vol.Optional(CONF_USERNAME): vol.All(str, vol.Length(min=1, max=255)),
            vol.Optional(CONF_PASSWORD): vol.All(str, vol.Length(min=1, max=1024)),
            vol.Optional(CONF_TLS, default=False): TLS_SCHEMA,
            vol.Optional(CONF_KEEPALIVE, default=60): vol.All(int, vol.Range(min=5, max=3600)),
            vol.Optional(CONF_PREFIX, default="evhub"): _prefix,
            vol.Optional(CONF_NODE, default="hub"): _level,
            vol.Optional(CONF_MAX_PAYLOAD, default=65536): vol.All(
                int, vol.Range(min=64, max=16 * 1024 * 1024)
            ),
            vol.Optional(CONF_CHARGERS, default=list): vol.All([CHARGER_SCHEMA], _unique_ids),
            vol.Optional(CONF_PROFILES, default=dict): {vol.Match(_PROFILE_NAME): validate_profile},
            vol.Optional(CONF_EXPORT, default=True): EXPORT_SCHEMA,
            vol.Optional(CONF_DISCOVERY, default=False): DISCOVERY_SCHEMA,
        },
    )
)

PUBLISH_SCHEMA: Final = vol.Schema(
    {
        vol.Required("topic"): check_topic,
        vol.Optional("payload", default=""): vol.All(str, vol.Length(max=MAX_PUBLISH)),
        vol.Optional("retain", default=False): bool,
        vol.Optional("qos", default=0): vol.In([0, 1]),
    }
)


class Mqtt:
    """The integration's state for one set-up: the connection, chargers, export."""

    def __init__(self, ctx: SetupContext, connection: MqttConnection) -> None:
        self.ctx = ctx
        self.connection = connection
        self.profiles: dict[str, Profile] = {}
        self.chargers: dict[str, MqttCharger] = {}
        self.exporter: Exporter | None = None
        self.simulators: list[Any] = []
        # Open sessions by charger, kept across restarts (a restart mid-session goes on).
        self.store: Store[dict[str, Any]] = Store(ctx.hub, STORE_VERSION, STORE_KEY)

    def stored(self) -> dict[str, Any]:
        """What the store keeps: the chargers' open sessions."""
        return {
            "sessions": {
                key: charger.session
                for key, charger in self.chargers.items()
                if charger.session is not None
            }
        }

    def save(self) -> None:
        """Write the open sessions soon (one write for many changes)."""
        self.store.delay_save(self.stored, 1.0)

    def status(self) -> dict[str, Any]:
        """The connection and its counters (the API, the benchmark)."""
        connection = self.connection
        exporter = self.exporter
        return {
            "broker": connection.where,
            "connected": connection.connected.is_set(),
            "connections": connection.connections,
            "last_error": connection.last_error,
            "status_topic": connection.status_topic,
            "received": connection.received,
            "sent": connection.sent,
            "queued": connection.queued,
            "dropped": connection.dropped,
            "malformed": sum(charger.malformed for charger in self.chargers.values()),
            "chargers": len(self.chargers),
            "online": sum(1 for charger in self.chargers.values() if charger.online),
            "export": None
            if exporter is None
            else {
                "layout": LAYOUT_VERSION,
                "root": exporter.root,
                "state_messages": exporter.state_messages,
                "coalesced": exporter.coalesced,
                "discovery": exporter.discovery_prefix,
            },
        }


DATA_MQTT: Final[HubKey[Mqtt]] = HubKey("mqtt.state")


async def _known_profiles(ctx: SetupContext) -> dict[str, Profile]:
    profiles, errors = await ctx.hub.run_in_executor(load_profiles, ctx.device_profiles())
    for error in errors:
        _LOGGER.error("MQTT profile left out: %s", error)
    for key, section in ctx.config[CONF_PROFILES].items():
        profiles[key] = build_profile(key, section)
    return profiles


def _charger(mqtt: Mqtt, spec: dict[str, Any], config: dict[str, Any]) -> MqttCharger:
    key = spec["id"]
    profile = mqtt.profiles.get(spec["profile"])
    if profile is None:
        raise ConfigError(
            f"unknown profile {spec['profile']!r}; known: {', '.join(sorted(mqtt.profiles))}",
            key=f"{DOMAIN}.chargers.{key}.profile",
        )
    if "base" not in spec and "{serial}" in profile.base and "serial" not in spec:
        raise ConfigError(
            f"profile {profile.key} needs the charger's serial (its topics are {profile.base})",
            key=f"{DOMAIN}.chargers.{key}.serial",
        )
    return MqttCharger(
        mqtt.ctx.hub,
        mqtt.connection,
        key,
        profile,
        name=spec.get("name", key),
        serial=spec.get("serial"),
        base=spec.get("base"),
        silent_after=spec.get("silent_after"),
        site=spec.get("site"),
        max_payload=config[CONF_MAX_PAYLOAD],
    )


async def async_setup(ctx: SetupContext) -> bool:
    """Connect to the broker, subscribe each charger's topics, export, API."""
    hub, config = ctx.hub, ctx.config
    tls = config[CONF_TLS]
    connection = MqttConnection(
        hub,
        DOMAIN,
        host=config[CONF_HOST],
        port=config.get(CONF_PORT, 8883 if tls else 1883),
        client_id=config.get(CONF_CLIENT_ID),
        username=config.get(CONF_USERNAME),
        password=config.get(CONF_PASSWORD),
        tls=({} if tls is True else tls) if tls else None,
        keepalive=config[CONF_KEEPALIVE],
        status_topic=f"{config[CONF_PREFIX]}/status",
    )
    mqtt = Mqtt(ctx, connection)
    mqtt.profiles = await _known_profiles(ctx)
    ctx.data = mqtt
    hub.data[DATA_MQTT] = mqtt
    ctx.on_unload(lambda: hub.data.pop(DATA_MQTT, None))
    stored = await mqtt.store.load() or {}
    raw = stored.get("sessions")
    sessions: dict[str, Any] = raw if isinstance(raw, dict) else {}
    for spec in config[CONF_CHARGERS]:
        charger = _charger(mqtt, spec, config)
        mqtt.chargers[spec["id"]] = charger
        restored = sessions.get(spec["id"])
        if isinstance(restored, dict) and isinstance(restored.get("transaction_id"), str):
            charger.session = restored
        charger.on_session = mqtt.save
        charger.start(ctx)
    export = config[CONF_EXPORT]
    if export:
        options = EXPORT_SCHEMA({}) if export is True else export
        discovery = config[CONF_DISCOVERY]
        discovery_prefix = None
        if discovery:
            discovery_prefix = (
                discovery["prefix"] if isinstance(discovery, dict) else "homeassistant"
            )
        mqtt.exporter = Exporter(
            ctx,
            connection,
            prefix=config[CONF_PREFIX],
            node=config[CONF_NODE],
            interval=options["interval"],
            include=options["include"],
            exclude=options["exclude"],
            states=options["states"],
            alerts=options["alerts"],
            security=options["security"],
            events=options["events"],
            discovery_prefix=discovery_prefix,
        )
        mqtt.exporter.start()
    elif config[CONF_DISCOVERY]:
        raise ConfigError("discovery needs the export (export: false)", key=f"{DOMAIN}.discovery")

    def reconnected() -> None:
        for charger in mqtt.chargers.values():
            charger.broker_connected()

    connection.on_connect.append(reconnected)

    def check_silence() -> None:
        if not connection.connected.is_set():
            return
        now = clock(hub).time()
        for charger in mqtt.chargers.values():
            charger.check_silence(now)

    shortest = min((c.silent_after for c in mqtt.chargers.values()), default=60.0)
    ctx.track_interval(max(1.0, min(5.0, shortest / 4)), check_silence)
    # Not a set-up task: the connection outlives the undo's task cancelling long enough to
    # say offline (retained) on the status topic before it closes.
    await _start_simulators(ctx, mqtt)
    connection.start(lambda coro, name: hub.create_background_task(coro, f"{DOMAIN}: {name}"))
    # Undone before the simulators stop: the hub does not see its own simulated chargers
    # say goodbye (an outage) as it stops.
    ctx.on_unload(connection.stop)
    _register_api(ctx, mqtt)
    _LOGGER.info(
        "MQTT: %d charger(s) on %s, export %s",
        len(mqtt.chargers),
        connection.where,
        mqtt.exporter.root if mqtt.exporter else "off",
    )
    return True


async def _start_simulators(ctx: SetupContext, mqtt: Mqtt) -> None:
    config = ctx.config
    serials = [
        spec for spec in config[CONF_CHARGERS] if spec[CONF_SIMULATE] and spec["profile"] == "go_e"
    ]
    for spec in config[CONF_CHARGERS]:
        if spec[CONF_SIMULATE] and spec["profile"] != "go_e":
            raise ConfigError(
                "simulate is for go_e chargers", key=f"{DOMAIN}.chargers.{spec['id']}.simulate"
            )
    if not serials:
        return
    from integrations.mqtt.simulator import GoESimulator, SimulatedGoE

    where = mqtt.connection.where
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(mqtt.connection.host, mqtt.connection.port), 3
        )
    except (OSError, TimeoutError) as err:
        raise IntegrationNotReadyError(
            f"no MQTT broker at {where} for the simulated go-eCharger ({err or 'timeout'})"
        ) from None
    writer.close()
    await writer.wait_closed()
    for spec in serials:
        charger = mqtt.chargers[spec["id"]]
        prefix = charger.base.rpartition("/")[0]
        simulator = GoESimulator(
            mqtt.connection.host,
            mqtt.connection.port,
            [SimulatedGoE(spec["serial"], prefix=prefix)],
            interval=5.0,
            scenario="cycle",
            username=config.get(CONF_USERNAME),
            password=config.get(CONF_PASSWORD),
        )
        try:
            await simulator.start()
        except (TimeoutError, OSError) as err:
            await simulator.stop(clean=False)
            raise IntegrationNotReadyError(
                f"the simulated go-eCharger cannot reach the broker {mqtt.connection.where}"
            ) from err
        mqtt.simulators.append(simulator)
        ctx.on_unload(simulator.stop)


# What the views answer (the OpenAPI description; tests validate real answers against it).
CHARGER_ANSWER: Final = obj(
    {
        "id": STRING,
        "name": STRING,
        "device_id": STRING,
        "profile": STRING,
        "product": STRING,
        "base_topic": STRING,
        "serial": OPT_STRING,
        "online": OPT_BOOLEAN,  # None: nothing heard yet
        "available": OPT_BOOLEAN,  # what the last will says; None: no such topic
        "last_seen": OPT_NUMBER,  # POSIX seconds
        "status": nullable(CONNECTOR_STATUS),
        "error_code": OPT_STRING,
        "last_error": OPT_STRING,
        "messages": INTEGER,
        "malformed": INTEGER,
        "capabilities": CAPABILITIES,
        "session": CHARGER_SESSION,
    }
)
STATUS_ANSWER: Final = obj(
    {
        "broker": STRING,
        "connected": BOOLEAN,
        "connections": INTEGER,
        "last_error": OPT_STRING,
        "status_topic": STRING,
        "received": INTEGER,
        "sent": INTEGER,
        "queued": INTEGER,
        "dropped": INTEGER,
        "malformed": INTEGER,
        "chargers": INTEGER,
        "online": INTEGER,
        "export": nullable(
            obj(
                {
                    "layout": INTEGER,
                    "root": STRING,
                    "state_messages": INTEGER,
                    "coalesced": INTEGER,
                    "discovery": OPT_STRING,
                }
            )
        ),
    }
)
PROFILE_ANSWER: Final = device_profile(
    {"base": STRING, "commands": array(STRING), "availability": BOOLEAN}
)


def _register_api(ctx: SetupContext, mqtt: Mqtt) -> None:
    async def chargers_view(request: web.Request) -> web.Response:
        return json_response([charger.as_dict() for charger in mqtt.chargers.values()])

    async def status_view(request: web.Request) -> web.Response:
        return json_response(mqtt.status())

    async def profiles_view(request: web.Request) -> web.Response:
        return json_response(
            [
                {
                    "key": profile.key,
                    "name": profile.name,
                    "manufacturer": profile.manufacturer,
                    "model": profile.model,
                    "base": profile.base,
                    "commands": sorted(profile.commands),
                    "availability": profile.availability is not None,
                }
                for profile in sorted(mqtt.profiles.values(), key=lambda p: p.key)
            ]
        )

    ctx.register_view(
        "GET",
        "/api/mqtt/chargers",
        chargers_view,
        role=Role.VIEWER,
        summary="MQTT chargers",
        responses=json_ok(array(CHARGER_ANSWER)),
    )
    ctx.register_view(
        "GET",
        "/api/mqtt/status",
        status_view,
        role=Role.VIEWER,
        summary="MQTT broker connection",
        responses=json_ok(STATUS_ANSWER),
    )
    ctx.register_view(
        "GET",
        "/api/mqtt/profiles",
        profiles_view,
        role=Role.VIEWER,
        summary="MQTT profiles",
        responses=json_ok(array(PROFILE_ANSWER)),
    )

    async def publish(call: ServiceCall) -> dict[str, Any]:
        if not mqtt.connection.connected.is_set():
            raise ServiceValidationError(
                f"the MQTT broker {mqtt.connection.where} is not connected"
            )
        data = call.data
        mqtt.connection.publish(
            data["topic"], data["payload"], retain=data["retain"], qos=data["qos"]
        )
        return {"topic": data["topic"], "queued": True}

    ctx.register_service(
        "publish",
        publish,
        PUBLISH_SCHEMA,
        role=Role.ADMIN,
        description="Publish a message on the broker (automations: tell another system)",
    )


# The command line --------------------------------------------------------------------


def _cmd_simulate(args: argparse.Namespace) -> int:
    from integrations.mqtt.simulator import simulate_until_stopped

    serials = list(args.serial or [])
    if args.count:
        serials += [f"{index:06d}" for index in range(args.count)]
    if not serials:
        serials = ["000001"]
    bad = [serial for serial in serials if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", serial)]
    if bad:
        print(f"evhub: not a serial (one topic level): {bad[0]!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")

    async def run() -> int:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await simulate_until_stopped(
            args.broker,
            args.port,
            serials,
            interval=args.interval,
            scenario=args.scenario,
            speed=args.speed,
            duration=args.duration,
            stop=stop,
            username=args.username,
            password=args.password,
        )

    try:
        return asyncio.run(run())
    except (OSError, HubError, TimeoutError) as err:
        print(
            f"evhub: cannot simulate on {args.broker}:{args.port}: {err or 'timeout'}",
            file=sys.stderr,
        )
        return 1


def _cmd_profiles(args: argparse.Namespace) -> int:
    profiles, errors = load_profiles()
    for key, profile in sorted(profiles.items()):
        commands = ", ".join(sorted(profile.commands)) or "read only"
        print(f"{key}\t{profile.name}\t{profile.base}\t{commands}")
    for error in errors:
        print(f"evhub: {error}", file=sys.stderr)
    return 1 if errors else 0


@hookimpl(trylast=True)
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add ``evhub simulate mqtt`` (beside the OCPP simulator) and ``evhub mqtt profiles``.

    trylast: ``evhub simulate`` exists first, and this nests under it.
    """
    simulate = commands.add(
        "mqtt",
        "run simulated go-eChargers publishing on an MQTT broker",
        _cmd_simulate,
        group="simulate",
    )
    simulate.add_argument("--broker", default="127.0.0.1", help="broker host")
    simulate.add_argument("--port", type=int, default=1883, help="broker port")
    simulate.add_argument("--serial", action="append", help="a charger's serial (repeat for more)")
    simulate.add_argument("--count", type=int, default=0, help="also N chargers 000000...")
    simulate.add_argument("--interval", type=float, default=5.0, help="seconds between reports")
    simulate.add_argument(
        "--scenario", choices=["cycle", "fixed"], default="cycle", help="automatic state changes"
    )
    simulate.add_argument("--speed", type=float, default=1.0, help="time acceleration factor")
    simulate.add_argument("--duration", type=float, default=None, help="stop after seconds")
    simulate.add_argument("--username", default=None, help="broker user name")
    simulate.add_argument("--password", default=None, help="broker password")
    commands.add(
        "profiles",
        "list the MQTT charger profiles",
        _cmd_profiles,
        group="mqtt",
        group_help="MQTT chargers",
    )


@hookimpl
def evhub_integration() -> Integration:
    """Describe the MQTT integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="MQTT chargers and export",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
    )
