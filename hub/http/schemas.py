"""JSON Schemas of the API's answers, for the OpenAPI description (hub.http.openapi).

A route declares what a success answers as ``responses``: status -> {media type: schema}
(an empty mapping for no body). The helpers here build that; the shared shapes are
components, referenced as ``ref("State")``. Objects allow properties beyond the ones
listed (a later version may add some), but the listed ones are checked, and a test calls
every operation and validates the real answers against these schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hub.charger import ChargerCapability, ConnectorStatus

Schema = dict[str, Any]
Responses = dict[str, dict[str, Any]]

JSON: Final = "application/json"
TEXT: Final = "text/plain"
HTML: Final = "text/html"
CSV: Final = "text/csv"


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(
    properties: Mapping[str, Schema], required: tuple[str, ...] | None = None, **extra: Any
) -> Schema:
    """An object schema; every listed property is required unless ``required`` says which."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties if required is None else required),
        **extra,
    }


def array(items: Schema) -> Schema:
    """An array of items."""
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    """The schema, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def dict_of(values: Schema) -> Schema:
    """An object used as a map: any keys, each value matching values."""
    return {"type": "object", "additionalProperties": values}


def one_of(*values: str) -> Schema:
    """A string that is one of values."""
    return {"type": "string", "enum": [str(value) for value in values]}


def json_ok(schema: Schema, status: str = "200") -> Responses:
    """A JSON answer."""
    return {status: {JSON: schema}}


def text_ok(media: str = TEXT, status: str = "200") -> Responses:
    """A text answer (CSV, HTML, Prometheus text)."""
    return {status: {media: {"type": "string"}}}


NO_CONTENT: Final[Responses] = {"204": {}}

STRING: Final[Schema] = {"type": "string"}
NUMBER: Final[Schema] = {"type": "number"}
INTEGER: Final[Schema] = {"type": "integer"}
BOOLEAN: Final[Schema] = {"type": "boolean"}
OBJECT: Final[Schema] = {"type": "object"}
TIME: Final[Schema] = {"type": "string", "format": "date-time"}
OPT_STRING: Final[Schema] = nullable(STRING)
OPT_NUMBER: Final[Schema] = nullable(NUMBER)
OPT_TIME: Final[Schema] = nullable(TIME)
OPT_INTEGER: Final[Schema] = nullable(INTEGER)
OPT_BOOLEAN: Final[Schema] = nullable(BOOLEAN)
ROLE: Final[Schema] = {"type": "string", "enum": ["viewer", "operator", "admin"]}
# A connector status in the one vocabulary of every protocol (hub.charger.ConnectorStatus).
CONNECTOR_STATUS: Final[Schema] = one_of(*ConnectorStatus)
# A charger's capabilities by their lower-case names (hub.charger.ChargerCapability).
CAPABILITIES: Final[Schema] = array(
    one_of(*((capability.name or "").lower() for capability in ChargerCapability if capability))
)

# The charging session a driver's charger is running (None: none), as the Modbus, MQTT and
# cloud drivers' chargers describe it.
CHARGER_SESSION: Final[Schema] = nullable(
    obj(
        {
            "transaction_id": STRING,
            "started_at": NUMBER,
            "energy_wh": OPT_NUMBER,
            "peak_power_w": NUMBER,
        }
    )
)


def device_profile(fields: Mapping[str, Schema]) -> Schema:
    """A driver's device profile as its API lists it: key and names, then the driver's own."""
    return obj(
        {"key": STRING, "name": STRING, "manufacturer": OPT_STRING, "model": OPT_STRING, **fields}
    )


# The shapes several answers share: components/schemas of the OpenAPI document.
COMPONENTS: Final[dict[str, Schema]] = {
    "Error": obj({"error": STRING, "message": STRING}),
    "State": obj(
        {
            "entity_id": STRING,
            "state": STRING,
            "attributes": OBJECT,
            "last_changed": TIME,
            "last_updated": TIME,
        }
    ),
    "User": obj({"id": STRING, "username": STRING, "role": ROLE, "created_at": NUMBER}),
    "Health": obj(
        {
            "status": STRING,
            "version": STRING,
            "state": STRING,
            "uptime_s": NUMBER,
            "problems": array(STRING),
            "integrations": {"type": "object", "additionalProperties": OBJECT},
        }
    ),
    "Panel": obj(
        {
            "domain": STRING,
            "name": STRING,
            "title": STRING,
            "icon": STRING,
            "element": STRING,
            "role": ROLE,
            "placement": STRING,
            "url": STRING,
        }
    ),
    "Port": obj(
        {
            "device_id": STRING,
            "number": nullable(INTEGER),
            "name": OPT_STRING,
            "status": OPT_STRING,
            "error_code": OPT_STRING,
            "power_w": OPT_NUMBER,
            "energy_wh": OPT_NUMBER,
            "session_energy_wh": OPT_NUMBER,
            "uptime_pct": OPT_NUMBER,
            "entities": {"type": "object", "additionalProperties": STRING},
        }
    ),
    "Station": obj(
        {
            "device_id": STRING,
            "name": OPT_STRING,
            "charge_point_id": OPT_STRING,
            "protocol": STRING,
            "site": OPT_STRING,
            "online": BOOLEAN,
            "status": OPT_STRING,
            "vendor": OPT_STRING,
            "model": OPT_STRING,
            "serial": OPT_STRING,
            "firmware": OPT_STRING,
            "capabilities": array(STRING),
            "entities": {"type": "object", "additionalProperties": STRING},
            "ports": array(ref("Port")),
        }
    ),
    "PendingCharger": obj(
        {"charge_point_id": STRING, "integration": STRING},
    ),
    "SecurityEvent": obj(
        {
            "id": INTEGER,
            "time": NUMBER,
            "kind": STRING,
            "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
            "source": STRING,
            "message": STRING,
            "remote": OPT_STRING,
            "charge_point_id": OPT_STRING,
            "data": OBJECT,
        }
    ),
    "AuditEntry": obj(
        {
            "time": NUMBER,
            "user_id": OPT_STRING,
            "username": OPT_STRING,
            "source": OPT_STRING,
            "action": STRING,
            "target": OPT_STRING,
            "result": OPT_STRING,
            "context_id": OPT_STRING,
        }
    ),
    "ServiceResult": obj({"result": {}}),
    "Session": obj(
        {
            "station_id": STRING,
            "transaction_id": {},
            "port_id": OPT_STRING,
            "port": nullable(INTEGER),
            "started_at": OPT_TIME,
            "stopped_at": OPT_TIME,
            "energy_wh": OPT_NUMBER,
            "duration_s": OPT_NUMBER,
        }
    ),
    "Config": obj(
        {
            "location_name": STRING,
            "time_zone": STRING,
            "version": STRING,
            "state": STRING,
            "unit_system": {"type": "object", "additionalProperties": STRING},
            "components": array(STRING),
            "latitude": OPT_NUMBER,
            "longitude": OPT_NUMBER,
            "elevation": OPT_NUMBER,
            "currency": OPT_STRING,
        },
        required=("location_name", "time_zone", "version", "state", "unit_system", "components"),
    ),
    "ServiceField": obj(
        {
            "required": BOOLEAN,
            "description": STRING,
            "selector": OBJECT,
            "default": {},
            "example": {},
        },
        required=("required",),
    ),
    "ServiceDomain": obj(
        {
            "domain": STRING,
            "services": {
                "type": "object",
                "additionalProperties": obj(
                    {
                        "name": STRING,
                        "description": STRING,
                        "role": ROLE,
                        "fields": {
                            "type": "object",
                            "additionalProperties": ref("ServiceField"),
                        },
                    }
                ),
            },
        }
    ),
    "LogbookEntry": obj(
        {
            "when": TIME,
            "name": STRING,
            "message": STRING,
            "domain": STRING,
            "entity_id": STRING,
            "device_id": STRING,
            "station_id": STRING,
            "state": STRING,
            "kind": STRING,
            "automation_id": STRING,
            "context_id": OPT_STRING,
            "context_user_id": OPT_STRING,
        },
        required=("when", "name", "message", "domain"),
    ),
    "LogRecord": obj(
        {
            "time": TIME,
            "level": {"type": "string", "enum": ["WARNING", "ERROR", "CRITICAL"]},
            "logger": STRING,
            "message": STRING,
            "exception": OPT_STRING,
            "count": INTEGER,
        }
    ),
}


def check_refs(schema: Any) -> list[str]:
    """The component names a schema refers to that are not components (a typo)."""
    missing: list[str] = []
    if isinstance(schema, Mapping):
        target = schema.get("$ref")
        if isinstance(target, str):
            name = target.rpartition("/")[2]
            if name not in COMPONENTS:
                missing.append(name)
        for value in schema.values():
            missing.extend(check_refs(value))
    elif isinstance(schema, list):
        for value in schema:
            missing.extend(check_refs(value))
    return missing
