"""What an audit entry keeps of a call: the data sent (secrets redacted, size bounded) and
the target named as people know it, not by its id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import voluptuous as vol

from hub.core import Hub
from hub.http.service_call import call_service, describe_target
from hub.redact import REDACTED, Secret
from hub.registry import DeviceKind, device_registry
from hub.security import AUDIT_DATA_MAX, audit, audit_data, recent_audit


class _User:
    """An operator as the API passes one to call_service."""

    id = "u-olga"
    username = "olga"

    @property
    def role(self) -> Any:
        from hub.auth import Role

        return Role.OPERATOR


def test_audit_data_redacts_secrets_and_bounds_its_size() -> None:
    kept = audit_data({"limit": 16, "password": "hunter2", "nested": {"api_key": "k-1"}})
    assert kept == {"limit": 16, "password": REDACTED, "nested": {"api_key": REDACTED}}
    assert audit_data({"code": "1234"}, [("code",)]) == {"code": REDACTED}
    assert audit_data(None) is None
    assert audit_data({}) is None
    huge = audit_data({"note": "x" * (AUDIT_DATA_MAX * 2), "limit": 1})
    assert huge == {"truncated": True, "keys": ["limit", "note"]}
    # Whatever JSON has no form for is kept as text, never an exception.
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert audit_data({"at": moment}) == {"at": str(moment)}


async def test_the_target_is_named_and_the_data_kept(hub: Hub) -> None:
    devices = device_registry(hub)
    station = devices.get_or_create(
        integration="x", identifiers={("x", "CP1")}, kind=DeviceKind.STATION, name="Bay 1"
    )
    port = devices.get_or_create(
        integration="x",
        identifiers={("x", "CP1-1")},
        kind=DeviceKind.CONNECTOR,
        via_device_id=station.id,
        connector_id=1,
        name="Left socket",
    )
    hub.states.set("sensor.bay_1_power", "7200", {"friendly_name": "Bay 1 power"})
    assert describe_target({"device_id": station.id}, {}, hub) == "Bay 1"
    assert describe_target({"device_id": [port.id]}, {}, hub) == "Bay 1 · Left socket"
    assert describe_target({"entity_id": "sensor.bay_1_power"}, {}, hub) == "Bay 1 power"
    # What the hub does not know keeps its id; without the hub, ids as before.
    assert describe_target({"device_id": "gone"}, {}, hub) == "device_id=gone"
    assert describe_target({"device_id": station.id}, {}) == f"device_id={station.id}"

    sent: list[dict[str, Any]] = []

    async def set_code(call: Any) -> str:
        sent.append(dict(call.data))
        return "ok"

    hub.services.register(
        "door",
        "set_code",
        set_code,
        vol.Schema({vol.Required("code"): Secret(str), vol.Optional("slot"): int}),
        role="operator",
    )
    await call_service(
        hub,
        _User(),  # type: ignore[arg-type]
        "127.0.0.1",
        "door",
        "set_code",
        {"code": "9876", "slot": 2},
        {"device_id": station.id},
    )
    assert sent == [{"code": "9876", "slot": 2}]
    [entry] = [e for e in recent_audit(hub) if e["action"] == "door.set_code"]
    assert entry["target"] == "Bay 1"
    assert entry["data"] == {"device_id": station.id, "code": REDACTED, "slot": 2}
    assert "9876" not in str(recent_audit(hub))

    # A caller that knows the thing better names it itself.
    entry = audit(hub, "x.y", user=None, source="cli", target="Alert: door open", data=None)
    assert (entry["target"], entry["data"]) == ("Alert: door open", None)
