"""OCPP-J framing and compiled JSON schema validation, for OCPP 1.6J and 2.0.1.

Frames are parsed with orjson and payloads checked against the JSON schemas bundled with the
`ocpp` package, each compiled once with fastjsonschema (on first use, or all up front with
`precompile`). The `ocpp` package itself is never imported: its per-message jsonschema path
costs 0.2-0.9 ms a message.

Deliberate choices:
- 2.0.1 schemas (which declare draft-06) are compiled as draft-04, as the `ocpp` package
  does: an integer field must be a JSON integer, so 1.0 is refused and handlers get ints.
- `multipleOf` (OCPP 1.6 charging rates, `multipleOf: 0.1`) is checked with a relative
  tolerance of 1e-9 instead of exact decimal arithmetic, so a float such as 21.399999999999995
  (21.4 after arithmetic) is accepted while 4.11 is still rejected.
- `format: date-time` is RFC 3339 ("2026-11-24T10:00:00Z", fractional seconds, "+01:00" /
  "+0100" offsets), except that a timestamp without an offset is accepted too, and read as
  UTC: OCPP times are UTC, many chargers leave the "Z" off, and refusing their status and
  meter values would lose them. Impossible dates (2026-02-29, month 13) are refused.
"""

from __future__ import annotations

import importlib.util
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Final

import fastjsonschema
import orjson

from hub.exceptions import HubError
from integrations.ocpp.limits import tighten


class OcppVersion(StrEnum):
    """OCPP versions, named by their websocket subprotocol."""

    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"


SUPPORTED_SUBPROTOCOLS: Final[tuple[str, ...]] = (OcppVersion.V201.value, OcppVersion.V16.value)

CALL: Final = 2
CALLRESULT: Final = 3
CALLERROR: Final = 4

MAX_MESSAGE_ID_LENGTH: Final = 36
MAX_DESCRIPTION_LENGTH: Final = 255


class ErrorCode(StrEnum):
    """OCPP error codes, in their OCPP 2.0.1 spelling; `error_code` gives a version's own."""

    FORMAT_VIOLATION = "FormatViolation"
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


# OCPP 1.6 misspells two codes and lacks two others.
_V16_CODES: Final[dict[ErrorCode, str]] = {
    ErrorCode.FORMAT_VIOLATION: "FormationViolation",
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: "OccurenceConstraintViolation",
    ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED: "ProtocolError",
    ErrorCode.RPC_FRAMEWORK_ERROR: "GenericError",
}


def error_code(version: OcppVersion, kind: ErrorCode) -> str:
    """Return the error code `kind` as spelled by `version`."""
    if version is OcppVersion.V16:
        return _V16_CODES.get(kind, kind.value)
    return kind.value


@dataclass(frozen=True, slots=True)
class Call:
    """A request: [2, message_id, action, payload]."""

    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    """A response: [3, message_id, payload]."""

    message_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    """An error response: [4, message_id, code, description, details]."""

    message_id: str
    code: str
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallError


class FrameError(HubError):
    """A frame or payload that breaks OCPP-J; carries what the CALLERROR should say.

    `message_id` is None when the frame was unreadable. `message_type_id` is the type of the
    offending frame when known: only a CALL (or an unknown type) is answered with a CALLERROR,
    never a CALLRESULT or CALLERROR; `should_reply` says so.
    """

    def __init__(
        self,
        message_id: str | None,
        code: str,
        description: str,
        details: dict[str, Any] | None = None,
        message_type_id: int | None = None,
        out_of_range: bool = False,
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.message_id = message_id
        self.code = code
        self.description = description
        self.details: dict[str, Any] = {} if details is None else details
        self.message_type_id = message_type_id
        # A number beyond the range a charger can send (a schema or evhub bound).
        self.out_of_range = out_of_range

    @property
    def should_reply(self) -> bool:
        """Whether the peer expects a CALLERROR for this frame."""
        return self.message_id is not None and self.message_type_id not in (
            CALLRESULT,
            CALLERROR,
        )


# --- Frames -----------------------------------------------------------------------------------

# Enough of a broken frame's head to answer it: type id and a plain message id.
_HEAD_STR: Final = re.compile(r'\s*\[\s*(\d{1,3})\s*,\s*"([^"\\]{0,36})"')
_HEAD_BYTES: Final = re.compile(rb'\s*\[\s*(\d{1,3})\s*,\s*"([^"\\]{0,36})"')


def parse_frame(raw: str | bytes, version: OcppVersion) -> Frame:
    """Parse one OCPP-J frame; raise FrameError naming the message id whenever it is readable."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _unparsable(raw, version) from None
    if type(frame) is not list or not frame:
        raise FrameError(None, error_code(version, ErrorCode.FORMAT_VIOLATION), "not an array")
    type_id = frame[0] if type(frame[0]) is int else None
    message_id = frame[1] if len(frame) > 1 and type(frame[1]) is str else None
    if message_id is None:
        raise FrameError(
            None,
            error_code(version, ErrorCode.FORMAT_VIOLATION),
            "message id missing or not a string",
            message_type_id=type_id,
        )
    if type_id == CALL:
        if len(frame) != 4:
            raise _format_error(version, message_id, type_id, "CALL must have 4 elements")
        _check_message_id(version, message_id, type_id)
        action, payload = frame[2], frame[3]
        if type(action) is not str:
            raise _format_error(version, message_id, type_id, "action must be a string", "action")
        if type(payload) is not dict:
            raise _format_error(
                version, message_id, type_id, "payload must be an object", "payload"
            )
        return Call(message_id, action, payload)
    if type_id == CALLRESULT:
        if len(frame) != 3:
            raise _format_error(version, message_id, type_id, "CALLRESULT must have 3 elements")
        _check_message_id(version, message_id, type_id)
        payload = frame[2]
        if type(payload) is not dict:
            raise _format_error(
                version, message_id, type_id, "payload must be an object", "payload"
            )
        return CallResult(message_id, payload)
    if type_id == CALLERROR:
        # Lenient on a missing or null details: nothing is answered to a CALLERROR, and
        # dropping it would leave our pending call to time out.
        if len(frame) not in (4, 5):
            raise _format_error(version, message_id, type_id, "CALLERROR must have 5 elements")
        _check_message_id(version, message_id, type_id)
        code, description = frame[2], frame[3]
        details = frame[4] if len(frame) == 5 and frame[4] is not None else {}
        if type(code) is not str or type(description) is not str or type(details) is not dict:
            raise _format_error(
                version, message_id, type_id, "CALLERROR must hold code, description, details"
            )
        return CallError(message_id, code, description, details)
    raise FrameError(
        message_id,
        error_code(version, ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED),
        f"message type id {frame[0]!r} is not supported",
        {"field": "messageTypeId"},
        type_id,
    )


def _check_message_id(version: OcppVersion, message_id: str, type_id: int) -> None:
    """Raise FrameError if the message id is longer than OCPP-J allows."""
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise _format_error(
            version,
            message_id,
            type_id,
            f"message id longer than {MAX_MESSAGE_ID_LENGTH} characters",
            "messageId",
        )


def _format_error(
    version: OcppVersion, message_id: str, type_id: int, description: str, field: str = ""
) -> FrameError:
    """Build the FrameError for a frame that is JSON but not OCPP-J."""
    return FrameError(
        message_id,
        error_code(version, ErrorCode.FORMAT_VIOLATION),
        description,
        {"field": field} if field else None,
        type_id,
    )


def _unparsable(raw: str | bytes, version: OcppVersion) -> FrameError:
    """Build the FrameError for invalid JSON, with the id if the frame's head gives it."""
    code = error_code(version, ErrorCode.FORMAT_VIOLATION)
    message_id: str | None = None
    type_id: int | None = None
    if isinstance(raw, str):
        match = _HEAD_STR.match(raw)
        if match:
            type_id, message_id = int(match[1]), match[2]
    else:
        head = _HEAD_BYTES.match(raw)
        if head:
            try:
                message_id = head[2].decode()
            except UnicodeDecodeError:
                pass
            else:
                type_id = int(head[1])
    return FrameError(message_id, code, "frame is not valid JSON", None, type_id)


def call_frame(message_id: str, action: str, payload: dict[str, Any]) -> str:
    """Return the CALL frame [2, message_id, action, payload] as compact JSON."""
    return orjson.dumps([CALL, message_id, action, payload], option=orjson.OPT_UTC_Z).decode()


def result_frame(message_id: str, payload: dict[str, Any]) -> str:
    """Return the CALLRESULT frame [3, message_id, payload] as compact JSON."""
    return orjson.dumps([CALLRESULT, message_id, payload], option=orjson.OPT_UTC_Z).decode()


def error_frame(
    message_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> str:
    """Return the CALLERROR frame [4, message_id, code, description, details] as compact JSON."""
    description = description[:MAX_DESCRIPTION_LENGTH]
    return orjson.dumps(
        [CALLERROR, message_id, code, description, {} if details is None else details]
    ).decode()


# --- Schemas ----------------------------------------------------------------------------------

_Validator = Callable[[Any], object]

_REQUEST: Final = False
_RESPONSE: Final = True
_SCHEMA_DIRS: Final = {OcppVersion.V16: "v16", OcppVersion.V201: "v201"}
_REQUEST_SUFFIX: Final = {OcppVersion.V16: "", OcppVersion.V201: "Request"}
_MULTIPLE_OF_TOLERANCE: Final = 1e-9
_ENUM_KEY: Final = "x-evhub-enum"
_MAX_ECHO: Final = 100  # of a charger's own text (action, property name) echoed back

_validators: dict[tuple[OcppVersion, str, bool], _Validator] = {}
_compile_lock = threading.Lock()


def validate_call(version: OcppVersion, call: Call) -> None:
    """Check a charger's request against its schema; raise FrameError if it breaks it."""
    validator = _validators.get((version, call.action, _REQUEST)) or _validator(
        version, call.action, _REQUEST, call.message_id, CALL
    )
    try:
        validator(call.payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _schema_error(version, call.message_id, CALL, exc) from None


def validate_result(version: OcppVersion, action: str, result: CallResult) -> None:
    """Check a charger's response to our `action` against its schema; raise FrameError if not."""
    validator = _validators.get((version, action, _RESPONSE)) or _validator(
        version, action, _RESPONSE, result.message_id, CALLRESULT
    )
    try:
        validator(result.payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _schema_error(version, result.message_id, CALLRESULT, exc) from None


def validate_outbound_call(version: OcppVersion, action: str, payload: dict[str, Any]) -> None:
    """Check a request of ours against its schema; raise FrameError (no message id) if not."""
    validator = _validators.get((version, action, _REQUEST)) or _validator(
        version, action, _REQUEST, None, CALL
    )
    try:
        validator(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _schema_error(version, None, CALL, exc) from None


def precompile(version: OcppVersion) -> int:
    """Compile every schema of `version` now (about 1 s for 2.0.1); return how many."""
    count = 0
    for direction in (_REQUEST, _RESPONSE):
        for action in sorted(_actions(version, direction)):
            _validator(version, action, direction, None, None)
            count += 1
    return count


@cache
def _schema_dir(version: OcppVersion) -> Path:
    """Return the directory of the `ocpp` package's schemas for `version`, without importing it."""
    spec = importlib.util.find_spec("ocpp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the ocpp package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / _SCHEMA_DIRS[version] / "schemas"


@cache
def _actions(version: OcppVersion, direction: bool) -> frozenset[str]:
    """Return the actions that have a request (or response) schema in `version`."""
    suffix = "Response" if direction is _RESPONSE else _REQUEST_SUFFIX[version]
    names = (path.stem for path in _schema_dir(version).glob("*.json"))
    if suffix:
        return frozenset(name.removesuffix(suffix) for name in names if name.endswith(suffix))
    return frozenset(name for name in names if not name.endswith("Response"))


def _validator(
    version: OcppVersion,
    action: str,
    direction: bool,
    message_id: str | None,
    type_id: int | None,
) -> _Validator:
    """Return the compiled validator, compiling it once; raise NotImplemented if none exists."""
    key = (version, action, direction)
    validator = _validators.get(key)
    if validator is not None:
        return validator
    # Only names from the schema directory's listing reach the file system.
    if action not in _actions(version, direction):
        shown = action[:_MAX_ECHO]
        raise FrameError(
            message_id,
            error_code(version, ErrorCode.NOT_IMPLEMENTED),
            f"{shown} is not an OCPP {version.value.removeprefix('ocpp')} action",
            {"action": shown},
            type_id,
        )
    # One lock: a start-up `precompile` thread and the loop never compile the same schema twice.
    with _compile_lock:
        validator = _validators.get(key)
        if validator is None:
            validator = _validators[key] = _compile(version, action, direction)
    return validator


_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def is_date_time(value: Any) -> bool:
    """RFC 3339 date-time, the offset optional (then UTC); impossible dates refused."""
    if not isinstance(value, str):
        return True  # the schema's type check speaks for other types
    match = _DATE_TIME.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        datetime(year, month, day, hour, minute, min(second, 59))  # a leap second is fine
    except ValueError:
        return False
    return True


def _compile(version: OcppVersion, action: str, direction: bool) -> _Validator:
    """Compile the schema for `action` in one direction."""
    suffix = "Response" if direction is _RESPONSE else _REQUEST_SUFFIX[version]
    path = _schema_dir(version) / f"{action}{suffix}.json"
    schema = orjson.loads(path.read_text(encoding="utf-8-sig"))
    steps = _pop_multiple_of(schema, ())
    # The ranges a real charger can send (32-bit integers, non-negative ids, a sane unit
    # multiplier), checked by the compiled code like the schema's own bounds.
    tighten(schema)
    # 2.0.1 schemas declare draft-06, where 1.0 is an integer; read them as draft-04 (as the
    # ocpp package does) so integer fields reach handlers as ints.
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"
    formats: dict[str, Callable[[Any], bool]] = {"date-time": is_date_time}
    _enums_to_formats(schema, formats)
    # use_default=False: schema defaults must never be written into a charger's payload.
    compiled = fastjsonschema.compile(schema, formats=formats, use_default=False)
    if not steps:
        return compiled

    def validate(data: Any) -> object:
        result = compiled(data)
        for field_path, step in steps:
            for name, value in _walk(data, field_path, "data"):
                _check_multiple_of(name, value, step)
        return result

    return validate


def _enums_to_formats(node: Any, formats: dict[str, Callable[[Any], bool]]) -> None:
    """Turn string enums into set-membership formats, keeping the choices under _ENUM_KEY.

    fastjsonschema tests an enum value against each choice in turn, which is half the cost of
    a MeterValues; a frozenset lookup behind its custom-format hook is one C call.
    """
    if isinstance(node, list):
        for item in node:
            _enums_to_formats(item, formats)
        return
    if not isinstance(node, dict):
        return
    choices = node.get("enum")
    if (
        node.get("type") == "string"
        and "format" not in node
        and isinstance(choices, list)
        and all(isinstance(choice, str) for choice in choices)
    ):
        name = f"ocpp-enum-{len(formats)}"
        formats[name] = frozenset(choices).__contains__
        node["format"] = name
        node[_ENUM_KEY] = node.pop("enum")
    for key, value in node.items():
        if key != _ENUM_KEY:
            _enums_to_formats(value, formats)


_FieldPath = tuple[str | None, ...]  # None stands for every item of an array


def _pop_multiple_of(schema: Any, path: _FieldPath) -> list[tuple[_FieldPath, float]]:
    """Remove float `multipleOf` rules from `schema`; return where they were and their step."""
    if not isinstance(schema, dict):
        return []
    found: list[tuple[_FieldPath, float]] = []
    if isinstance(schema.get("multipleOf"), float):
        found.append((path, schema.pop("multipleOf")))
    for key, sub in schema.get("properties", {}).items():
        found.extend(_pop_multiple_of(sub, (*path, key)))
    found.extend(_pop_multiple_of(schema.get("items"), (*path, None)))
    return found


def _walk(node: Any, path: _FieldPath, name: str) -> Iterator[tuple[str, Any]]:
    """Yield (name, value) for each value found at `path` in `node`."""
    if not path:
        yield name, node
        return
    key, rest = path[0], path[1:]
    if key is None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from _walk(item, rest, f"{name}[{index}]")
    elif isinstance(node, dict) and key in node:
        yield from _walk(node[key], rest, f"{name}.{key}")


def _check_multiple_of(name: str, value: Any, step: float) -> None:
    """Raise fastjsonschema's error if `value` is not a multiple of `step`, within tolerance."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    quotient = value / step
    if math.isfinite(quotient) and abs(quotient - round(quotient)) <= (
        _MULTIPLE_OF_TOLERANCE * max(1.0, abs(quotient))
    ):
        return
    raise fastjsonschema.JsonSchemaValueException(
        f"{name} must be multiple of {step}",
        value=value,
        name=name,
        definition={"multipleOf": step},
        rule="multipleOf",
    )


# --- Schema errors ----------------------------------------------------------------------------

_RULE_CODES: Final[dict[str, ErrorCode]] = {
    "required": ErrorCode.PROTOCOL_ERROR,
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "enum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMinimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMaximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "format": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
}
_RANGE_RULES: Final = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_MAX_LISTED_CHOICES: Final = 160


def _schema_error(
    version: OcppVersion,
    message_id: str | None,
    type_id: int,
    exc: fastjsonschema.JsonSchemaValueException,
) -> FrameError:
    """Turn fastjsonschema's error into the OCPP error, naming the field."""
    rule = exc.rule or ""
    field = _field_name(exc.name or "data")
    limit = exc.rule_definition
    if rule == "format" and isinstance(exc.definition, dict) and _ENUM_KEY in exc.definition:
        rule, limit = "enum", exc.definition[_ENUM_KEY]
    if rule == "required":
        present = exc.value if isinstance(exc.value, dict) else {}
        missing = [key for key in limit or () if key not in present]
        field = _join(field, missing[0] if missing else "")
        description = f"{field or 'payload'} is required"
    elif rule == "additionalProperties":
        allowed = (exc.definition or {}).get("properties", {})
        extra = sorted(key for key in exc.value or () if key not in allowed)
        field = _join(field, extra[0][:_MAX_ECHO] if extra else "")
        description = f"{field or 'payload'} is not an allowed property"
    else:
        description = _describe(rule, field or "payload", limit, exc)
    code = _RULE_CODES.get(rule, ErrorCode.FORMAT_VIOLATION)
    return FrameError(
        message_id,
        error_code(version, code),
        description[:MAX_DESCRIPTION_LENGTH],
        {"field": field} if field else None,
        type_id,
        out_of_range=rule in _RANGE_RULES,
    )


def _describe(
    rule: str, field: str, limit: Any, exc: fastjsonschema.JsonSchemaValueException
) -> str:
    """Return a short text saying which rule `field` breaks."""
    if rule == "type":
        kinds = limit if isinstance(limit, list) else [limit]
        return f"{field} must be {' or '.join(map(str, kinds))}"
    if rule == "enum":
        choices = ", ".join(map(str, limit or ()))
        if len(choices) > _MAX_LISTED_CHOICES:
            return f"{field} is not one of the allowed values"
        return f"{field} must be one of {choices}"
    if rule == "format" and limit == "date-time":
        return f"{field} must be an RFC 3339 date-time with offset"
    if rule == "format":
        return f"{field} must be a valid {limit}"
    texts = {
        "maxLength": "must be at most {} characters",
        "minLength": "must be at least {} characters",
        "minimum": "must be at least {}",
        "maximum": "must be at most {}",
        "multipleOf": "must be a multiple of {}",
        "maxItems": "must have at most {} items",
        "minItems": "must have at least {} items",
        "pattern": "must match {}",
    }
    if rule in texts:
        return f"{field} {texts[rule].format(limit)}"
    # Rules OCPP's schemas hardly use: fastjsonschema's own text, with our field name.
    return f"{field}{exc.message.removeprefix(exc.name or '')}"


def _field_name(name: str) -> str:
    """Turn fastjsonschema's `data.meterValue[0].value` into `meterValue[0].value`."""
    if name.startswith("data."):
        return name[5:]
    return name.removeprefix("data")


def _join(field: str, key: str) -> str:
    """Return the path of `key` inside `field`."""
    if not key:
        return field
    return f"{field}.{key}" if field else key
