"""Device profiles: what a wallbox's Modbus register map means, as data.

A profile names each register (address, function, type, word order, scale, offset, the
entity it feeds), maps the status register's values onto the hub's connector status
vocabulary, and says which writes stand behind which charger capability and how the
device's failsafe heartbeat is kept. Built-in profiles are YAML files in ``profiles/``;
plugins add files through the ``evhub_device_profiles`` hook; a user writes a ``custom``
profile inline in configuration.yaml. All are checked by the same schema.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import voluptuous as vol

from hub.charger import ConnectorStatus, status_from_iec61851
from hub.config import ConfigError, load_data_files
from hub.exceptions import HubError

PROFILE_DIR: Final = Path(__file__).with_name("profiles")

HOLDING: Final = "holding"
INPUT: Final = "input"
COIL: Final = "coil"
DISCRETE: Final = "discrete"
FUNCTIONS: Final = (HOLDING, INPUT, COIL, DISCRETE)
BIT_FUNCTIONS: Final = (COIL, DISCRETE)
WRITABLE: Final = (HOLDING, COIL)

# Registers per type (string: its own count).
TYPE_WORDS: Final = {
    "u16": 1,
    "s16": 1,
    "u32": 2,
    "s32": 2,
    "float32": 2,
    "float64": 4,
    "bool": 1,
}
TYPES: Final = (*TYPE_WORDS, "string")
_STRUCT: Final = {
    "u16": ">H",
    "s16": ">h",
    "u32": ">I",
    "s32": ">i",
    "float32": ">f",
    "float64": ">d",
}
# The most one read may ask for (Modbus: 125 registers, 2000 bits).
MAX_REGISTERS: Final = 125
MAX_BITS: Final = 2000

# The port entities a register may feed (units as the OCPP driver's).
ENTITY_KEYS: Final = (
    "power",
    "energy",
    "session_energy",
    "current_l1",
    "current_l2",
    "current_l3",
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_limit",
    "max_current",
    "phases",
    "enabled",
    "error_code",
    "cable",
)
STATUSES: Final = tuple(str(status) for status in ConnectorStatus)
IEC_STATES: Final = ("A", "B", "C", "D", "E", "F")
WRITE_KINDS: Final = ("current_limit", "enable", "phases", "start_stop")


class ProfileError(HubError, ValueError):
    """A profile is not usable (unknown name, a register a write names that is missing)."""

    http_status = 400
    error_code = "invalid"


class DecodeError(HubError, ValueError):
    """A device answered a value its profile says it cannot have."""

    error_code = "invalid_value"


def _status(value: Any) -> str:
    text = str(value)
    if text in STATUSES:
        return text
    if text.upper() in IEC_STATES:
        return str(status_from_iec61851(text))
    raise vol.Invalid(
        f"{text!r} is neither a connector status ({', '.join(STATUSES)}) nor an IEC 61851"
        " state (A-F)"
    )


def _name(value: Any) -> str:
    return str(vol.Match(r"^[a-z][a-z0-9_]{0,47}$", msg="expected a lower-case name")(value))


REGISTER_SCHEMA: Final = vol.Schema(
    {
        vol.Required("address"): vol.All(int, vol.Range(min=0, max=65535)),
        vol.Optional("function", default=HOLDING): vol.In(FUNCTIONS),
        vol.Optional("type"): vol.In(TYPES),
        vol.Optional("count"): vol.All(int, vol.Range(min=1, max=MAX_REGISTERS)),
        vol.Optional("word_order"): vol.In(["big", "little"]),
        vol.Optional("scale", default=1.0): vol.All(
            vol.Coerce(float), vol.Range(min=1e-9, max=1e9)
        ),
        vol.Optional("offset", default=0.0): vol.Coerce(float),
        vol.Optional("entity"): vol.In(ENTITY_KEYS),
        vol.Optional("min"): vol.Coerce(float),
        vol.Optional("max"): vol.Coerce(float),
        # False: written only (a setpoint the device does not let one read back).
        vol.Optional("poll", default=True): bool,
        # What the simulator answers for a register nothing else drives (serial, firmware).
        vol.Optional("simulate"): vol.Any(int, float, str, bool),
        vol.Optional("description"): str,
    }
)

_WRITE_COMMON: Final = {
    vol.Required("register"): _name,
    # A polled register that shows the written value (default: the written one, read again).
    vol.Optional("readback"): _name,
}

WRITES_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("current_limit"): {
            **_WRITE_COMMON,
            vol.Optional("min", default=6.0): vol.Coerce(float),
            vol.Optional("max", default=32.0): vol.Coerce(float),
            # Written when a limit below min is asked (0: pause), if the device allows it.
            vol.Optional("pause"): vol.Coerce(float),
        },
        vol.Optional("enable"): {
            **_WRITE_COMMON,
            vol.Optional("enabled", default=1): vol.Any(bool, int),
            vol.Optional("disabled", default=0): vol.Any(bool, int),
        },
        vol.Optional("phases"): {
            **_WRITE_COMMON,
            vol.Required("values"): {vol.In([1, 3]): int},
        },
        vol.Optional("start_stop"): {
            **_WRITE_COMMON,
            vol.Required("start"): int,
            vol.Required("stop"): int,
        },
    }
)

STATUS_SCHEMA: Final = vol.Schema(
    {
        vol.Required("register"): _name,
        vol.Required("map"): vol.All({vol.Coerce(int): _status}, vol.Length(min=1)),
        # A second register (the cable) refining the status when a vehicle is plugged in.
        vol.Optional("plugged"): {
            vol.Required("register"): _name,
            vol.Required("values"): vol.All([vol.Coerce(int)], vol.Length(min=1)),
            vol.Optional("unplugged", default=0): vol.Coerce(int),
            vol.Required("map"): {vol.Coerce(int): _status},
        },
        # Error code register: a value other than ok is reported with the status.
        vol.Optional("error_register"): _name,
        vol.Optional("error_ok", default=0): vol.Coerce(int),
        # True: a reported error means Faulted, whatever the status register says.
        vol.Optional("fault_on_error", default=False): bool,
    }
)

FAILSAFE_SCHEMA: Final = vol.Schema(
    {
        # How often the hub rewrites to keep the device out of its failsafe (seconds).
        vol.Required("period"): vol.All(vol.Coerce(float), vol.Range(min=1, max=3600)),
        # Either a register written with value, or one of the writes (its last value).
        vol.Exclusive("register", "heartbeat"): _name,
        vol.Exclusive("rewrite", "heartbeat"): vol.In(WRITE_KINDS),
        vol.Optional("value", default=1): int,
        # What the device does without it (the simulator behaves so).
        vol.Optional("timeout", default=60.0): vol.All(vol.Coerce(float), vol.Range(min=1)),
        vol.Optional("current", default=6.0): vol.All(vol.Coerce(float), vol.Range(min=0)),
    }
)

DISCOVERY_SCHEMA: Final = vol.Schema(
    {
        # Regular expressions matched against mDNS instance and host names (case-blind).
        vol.Optional("names", default=list): [str],
        vol.Optional("services", default=list): [str],
    }
)

PROFILE_SCHEMA: Final = vol.Schema(
    {
        vol.Required("name"): vol.All(str, vol.Length(min=1, max=80)),
        vol.Optional("manufacturer"): vol.All(str, vol.Length(max=80)),
        vol.Optional("model"): vol.All(str, vol.Length(max=80)),
        vol.Optional("source"): str,
        vol.Optional("unit_id", default=1): vol.All(int, vol.Range(min=0, max=255)),
        vol.Optional("port", default=502): vol.All(int, vol.Range(min=1, max=65535)),
        vol.Optional("framer", default="socket"): vol.In(["socket", "rtu"]),
        vol.Optional("word_order", default="big"): vol.In(["big", "little"]),
        # Unread registers a read may span to save a request (0: only adjacent ones).
        vol.Optional("max_gap", default=0): vol.All(int, vol.Range(min=0, max=32)),
        vol.Optional("phases", default=3): vol.In([1, 3]),
        vol.Required("registers"): vol.All({_name: REGISTER_SCHEMA}, vol.Length(min=1)),
        vol.Required("status"): STATUS_SCHEMA,
        vol.Optional("writes", default=dict): WRITES_SCHEMA,
        vol.Optional("failsafe"): FAILSAFE_SCHEMA,
        vol.Optional("discovery", default=dict): DISCOVERY_SCHEMA,
    }
)


@dataclass(frozen=True, slots=True)
class Register:
    """One named value in the device's register map."""

    name: str
    address: int
    function: str
    type: str
    count: int
    word_order: str
    scale: float
    offset: float
    entity: str | None
    minimum: float | None
    maximum: float | None
    poll: bool
    simulate: Any

    @property
    def end(self) -> int:
        """The first address after this register."""
        return self.address + self.count

    def decode(self, words: Sequence[int]) -> Any:
        """Turn raw registers (or bits) into the value, scaled; DecodeError when impossible."""
        if len(words) != self.count:
            raise DecodeError(f"{self.name}: expected {self.count} registers, got {len(words)}")
        if self.type == "bool":
            return bool(words[0])
        if self.type == "string":
            raw = b"".join(int(word & 0xFFFF).to_bytes(2, "big") for word in words)
            return raw.replace(b"\x00", b"").decode("ascii", "replace").strip()
        ordered = list(words) if self.word_order == "big" else list(reversed(words))
        if any(not 0 <= word <= 0xFFFF for word in ordered):
            raise DecodeError(f"{self.name}: a register outside 0..65535")
        raw_bytes = b"".join(word.to_bytes(2, "big") for word in ordered)
        value: float = struct.unpack(_STRUCT[self.type], raw_bytes)[0]
        if isinstance(value, float) and not math.isfinite(value):
            raise DecodeError(f"{self.name}: not a number ({value})")
        scaled = value * self.scale + self.offset
        if self.minimum is not None and scaled < self.minimum:
            raise DecodeError(f"{self.name} = {scaled:g} is below its minimum {self.minimum:g}")
        if self.maximum is not None and scaled > self.maximum:
            raise DecodeError(f"{self.name} = {scaled:g} is above its maximum {self.maximum:g}")
        if self.type.startswith(("u", "s")) and self.scale == 1.0 and self.offset == 0.0:
            return int(scaled)
        return round(scaled, 6)

    def encode(self, value: Any) -> list[int]:
        """Turn a value into raw registers (or one bit); ValueError when it does not fit."""
        if self.type == "bool":
            return [1 if value else 0]
        if self.type == "string":
            data = str(value).encode("ascii")[: self.count * 2].ljust(self.count * 2, b"\x00")
            return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        raw = (float(value) - self.offset) / self.scale
        if self.type.startswith("float"):
            packed = struct.pack(_STRUCT[self.type], raw)
        else:
            try:
                packed = struct.pack(_STRUCT[self.type], round(raw))
            except struct.error as err:
                raise ValueError(f"{value!r} does not fit {self.name} ({self.type})") from err
        words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
        return words if self.word_order == "big" else list(reversed(words))


@dataclass(frozen=True, slots=True)
class Block:
    """One read: a run of addresses of one function, and the registers in it."""

    function: str
    address: int
    count: int
    registers: tuple[Register, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated device profile."""

    key: str
    name: str
    manufacturer: str | None
    model: str | None
    unit_id: int
    port: int
    framer: str
    phases: int
    registers: Mapping[str, Register]
    status: Mapping[str, Any]
    writes: Mapping[str, Mapping[str, Any]]
    failsafe: Mapping[str, Any] | None
    discovery: Mapping[str, Any]
    max_gap: int
    source: str | None = None
    blocks: tuple[Block, ...] = field(default=())

    def status_of(self, values: Mapping[str, Any]) -> str | None:
        """The connector status the polled values say; DecodeError for an unknown code."""
        raw = values.get(self.status["register"])
        if raw is None:
            return None
        if self.status["fault_on_error"] and self.error_of(values) is not None:
            return str(ConnectorStatus.FAULTED)
        plugged = self.status.get("plugged")
        if plugged is not None:
            cable = values.get(plugged["register"])
            if cable in plugged["values"] and raw in plugged["map"]:
                return str(plugged["map"][raw])
        found = self.status["map"].get(raw)
        if found is None:
            raise DecodeError(f"{self.status['register']} = {raw!r} is not a known status code")
        return str(found)

    def error_of(self, values: Mapping[str, Any]) -> str | None:
        """The vendor error code, if the profile has one and it is not the ok value."""
        register = self.status.get("error_register")
        if register is None:
            return None
        value = values.get(register)
        if value is None or value == self.status["error_ok"]:
            return None
        return str(value)


def plan_reads(registers: Iterable[Register], max_gap: int = 0) -> tuple[Block, ...]:
    """Group the polled registers into the fewest reads: runs of one function, each no longer
    than Modbus allows, spanning at most max_gap unread addresses between two registers."""
    blocks: list[Block] = []
    by_function: dict[str, list[Register]] = {}
    for register in registers:
        if register.poll:
            by_function.setdefault(register.function, []).append(register)
    for function in FUNCTIONS:
        members = sorted(by_function.get(function, ()), key=lambda r: (r.address, r.count))
        limit = MAX_BITS if function in BIT_FUNCTIONS else MAX_REGISTERS
        run: list[Register] = []
        start = end = 0
        for register in members:
            if run and (register.address > end + max_gap or register.end - start > limit):
                blocks.append(Block(function, start, end - start, tuple(run)))
                run = []
            if not run:
                start, end = register.address, register.end
            run.append(register)
            end = max(end, register.end)
        if run:
            blocks.append(Block(function, start, end - start, tuple(run)))
    return tuple(blocks)


def _register(name: str, spec: Mapping[str, Any], word_order: str) -> Register:
    function = spec["function"]
    kind = spec.get("type") or ("bool" if function in BIT_FUNCTIONS else "u16")
    if function in BIT_FUNCTIONS and kind != "bool":
        raise vol.Invalid(f"a {function} holds one bit: type must be bool", path=[name, "type"])
    if kind == "bool" and function not in BIT_FUNCTIONS:
        raise vol.Invalid("type bool is for coils and discrete inputs", path=[name, "type"])
    if kind == "string":
        if "count" not in spec:
            raise vol.Invalid("a string needs count (registers)", path=[name, "count"])
        count = spec["count"]
    else:
        count = TYPE_WORDS[kind]
        if spec.get("count", count) != count:
            raise vol.Invalid(f"{kind} is {count} register(s)", path=[name, "count"])
    return Register(
        name=name,
        address=spec["address"],
        function=function,
        type=kind,
        count=count,
        word_order=spec.get("word_order", word_order),
        scale=spec["scale"],
        offset=spec["offset"],
        entity=spec.get("entity"),
        minimum=spec.get("min"),
        maximum=spec.get("max"),
        poll=spec["poll"],
        simulate=spec.get("simulate"),
    )


def _check_names(config: Mapping[str, Any], registers: Mapping[str, Register]) -> None:
    def need(name: str, path: list[Any], polled: bool = False) -> None:
        register = registers.get(name)
        if register is None:
            raise vol.Invalid(f"no register named {name!r} in registers", path=path)
        if polled and not register.poll:
            raise vol.Invalid(f"register {name!r} is not polled (poll: false)", path=path)

    status = config["status"]
    need(status["register"], ["status", "register"], polled=True)
    if "plugged" in status:
        need(status["plugged"]["register"], ["status", "plugged", "register"], polled=True)
    if "error_register" in status:
        need(status["error_register"], ["status", "error_register"], polled=True)
    for kind, write in config["writes"].items():
        need(write["register"], ["writes", kind, "register"])
        if registers[write["register"]].function not in WRITABLE:
            raise vol.Invalid(
                f"register {write['register']!r} is not writable (holding or coil)",
                path=["writes", kind, "register"],
            )
        if "readback" in write:
            need(write["readback"], ["writes", kind, "readback"], polled=True)
    failsafe = config.get("failsafe")
    if failsafe is not None:
        if "register" in failsafe:
            need(failsafe["register"], ["failsafe", "register"])
        elif "rewrite" in failsafe:
            if failsafe["rewrite"] not in config["writes"]:
                raise vol.Invalid(
                    f"failsafe rewrites {failsafe['rewrite']!r}, which writes does not define",
                    path=["failsafe", "rewrite"],
                )
        else:
            raise vol.Invalid("failsafe needs register or rewrite", path=["failsafe"])


def build_profile(key: str, config: Mapping[str, Any]) -> Profile:
    """Make a Profile from a section PROFILE_SCHEMA validated; vol.Invalid when inconsistent."""
    registers = {
        name: _register(name, spec, config["word_order"])
        for name, spec in config["registers"].items()
    }
    _check_names(config, registers)
    return Profile(
        key=key,
        name=config["name"],
        manufacturer=config.get("manufacturer"),
        model=config.get("model"),
        unit_id=config["unit_id"],
        port=config["port"],
        framer=config["framer"],
        phases=config["phases"],
        registers=registers,
        status=config["status"],
        writes=config["writes"],
        failsafe=config.get("failsafe"),
        discovery=config["discovery"],
        max_gap=config["max_gap"],
        source=config.get("source"),
        blocks=plan_reads(registers.values(), config["max_gap"]),
    )


def _validate(config: Any) -> Any:
    """PROFILE_SCHEMA and the cross-checks (names that must exist), as one validator."""
    validated = PROFILE_SCHEMA(config)
    try:
        registers = {
            name: _register(name, spec, validated["word_order"])
            for name, spec in validated["registers"].items()
        }
    except vol.Invalid as err:
        raise vol.Invalid(err.msg, path=["registers", *err.path]) from None
    _check_names(validated, registers)
    return validated


# The schema configuration.yaml's custom profiles and profile files are checked with.
validate_profile: Final = _validate


def load_profile_file(path: Path) -> Profile:
    """Load and check one profile file; ConfigError with file, line and key when wrong."""
    found, errors = load_data_files([path], validate_profile, build_profile)
    if errors:
        raise errors[0]
    return found[path.stem]


def load_profiles(extra: Iterable[Path] = ()) -> tuple[dict[str, Profile], list[ConfigError]]:
    """The built-in profiles and those plugins add (by file stem); errors of bad files."""
    paths = [*sorted(PROFILE_DIR.glob("*.yaml")), *extra]
    return load_data_files(paths, validate_profile, build_profile)
