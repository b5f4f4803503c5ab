"""Modbus TCP wallboxes: polled by profile, controlled through charger.*, found on the LAN.

Built on nothing but the plugin contract (the set-up context), as a vendor's package is.
Configuration::

    modbus:
      scan_interval: 5            # seconds between polls of each device
      devices:
        - id: garage
          name: Garage wallbox
          profile: keba_p30       # a file in profiles/, a plugin's, or one of profiles: below
          host: 192.168.1.40
        - id: carport
          profile: my_box
          host: 192.168.1.41
          framer: rtu             # Modbus RTU through a TCP gateway
          unit_id: 3
      profiles:                   # custom profiles, same schema as the files
        my_box: {...}
      discovery: true             # browse the LAN with zeroconf (adopt with modbus.adopt)

A device with ``simulate: true`` gets a simulated wallbox of its profile on host:port
(port 0: a free one), which is how the example configuration shows one.
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
    NUMBER,
    OPT_BOOLEAN,
    OPT_INTEGER,
    OPT_STRING,
    STRING,
    array,
    device_profile,
    dict_of,
    json_ok,
    nullable,
    obj,
    one_of,
)
from hub.http.view import json_response
from hub.plugins import Integration, SetupContext
from hub.storage import Store
from integrations.modbus.device import DOMAIN, ModbusCharger
from integrations.modbus.profile import Profile, build_profile, load_profiles, validate_profile

_LOGGER = logging.getLogger(__name__)

CONF_DEVICES: Final = "devices"
CONF_PROFILES: Final = "profiles"
CONF_DISCOVERY: Final = "discovery"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_TIMEOUT: Final = "timeout"
CONF_OFFLINE_AFTER: Final = "offline_after"
CONF_SIMULATE: Final = "simulate"
STORE_VERSION: Final = 1
STORE_KEY: Final = "modbus.adopted"

_ID = r"^[A-Za-z0-9_-]{1,48}$"

SERIAL_SCHEMA: Final = vol.Schema(
    {
        vol.Required("port"): vol.All(str, vol.Length(min=1, max=255)),
        vol.Optional("baudrate", default=19200): vol.In(
            [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
        ),
        vol.Optional("bytesize", default=8): vol.In([7, 8]),
        vol.Optional("parity", default="N"): vol.In(["N", "E", "O"]),
        vol.Optional("stopbits", default=1): vol.In([1, 2]),
    }
)


def _one_link(device: dict[str, Any]) -> dict[str, Any]:
    if ("host" in device) == ("serial" in device):
        raise vol.Invalid("give host (Modbus TCP) or serial (Modbus RTU), one of them")
    return device


DEVICE_SCHEMA: Final = vol.All(
    {
        vol.Required("id"): vol.Match(_ID, msg="letters, digits, _ and - (at most 48)"),
        vol.Optional("name"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Required("profile"): vol.Match(r"^[a-z][a-z0-9_]{0,47}$", msg="a profile name"),
        vol.Optional("host"): vol.All(str, vol.Length(min=1, max=253)),
        # Modbus RTU on a serial line (an RS-485 adapter), where pymodbus offers it.
        vol.Optional("serial"): SERIAL_SCHEMA,
        vol.Optional("port"): vol.All(int, vol.Range(min=0, max=65535)),
        vol.Optional("unit_id"): vol.All(int, vol.Range(min=0, max=255)),
        vol.Optional("framer"): vol.In(["socket", "rtu"]),
        vol.Optional("site"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional(CONF_SCAN_INTERVAL): vol.All(vol.Coerce(float), vol.Range(min=0.5, max=3600)),
        vol.Optional(CONF_SIMULATE, default=False): bool,
    },
    _one_link,
)

DISCOVERY_SCHEMA: Final = vol.Any(
    bool,
    {
        vol.Optional("interfaces"): [str],
        vol.Optional("service_types"): [vol.Match(r"^_[A-Za-z0-9-]+\._(tcp|udp)\.local\.$")],
    },
)


def _unique_ids(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    for index, device in enumerate(devices):
        if device["id"] in seen:
            raise vol.Invalid(f"device id {device['id']!r} is used twice", path=[index, "id"])
        seen.add(device["id"])
    return devices


CONFIG_SCHEMA: Final = vol.Schema(
    vol.All(
        lambda value: {} if value is None else value,
        {
            vol.Optional(CONF_DEVICES, default=list): vol.All([DEVICE_SCHEMA], _unique_ids),
            vol.Optional(CONF_PROFILES, default=dict): {
                vol.Match(r"^[a-z][a-z0-9_]{0,47}$"): validate_profile
            },
            vol.Optional(CONF_SCAN_INTERVAL, default=5.0): vol.All(
                vol.Coerce(float), vol.Range(min=0.5, max=3600)
            ),
            vol.Optional(CONF_TIMEOUT, default=3.0): vol.All(
                vol.Coerce(float), vol.Range(min=0.1, max=60)
            ),
            vol.Optional(CONF_OFFLINE_AFTER, default=2): vol.All(int, vol.Range(min=1, max=100)),
            vol.Optional(CONF_DISCOVERY, default=False): DISCOVERY_SCHEMA,
        },
    )
)

ADOPT_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional("device_id"): vol.Match(_ID),
        vol.Optional("name"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional("profile"): vol.Match(r"^[a-z][a-z0-9_]{0,47}$"),
        vol.Optional("port"): vol.All(int, vol.Range(min=1, max=65535)),
        vol.Optional("unit_id"): vol.All(int, vol.Range(min=0, max=255)),
    }
)


class Modbus:
    """The integration's state for one set-up: profiles, devices, discovery."""

    def __init__(self, ctx: SetupContext, profiles: dict[str, Profile]) -> None:
        self.ctx = ctx
        self.profiles = profiles
        self.devices: dict[str, ModbusCharger] = {}
        self.simulators: dict[str, Any] = {}
        self.discovery: Any = None
        self.store: Store[dict[str, Any]] = Store(ctx.hub, STORE_VERSION, STORE_KEY)
        self.adopted: list[dict[str, Any]] = []
        # Open sessions by device, restored at start (a restart mid-session continues it).
        self.sessions: dict[str, Any] = {}

    def stored(self) -> dict[str, Any]:
        return {
            "devices": self.adopted,
            "sessions": {
                key: device.session
                for key, device in self.devices.items()
                if device.session is not None
            },
        }

    def save(self) -> None:
        """Write the adopted devices and open sessions soon (one write for many changes)."""
        self.store.delay_save(self.stored, 1.0)

    def profile(self, name: str, where: str) -> Profile:
        """A profile by name, or a clear error naming where it was asked for."""
        found = self.profiles.get(name)
        if found is None:
            raise ConfigError(
                f"unknown profile {name!r}; known: {', '.join(sorted(self.profiles))}",
                key=where,
            )
        return found

    async def add_device(self, device: dict[str, Any], index: int, count: int) -> ModbusCharger:
        """Make a device's coordinator (and its simulator) and start polling it."""
        ctx, config = self.ctx, self.ctx.config
        key = device["id"]
        profile = self.profile(device["profile"], f"{DOMAIN}.devices.{key}.profile")
        serial = device.get("serial")
        host, port = device.get("host", ""), device.get("port", profile.port)
        unit_id = device.get("unit_id", profile.unit_id)
        framer = device.get("framer", "rtu" if serial else profile.framer)
        if device.get(CONF_SIMULATE) and serial is not None:
            raise ConfigError("simulate is for Modbus TCP devices", key=f"{DOMAIN}.{key}.serial")
        if device.get(CONF_SIMULATE):
            from integrations.modbus.simulator import SimulatedWallbox, SimulatorServer

            server = SimulatorServer(
                SimulatedWallbox(profile), host, port, framer=framer, unit_id=unit_id
            )
            port = await server.start()
            self.simulators[key] = server
            ctx.on_unload(server.stop)
        elif port == 0 and serial is None:
            raise ConfigError("port 0 is only for a simulated device", key=f"{DOMAIN}.{key}.port")
        interval = device.get(CONF_SCAN_INTERVAL, config[CONF_SCAN_INTERVAL])
        charger = ModbusCharger(
            ctx.hub,
            key,
            profile,
            name=device.get("name", key),
            host=host,
            port=port,
            unit_id=unit_id,
            framer=framer,
            interval=interval,
            timeout=config[CONF_TIMEOUT],
            offline_after=config[CONF_OFFLINE_AFTER],
            site=device.get("site"),
            serial=serial,
        )
        self.devices[key] = charger
        restored = self.sessions.get(key)
        if isinstance(restored, dict) and isinstance(restored.get("transaction_id"), str):
            charger.session = restored
        charger.on_session = self.save
        # Spread the devices over the interval: one poll each, never all at once.
        charger.start(ctx, offset=interval * index / max(count, 1))
        return charger


DATA_MODBUS: Final[HubKey[Modbus]] = HubKey("modbus.state")


async def _known_profiles(ctx: SetupContext) -> dict[str, Profile]:
    """The built-in profiles, those plugins offer, and the configuration's custom ones."""
    # Reading the files is disk work: the executor's.
    profiles, errors = await ctx.hub.run_in_executor(load_profiles, ctx.device_profiles())
    for error in errors:
        _LOGGER.error("Modbus profile left out: %s", error)
    for key, section in ctx.config[CONF_PROFILES].items():
        profiles[key] = build_profile(key, section)
    return profiles


async def async_setup(ctx: SetupContext) -> bool:
    """Load profiles, start each configured and adopted device, discovery, API."""
    hub, config = ctx.hub, ctx.config
    profiles = await _known_profiles(ctx)
    modbus = Modbus(ctx, profiles)
    ctx.data = modbus
    hub.data[DATA_MODBUS] = modbus
    ctx.on_unload(lambda: hub.data.pop(DATA_MODBUS, None))
    stored = await modbus.store.load() or {}
    sessions = stored.get("sessions")
    modbus.sessions = sessions if isinstance(sessions, dict) else {}
    modbus.adopted = [
        device
        for device in stored.get("devices", [])
        if isinstance(device, dict) and device.get("id") not in {d["id"] for d in config["devices"]}
    ]
    every = [*config[CONF_DEVICES], *modbus.adopted]
    for index, device in enumerate(every):
        try:
            await modbus.add_device(device, index, len(every))
        except (ConfigError, vol.Invalid) as err:
            _LOGGER.error("Modbus device %s left out: %s", device.get("id"), err)
            if index < len(config[CONF_DEVICES]):
                raise
    _register_api(ctx, modbus)
    discovery = config[CONF_DISCOVERY]
    if discovery:
        from integrations.modbus.discovery import SELF_PROPERTY, LanDiscovery

        options = discovery if isinstance(discovery, dict) else {}
        kwargs: dict[str, Any] = {"interfaces": options.get("interfaces")}
        if options.get("service_types"):
            kwargs["service_types"] = options["service_types"]
        lan = LanDiscovery(hub, modbus.profiles.values, **kwargs)
        modbus.discovery = lan
        token = lan.token
        ctx.register_discovery_property(SELF_PROPERTY, lambda _address: token)
        await lan.start()
        ctx.on_unload(lan.stop)
    _LOGGER.info("Polling %d Modbus device(s)", len(modbus.devices))
    return True


# What the views answer (the OpenAPI description; tests validate real answers against it).
DEVICE_ANSWER: Final = obj(
    {
        "id": STRING,
        "name": STRING,
        "device_id": STRING,
        "profile": STRING,
        "product": STRING,
        "host": STRING,  # "" for a device on a serial line
        "port": INTEGER,
        # The serial line of a Modbus RTU device (port, baudrate, bytesize, parity,
        # stopbits); None over TCP.
        "serial": nullable(
            obj(
                {
                    "port": STRING,
                    "baudrate": INTEGER,
                    "bytesize": INTEGER,
                    "parity": one_of("N", "E", "O"),
                    "stopbits": INTEGER,
                },
                required=("port",),
            )
        ),
        "unit_id": INTEGER,
        "framer": STRING,
        "online": OPT_BOOLEAN,  # None: not polled yet
        "status": nullable(CONNECTOR_STATUS),
        "error_code": OPT_STRING,
        "last_error": OPT_STRING,
        "capabilities": CAPABILITIES,
        "session": CHARGER_SESSION,
        "polls": INTEGER,
        "late_polls": INTEGER,
    }
)
DISCOVERED_ANSWER: Final = obj(
    {
        "enabled": BOOLEAN,
        "discovered": array(
            obj(
                {
                    "id": STRING,
                    "name": STRING,
                    "service_type": STRING,
                    "host": OPT_STRING,
                    "port": OPT_INTEGER,
                    "kind": one_of("charger", "hub"),
                    "vendor": OPT_STRING,
                    "profile": OPT_STRING,
                    "properties": dict_of(STRING),
                    "first_seen": NUMBER,
                    "last_seen": NUMBER,
                    "adopted": OPT_STRING,  # the id of the device it was adopted as
                }
            )
        ),
    }
)
PROFILE_ANSWER: Final = device_profile({"writes": array(STRING), "failsafe": BOOLEAN})


def _register_api(ctx: SetupContext, modbus: Modbus) -> None:
    async def devices_view(request: web.Request) -> web.Response:
        return json_response([device.as_dict() for device in modbus.devices.values()])

    async def discovered_view(request: web.Request) -> web.Response:
        found = modbus.discovery.listing() if modbus.discovery is not None else []
        return json_response({"enabled": modbus.discovery is not None, "discovered": found})

    async def profiles_view(request: web.Request) -> web.Response:
        return json_response(
            [
                {
                    "key": profile.key,
                    "name": profile.name,
                    "manufacturer": profile.manufacturer,
                    "model": profile.model,
                    "writes": sorted(profile.writes),
                    "failsafe": profile.failsafe is not None,
                }
                for profile in sorted(modbus.profiles.values(), key=lambda p: p.key)
            ]
        )

    ctx.register_view(
        "GET",
        "/api/modbus/devices",
        devices_view,
        role=Role.VIEWER,
        summary="Modbus wallboxes",
        responses=json_ok(array(DEVICE_ANSWER)),
    )
    ctx.register_view(
        "GET",
        "/api/modbus/discovered",
        discovered_view,
        role=Role.ADMIN,
        summary="Wallboxes found on the LAN, not configured",
        responses=json_ok(DISCOVERED_ANSWER),
    )
    ctx.register_view(
        "GET",
        "/api/modbus/profiles",
        profiles_view,
        role=Role.VIEWER,
        summary="Device profiles",
        responses=json_ok(array(PROFILE_ANSWER)),
    )

    async def adopt(call: ServiceCall) -> dict[str, Any]:
        if modbus.discovery is None:
            raise ServiceValidationError("LAN discovery is off (modbus: discovery: true)")
        entry = modbus.discovery.found.get(call.data["id"])
        if entry is None:
            raise ServiceValidationError(f"nothing discovered with id {call.data['id']!r}")
        if entry.kind != "charger" or entry.host is None:
            raise ServiceValidationError(f"{entry.name} is not a charger that can be adopted")
        profile_key = call.data.get("profile") or entry.profile
        if profile_key is None:
            raise ServiceValidationError(
                f"the product of {entry.name} is unknown: name a profile"
                f" ({', '.join(sorted(modbus.profiles))})"
            )
        profile = modbus.profiles.get(profile_key)
        if profile is None:
            raise ServiceValidationError(f"unknown profile {profile_key!r}")
        key = call.data.get("device_id") or re.sub(r"[^A-Za-z0-9_-]+", "-", entry.name)[:48]
        if key in modbus.devices:
            raise ServiceValidationError(f"a Modbus device {key!r} exists already")
        port = call.data.get("port") or (
            entry.port if entry.service_type.startswith("_modbus.") else profile.port
        )
        device = {
            "id": key,
            "name": call.data.get("name", entry.name),
            "profile": profile.key,
            "host": entry.host,
            "port": port,
            "unit_id": call.data.get("unit_id", profile.unit_id),
        }
        charger = await modbus.add_device(device, 0, 1)
        entry.adopted = key
        modbus.adopted.append(device)
        await modbus.store.save(modbus.stored())
        return charger.as_dict()

    ctx.register_service(
        "adopt",
        adopt,
        ADOPT_SCHEMA,
        role=Role.ADMIN,
        description="Configure a discovered wallbox (by its discovered id) and start polling it",
    )

    async def forget(call: ServiceCall) -> dict[str, Any]:
        key = call.data["device"]
        if not any(device["id"] == key for device in modbus.adopted):
            raise ServiceValidationError(
                f"{key!r} is not an adopted device (configured ones are removed from the"
                " configuration)"
            )
        charger = modbus.devices.pop(key, None)
        if charger is not None:
            charger.stop()
        modbus.adopted = [device for device in modbus.adopted if device["id"] != key]
        if modbus.discovery is not None:
            for entry in modbus.discovery.found.values():
                if entry.adopted == key:
                    entry.adopted = None
        await modbus.store.save(modbus.stored())
        return {"forgotten": key}

    ctx.register_service(
        "forget",
        forget,
        {vol.Required("device"): vol.Match(_ID)},
        role=Role.ADMIN,
        description="Stop polling an adopted wallbox and forget it (its history stays)",
    )

    async def refresh(call: ServiceCall) -> dict[str, Any]:
        device = modbus.devices.get(call.data["device"])
        if device is None:
            raise ServiceValidationError(f"no Modbus device {call.data['device']!r}")
        return {"answered": await device.refresh(), **device.as_dict()}

    ctx.register_service(
        "refresh",
        refresh,
        {vol.Required("device"): str},
        role=Role.OPERATOR,
        description="Poll a Modbus wallbox now",
    )


# The command line --------------------------------------------------------------------


def _cmd_simulate(args: argparse.Namespace) -> int:
    from integrations.modbus.simulator import simulate_until_stopped

    profiles, errors = load_profiles()
    for error in errors:
        print(f"evhub: {error}", file=sys.stderr)
    profile = profiles.get(args.profile)
    if profile is None:
        print(
            f"evhub: unknown profile {args.profile!r}; one of {', '.join(sorted(profiles))}",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.WARNING)

    async def run() -> int:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await simulate_until_stopped(
            profile,
            args.host,
            args.port,
            framer=args.framer,
            speed=args.speed,
            scenario=args.scenario,
            duration=args.duration,
            stop=stop,
        )

    try:
        return asyncio.run(run())
    except (OSError, HubError) as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 1


def _cmd_profiles(args: argparse.Namespace) -> int:
    profiles, errors = load_profiles()
    for key, profile in sorted(profiles.items()):
        writes = ", ".join(sorted(profile.writes)) or "read only"
        print(f"{key}\t{profile.name}\t{writes}")
    for error in errors:
        print(f"evhub: {error}", file=sys.stderr)
    return 1 if errors else 0


@hookimpl(trylast=True)
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add ``evhub simulate modbus`` (beside the OCPP simulator) and ``evhub modbus profiles``.

    trylast: ``evhub simulate`` exists first, and this nests under it.
    """
    simulate = commands.add(
        "modbus",
        "run a simulated Modbus TCP wallbox of a profile",
        _cmd_simulate,
        group="simulate",
    )
    simulate.add_argument("--profile", required=True, help="profile name (evhub modbus profiles)")
    simulate.add_argument("--port", type=int, default=1502, help="TCP port (0: a free one)")
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on")
    simulate.add_argument("--framer", choices=["socket", "rtu"], default=None, help="framing")
    simulate.add_argument("--speed", type=float, default=1.0, help="time acceleration factor")
    simulate.add_argument(
        "--scenario", choices=["cycle", "fixed"], default="cycle", help="automatic state changes"
    )
    simulate.add_argument("--duration", type=float, default=None, help="stop after seconds")
    commands.add(
        "profiles",
        "list the Modbus device profiles",
        _cmd_profiles,
        group="modbus",
        group_help="Modbus wallboxes",
    )


@hookimpl
def evhub_integration() -> Integration:
    """Describe the Modbus integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Modbus TCP wallboxes",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
    )
