"""MQTT charger profiles: which topics a charger publishes, what they mean, how to command it.

A profile names each value a charger publishes (a topic under the charger's base topic, an
optional JSON path or jinja2 value template into its payload, a scale, a range, the entity
it feeds), says how the values give the connector status in the hub's vocabulary, which
topic carries the charger's availability (its last will), and which command topics stand
behind which ``charger.*`` capability. Built-in profiles are YAML files in ``profiles/``,
plugins add files through the ``evhub_device_profiles`` hook, a user writes one inline in
configuration.yaml (``mqtt: profiles:``): the generic profile. All pass the same schema.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jinja2
import voluptuous as vol

from hub.charger import ConnectorStatus, status_from_iec61851
from hub.config import ConfigError, load_data_files
from hub.exceptions import HubError

PROFILE_DIR: Final = Path(__file__).with_name("profiles")

# The port entities a value may feed (as the Modbus integration's, units alike).
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
    "temperature",
)
STATUSES: Final = tuple(str(status) for status in ConnectorStatus)
COMMAND_KINDS: Final = ("current_limit", "enable", "start_stop", "phases", "reset")
MAX_TOPIC_LENGTH: Final = 1024
MAX_TEMPLATE_LENGTH: Final = 2000
SERIAL_PLACEHOLDER: Final = "{serial}"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PATH_PART = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


class ProfileError(HubError, ValueError):
    """A profile is not usable."""

    http_status = 400
    error_code = "invalid"


class ValueDecodeError(HubError, ValueError):
    """A payload does not give the value its profile describes (a malformed payload)."""

    error_code = "invalid_value"


def check_topic(value: Any, *, what: str = "topic", placeholder: bool = False) -> str:
    """A topic to publish or subscribe exactly: no wildcards, no control characters."""
    if not isinstance(value, str):
        raise vol.Invalid(f"expected a {what} (text)")
    text = value.replace(SERIAL_PLACEHOLDER, "x") if placeholder else value
    if not text:
        raise vol.Invalid(f"the {what} is empty")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_TOPIC_LENGTH:
        raise vol.Invalid(f"the {what} is longer than {MAX_TOPIC_LENGTH} bytes")
    if "+" in text or "#" in text:
        raise vol.Invalid(f"the {what} {value!r} has an MQTT wildcard (+ or #)")
    if _CONTROL.search(text):
        raise vol.Invalid(f"the {what} {value!r} has a control character")
    if text.startswith("$"):
        raise vol.Invalid(f"the {what} {value!r} starts with $ (the broker's own topics)")
    if "{" in text or "}" in text:
        raise vol.Invalid(f"the {what} {value!r} has braces (only {{serial}} in a base)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise vol.Invalid(f"the {what} {value!r} is not valid UTF-8") from None
    return value


def _relative_topic(value: Any) -> str:
    topic = check_topic(value)
    if topic.startswith("/") or topic.endswith("/") or "//" in topic:
        raise vol.Invalid(f"{topic!r}: a topic under the base has no empty levels")
    return topic


def _base(value: Any) -> str:
    topic = check_topic(value, what="base topic", placeholder=True)
    if topic.endswith("/"):
        raise vol.Invalid("the base topic does not end with /")
    return topic


def parse_path(value: Any) -> tuple[str | int, ...]:
    """A JSON path (``$.a.b[0]``, ``nrg[11]``, ``["odd key"]``) as keys and indexes."""
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected a JSON path such as $.a.b[0]")
    text = value.strip()
    if text.startswith("$"):
        text = text[1:]
    parts: list[str | int] = []
    position = 0
    while position < len(text):
        match = _PATH_PART.match(text, position)
        if match is None or match.end() == position:
            raise vol.Invalid(f"{value!r} is not a JSON path (at {text[position:][:20]!r})")
        name, index, double, single = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(name if name is not None else (double if double is not None else single))
        position = match.end()
    if not parts or len(parts) > 16:
        raise vol.Invalid(f"{value!r}: a JSON path has 1 to 16 steps")
    return tuple(parts)


def _template(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected a jinja2 template")
    if len(value) > MAX_TEMPLATE_LENGTH:
        raise vol.Invalid(f"a template is at most {MAX_TEMPLATE_LENGTH} characters")
    try:
        jinja2.Environment(autoescape=False).parse(value)
    except jinja2.TemplateSyntaxError as err:
        raise vol.Invalid(f"template syntax error (line {err.lineno}): {err.message}") from None
    return value


def parse_status(value: Any) -> str:
    """A connector status, or an IEC 61851 state mapped onto one; vol.Invalid if neither."""
    text = str(value)
    if text in STATUSES:
        return text
    if 1 <= len(text) <= 2 and text[0].upper() in "ABCDEF":
        return str(status_from_iec61851(text))
    raise vol.Invalid(
        f"{text!r} is neither a connector status ({', '.join(STATUSES)}) nor an IEC 61851"
        " state (A-F)"
    )


def _name(value: Any) -> str:
    return str(vol.Match(r"^[a-z][a-z0-9_]{0,47}$", msg="expected a lower-case name")(value))


def _key(value: Any) -> Any:
    """A map key as YAML gives it: numbers, booleans and text (JSON's scalars)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value) if value.is_integer() else value
    raise vol.Invalid("expected a number, true/false, text or null")


def _one_way(section: dict[str, Any]) -> dict[str, Any]:
    if "path" in section and "template" in section:
        raise vol.Invalid("give path or template, not both")
    return section


VALUE_SCHEMA: Final = vol.All(
    {
        vol.Required("topic"): _relative_topic,
        # The payload is JSON (go-e, openWB); false: the raw text.
        vol.Optional("json", default=True): bool,
        vol.Optional("path"): parse_path,
        vol.Optional("template"): _template,
        vol.Optional("scale", default=1.0): vol.All(
            vol.Coerce(float), vol.Range(min=1e-9, max=1e9)
        ),
        vol.Optional("entity"): vol.In(ENTITY_KEYS),
        vol.Optional("min"): vol.Coerce(float),
        vol.Optional("max"): vol.Coerce(float),
        vol.Optional("description"): str,
    },
    _one_way,
)

_SCALAR: Final = vol.Any(bool, int, float, str, None)

_COMMAND_COMMON: Final = {
    vol.Required("topic"): _relative_topic,
    # A value the charger publishes back once it took the command (confirmation).
    vol.Optional("readback"): _name,
    vol.Optional("retain", default=False): bool,
}

COMMANDS_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("current_limit"): {
            **_COMMAND_COMMON,
            vol.Optional("min", default=6.0): vol.Coerce(float),
            vol.Optional("max", default=32.0): vol.Coerce(float),
            # Whole amperes only (go-e's amp is an integer).
            vol.Optional("integer", default=False): bool,
            # Sent when a limit below min is asked (0: pause), if the charger allows it.
            vol.Optional("pause"): vol.Coerce(float),
        },
        vol.Optional("enable"): {
            **_COMMAND_COMMON,
            vol.Required("enabled"): _SCALAR,
            vol.Required("disabled"): _SCALAR,
        },
        vol.Optional("start_stop"): {
            **_COMMAND_COMMON,
            vol.Required("start"): _SCALAR,
            vol.Required("stop"): _SCALAR,
        },
        vol.Optional("phases"): {
            **_COMMAND_COMMON,
            vol.Required("values"): {vol.In([1, 3]): _SCALAR},
        },
        vol.Optional("reset"): {**_COMMAND_COMMON, vol.Required("payload"): _SCALAR},
    }
)


def _status_one_way(section: dict[str, Any]) -> dict[str, Any]:
    if ("value" in section) == ("template" in section):
        raise vol.Invalid("give value (with map) or template, one of them")
    if "value" in section and "map" not in section:
        raise vol.Invalid("a status value needs a map", path=["map"])
    return section


STATUS_SCHEMA: Final = vol.All(
    {
        vol.Optional("value"): _name,
        vol.Optional("map"): vol.All({_key: parse_status}, vol.Length(min=1)),
        # Renders a connector status or IEC 61851 state from ``values`` (None: not known).
        vol.Optional("template"): _template,
        # A value holding the vendor's error code; error_ok lists the codes meaning none.
        vol.Optional("error"): _name,
        vol.Optional("error_ok", default=[0, None]): [_key],
        vol.Optional("fault_on_error", default=False): bool,
    },
    _status_one_way,
)

AVAILABILITY_SCHEMA: Final = vol.Schema(
    {
        vol.Required("topic"): _relative_topic,
        vol.Optional("json", default=True): bool,
        vol.Optional("online", default=True): _key,
        vol.Optional("offline", default=False): _key,
    }
)

PROFILE_SCHEMA: Final = vol.Schema(
    {
        vol.Required("name"): vol.All(str, vol.Length(min=1, max=80)),
        vol.Optional("manufacturer"): vol.All(str, vol.Length(max=80)),
        vol.Optional("model"): vol.All(str, vol.Length(max=80)),
        vol.Optional("source"): str,
        # Every topic below is under base; {serial} is the charger's serial from its config.
        vol.Required("base"): _base,
        vol.Optional("availability"): AVAILABILITY_SCHEMA,
        # Topics whose messages only show the charger is alive (no value, no entity).
        vol.Optional("alive", default=list): [_relative_topic],
        # Seconds without a message (on any of its topics) before the charger is offline.
        vol.Optional("silent_after", default=120.0): vol.All(
            vol.Coerce(float), vol.Range(min=1, max=86400)
        ),
        vol.Optional("phases", default=3): vol.In([1, 3]),
        vol.Required("values"): vol.All({_name: VALUE_SCHEMA}, vol.Length(min=1)),
        vol.Required("status"): STATUS_SCHEMA,
        vol.Optional("commands", default=dict): COMMANDS_SCHEMA,
        # Seconds a command waits for its readback before it is reported unconfirmed.
        vol.Optional("command_timeout", default=5.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=120)
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Value:
    """One named value a charger publishes."""

    name: str
    topic: str
    json: bool
    path: tuple[str | int, ...] | None
    template: str | None
    scale: float
    entity: str | None
    minimum: float | None
    maximum: float | None

    def extract(self, decoded: Any) -> Any:
        """The value inside a decoded payload (path, scale, range); ValueDecodeError if not."""
        value = decoded
        if self.path is not None:
            for step in self.path:
                try:
                    if isinstance(step, int) and not isinstance(value, list):
                        raise TypeError
                    if isinstance(step, str) and not isinstance(value, dict):
                        raise TypeError
                    value = value[step]
                except (KeyError, IndexError, TypeError):
                    raise ValueDecodeError(
                        f"{self.name}: the payload has nothing at {_show(self.path)}"
                    ) from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Scale a number and check its range; other values pass as they are."""
        if isinstance(value, bool) or value is None or isinstance(value, str | list | dict):
            if self.minimum is not None or self.maximum is not None:
                if value is None:
                    return None
                raise ValueDecodeError(f"{self.name}: expected a number, got {_short(value)}")
            return value
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueDecodeError(f"{self.name}: not a number ({_short(value)})")
        scaled = value * self.scale if self.scale != 1.0 else value
        if self.minimum is not None and scaled < self.minimum:
            raise ValueDecodeError(
                f"{self.name} = {scaled:g} is below its minimum {self.minimum:g}"
            )
        if self.maximum is not None and scaled > self.maximum:
            raise ValueDecodeError(
                f"{self.name} = {scaled:g} is above its maximum {self.maximum:g}"
            )
        if isinstance(scaled, float):
            return round(scaled, 6)
        return scaled


def _show(path: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated MQTT charger profile."""

    key: str
    name: str
    manufacturer: str | None
    model: str | None
    source: str | None
    base: str
    availability: Mapping[str, Any] | None
    alive: tuple[str, ...]
    silent_after: float
    phases: int
    values: Mapping[str, Value]
    status: Mapping[str, Any]
    commands: Mapping[str, Mapping[str, Any]]
    command_timeout: float

    def base_for(self, serial: str | None) -> str:
        """The base topic of one charger."""
        if SERIAL_PLACEHOLDER in self.base:
            if serial is None:
                raise ProfileError(f"profile {self.key} needs the charger's serial")
            return self.base.replace(SERIAL_PLACEHOLDER, serial)
        return self.base

    def topics(self) -> set[str]:
        """Every topic under the base a charger of this profile is subscribed to."""
        found = {value.topic for value in self.values.values()} | set(self.alive)
        if self.availability is not None:
            found.add(self.availability["topic"])
        return found


def _check_names(config: Mapping[str, Any]) -> None:
    values = config["values"]

    def need(name: str, path: list[Any]) -> None:
        if name not in values:
            raise vol.Invalid(f"no value named {name!r} in values", path=path)

    status = config["status"]
    if "value" in status:
        need(status["value"], ["status", "value"])
    if "error" in status:
        need(status["error"], ["status", "error"])
    for kind, command in config["commands"].items():
        if "readback" in command:
            need(command["readback"], ["commands", kind, "readback"])


def build_profile(key: str, config: Mapping[str, Any]) -> Profile:
    """Make a Profile from a section the schema validated."""
    _check_names(config)
    values = {
        name: Value(
            name=name,
            topic=spec["topic"],
            json=spec["json"],
            path=spec.get("path"),
            template=spec.get("template"),
            scale=spec["scale"],
            entity=spec.get("entity"),
            minimum=spec.get("min"),
            maximum=spec.get("max"),
        )
        for name, spec in config["values"].items()
    }
    return Profile(
        key=key,
        name=config["name"],
        manufacturer=config.get("manufacturer"),
        model=config.get("model"),
        source=config.get("source"),
        base=config["base"],
        availability=config.get("availability"),
        alive=tuple(config["alive"]),
        silent_after=config["silent_after"],
        phases=config["phases"],
        values=values,
        status=config["status"],
        commands=config["commands"],
        command_timeout=config["command_timeout"],
    )


def _validate(config: Any) -> Any:
    validated = PROFILE_SCHEMA(config)
    _check_names(validated)
    return validated


# The schema configuration.yaml's profiles and profile files are checked with.
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
