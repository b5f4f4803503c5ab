"""Firmware management (L): secure (signed) and plain firmware updates, and a local
controller's firmware publication.

- ``ocpp.update_firmware``: 2.0.1 UpdateFirmware with ``retrieveDateTime``, ``installDateTime``,
  ``signingCertificate`` and ``signature`` (L01, L02), ``retries`` / ``retryInterval``; for 1.6
  SignedUpdateFirmware when signed (security whitepaper), UpdateFirmware when not. The
  vendor-neutral ``charger.update_firmware`` goes through the same path (station/v16, v201).
- Each update is tracked by requestId: every FirmwareStatusNotification (1.6
  SignedFirmwareStatusNotification) lands in its history and in the station's firmware status.
  A bad signature or certificate (InvalidSignature, InvalidCertificate, RevokedCertificate,
  InstallVerificationFailed) is a security event.
- ``ocpp.publish_firmware`` / ``ocpp.unpublish_firmware`` (2.0.1 L03, L04): a local controller
  publishes a firmware to the stations behind it; PublishFirmwareStatusNotification is tracked
  as the station's ``publish firmware status`` with the URIs it publishes on.
- ``ocpp.get_firmware_updates``: the tracked requests, for reading.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.core import Context, Hub, HubKey, ServiceCall
from hub.entity import EntityDescription, EntityGroup
from hub.exceptions import ServiceValidationError
from hub.security import Severity
from hub.storage import Store
from integrations.ocpp.connection import HandlerError
from integrations.ocpp.const import DOMAIN
from integrations.ocpp.features.base import (
    MessageHandler,
    register_station_services,
    station_for,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

STORE_KEY: Final = "ocpp.firmware"
MAX_TRACKED: Final = 20
MAX_HISTORY: Final = 30
EVENT_PUBLISH_FIRMWARE_STATUS: Final = "ocpp_publish_firmware_status"
# Security log kinds.
SEC_FIRMWARE_SIGNATURE: Final = "ocpp_firmware_signature"
SEC_FIRMWARE_CERTIFICATE: Final = "ocpp_firmware_certificate"
SEC_FIRMWARE_VERIFICATION: Final = "ocpp_firmware_verification"
# A firmware status or update answer that says the firmware or its signer is not to be trusted.
SECURITY_STATUSES: Final[dict[str, tuple[str, Severity]]] = {
    "InvalidSignature": (SEC_FIRMWARE_SIGNATURE, Severity.CRITICAL),
    "InvalidCertificate": (SEC_FIRMWARE_CERTIFICATE, Severity.CRITICAL),
    "RevokedCertificate": (SEC_FIRMWARE_CERTIFICATE, Severity.CRITICAL),
    "InstallVerificationFailed": (SEC_FIRMWARE_VERIFICATION, Severity.WARNING),
}
_MD5: Final = re.compile(r"^[0-9a-fA-F]{32}$")
_BASE64: Final = re.compile(r"^[A-Za-z0-9+/=\s]+$")

ENTITIES: Final = {
    "publish_firmware_status": EntityDescription(
        key="publish_firmware_status", name="publish firmware status"
    ),
}

CONFIG: dict[Any, Any] = {}


class Firmware:
    """Tracked firmware requests per station, on disk."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store: Store[dict[str, Any]] | None = None
        self.request_id = 0
        # cp_id -> request id (text) -> {kind, location, status, answer, history[[status, at]]}
        self.requests: dict[str, dict[str, dict[str, Any]]] = {}
        self.groups: dict[str, EntityGroup] = {}

    def next_request_id(self) -> int:
        self.request_id = self.request_id % 2_000_000_000 + 1
        self.save()
        return self.request_id

    def save(self) -> None:
        if self.store is not None:
            self.store.delay_save(
                lambda: {"request_id": self.request_id, "requests": self.requests}, 0.5
            )

    def track(self, cp_id: str, request_id: int | None, record: dict[str, Any]) -> None:
        if request_id is None:
            return
        requests = self.requests.setdefault(cp_id, {})
        key = str(request_id)
        requests[key] = {**requests.get(key, {"history": []}), **record}
        while len(requests) > MAX_TRACKED:
            del requests[next(iter(requests))]
        self.save()

    def note(self, cp_id: str, request_id: int | None, status: str, at: float) -> None:
        """A status of a tracked request (an unknown request id is tracked from now)."""
        if request_id is None:
            return
        entry = self.requests.get(cp_id, {}).get(str(request_id))
        history = list(entry["history"]) if entry else []
        history.append([status, at])
        self.track(cp_id, request_id, {"status": status, "history": history[-MAX_HISTORY:]})


DATA_FIRMWARE: Final[HubKey[Firmware]] = HubKey("ocpp.firmware")


def state_of(hub: Hub) -> Firmware:
    found = hub.data.get(DATA_FIRMWARE)
    if found is None:
        found = hub.data[DATA_FIRMWARE] = Firmware(hub)
    return found


def _entities(station: Station) -> EntityGroup:
    state = state_of(station.hub)
    group = state.groups.get(station.cp_id)
    if group is None:
        group = state.groups[station.cp_id] = EntityGroup(
            DOMAIN, ENTITIES, station.device_id, station.cp_id, station.name
        )
    return group


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _security(station: Station, status: str, request_id: int | None, ctx: Context | None) -> None:
    found = SECURITY_STATUSES.get(status)
    if found is None:
        return
    kind, severity = found
    station.system.security_event(
        kind,
        f"{station.cp_id} firmware update {request_id if request_id is not None else ''}: {status}",
        station.connection,
        {"status": status, "request_id": request_id},
        cp_id=station.cp_id,
        severity=severity,
    )


# Outbound ------------------------------------------------------------------------------


async def send_update(
    station: Station,
    location: str,
    retrieve_at: datetime | None = None,
    *,
    install_at: datetime | None = None,
    signing_certificate: str | None = None,
    signature: str | None = None,
    retries: int | None = None,
    retry_interval: int | None = None,
) -> dict[str, Any]:
    """Ask the station to update its firmware in its version's words; track the request.

    Returns the answer with the request id (1.6 UpdateFirmware has none: status None)."""
    state = state_of(station.hub)
    retrieve = _iso(retrieve_at or datetime.fromtimestamp(station.now(), UTC))
    signed = signing_certificate is not None
    request_id: int | None = None
    v201 = station.version is not None and station.version.value == "ocpp2.0.1"
    if v201 or signed:
        request_id = state.next_request_id()
        firmware: dict[str, Any] = {"location": location, "retrieveDateTime": retrieve}
        if install_at is not None:
            firmware["installDateTime"] = _iso(install_at)
        if signing_certificate is not None:
            firmware["signingCertificate"] = signing_certificate
        if signature is not None:
            firmware["signature"] = signature
        payload: dict[str, Any] = {"requestId": request_id, "firmware": firmware}
        action = "UpdateFirmware" if v201 else "SignedUpdateFirmware"
    else:
        if install_at is not None:
            raise ServiceValidationError("OCPP 1.6 UpdateFirmware has no install time")
        payload = {"location": location, "retrieveDate": retrieve}
        action = "UpdateFirmware"
    if retries is not None:
        payload["retries"] = retries
    if retry_interval is not None:
        payload["retryInterval"] = retry_interval
    answer = await station.call(action, payload)
    status = answer.get("status") if isinstance(answer, dict) else None
    state.track(
        station.cp_id,
        request_id,
        {
            "kind": action,
            "location": location,
            "signed": signed,
            "sent_at": station.now(),
            "answer": status,
            "status": None,
        },
    )
    if status is not None:
        _security(station, status, request_id, None)
    return {"status": status, "requestId": request_id}


# Inbound -------------------------------------------------------------------------------


def note_status(station: Station, payload: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A FirmwareStatusNotification (1.6 signed or not, 2.0.1): tracked by requestId; a bad
    signature is a security event. Returns the attributes the station's status gets."""
    status = payload["status"]
    request_id = payload.get("requestId")
    state_of(station.hub).note(station.cp_id, request_id, status, station.now())
    _security(station, status, request_id, ctx)
    return {"request_id": request_id} if request_id is not None else {}


async def on_publish_firmware_status(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    status = payload["status"]
    request_id = payload.get("requestId")
    locations = payload.get("location", [])
    if status == "Published" and not locations:
        # L03.FR.04: Published names the URIs the firmware is published on.
        raise HandlerError("OccurrenceConstraintViolation", "Published needs location")
    state = state_of(station.hub)
    state.note(station.cp_id, request_id, status, station.now())
    if locations:
        state.track(station.cp_id, request_id, {"published_at": locations})
    extra: dict[str, Any] = {"request_id": request_id} if request_id is not None else {}
    if locations:
        extra["locations"] = locations
    _entities(station).write(station.hub, "publish_firmware_status", status, ctx, extra or None)
    if status == "InvalidChecksum":
        station.system.security_event(
            SEC_FIRMWARE_VERIFICATION,
            f"{station.cp_id} published firmware has an invalid checksum",
            station.connection,
            {"status": status, "request_id": request_id},
            cp_id=station.cp_id,
            severity=Severity.WARNING,
        )
    station.hub.bus.fire(
        EVENT_PUBLISH_FIRMWARE_STATUS,
        {
            "charge_point_id": station.cp_id,
            "status": status,
            "request_id": request_id,
            "locations": locations,
        },
        ctx,
    )
    return {}


HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {
    "PublishFirmwareStatusNotification": on_publish_firmware_status,
}


# Services --------------------------------------------------------------------------------


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        if not isinstance(value, str) or len(value) > 40:
            raise vol.Invalid("expected an ISO 8601 date and time")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as err:
            raise vol.Invalid(f"expected an ISO 8601 date and time, got {value!r}") from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _certificate(value: Any) -> str:
    if not isinstance(value, str) or "-----BEGIN CERTIFICATE-----" not in value:
        raise vol.Invalid("expected a PEM certificate (-----BEGIN CERTIFICATE-----)")
    if len(value) > 5500:
        raise vol.Invalid("a signing certificate is at most 5500 characters")
    return value


def _signature(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 800 or not _BASE64.match(value):
        raise vol.Invalid("expected a base64 signature of at most 800 characters")
    return value


def _md5(value: Any) -> str:
    if not isinstance(value, str) or not _MD5.match(value):
        raise vol.Invalid("expected an MD5 checksum: 32 hexadecimal digits")
    return value.lower()


_URL = vol.All(vol.Url(), vol.Length(max=512))
_RETRIES = vol.All(int, vol.Range(min=0, max=100))
_RETRY_INTERVAL = vol.All(int, vol.Range(min=0, max=86400))


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Load the tracked requests and register the firmware services."""
    hub = ctx.hub
    state = state_of(hub)
    state.store = Store(hub, 1, STORE_KEY, private=True)
    stored = await state.store.load()
    if stored:
        state.request_id = int(stored.get("request_id", 0))
        state.requests = dict(stored.get("requests", {}))

    async def _unload() -> None:
        if state.store is not None:
            await state.store.flush()
        hub.data.pop(DATA_FIRMWARE, None)

    ctx.on_unload(_unload)

    async def update_firmware(call: ServiceCall) -> Any:
        data = call.data
        if ("signing_certificate" in data) != ("signature" in data):
            raise ServiceValidationError(
                "a signed firmware needs both signing_certificate and signature"
            )
        return await send_update(
            station_for(hub, call),
            data["location"],
            data.get("retrieve_at"),
            install_at=data.get("install_at"),
            signing_certificate=data.get("signing_certificate"),
            signature=data.get("signature"),
            retries=data.get("retries"),
            retry_interval=data.get("retry_interval"),
        )

    def _v201(station: Station, action: str) -> None:
        if station.version is None or station.version.value != "ocpp2.0.1":
            raise ServiceValidationError(f"{action} is OCPP 2.0.1; {station.cp_id} speaks 1.6")

    async def publish_firmware(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _v201(station, "PublishFirmware")
        data = call.data
        request_id = state.next_request_id()
        payload: dict[str, Any] = {
            "location": data["location"],
            "checksum": data["checksum"],
            "requestId": request_id,
        }
        if "retries" in data:
            payload["retries"] = data["retries"]
        if "retry_interval" in data:
            payload["retryInterval"] = data["retry_interval"]
        answer = await station.call("PublishFirmware", payload)
        state.track(
            station.cp_id,
            request_id,
            {
                "kind": "PublishFirmware",
                "location": data["location"],
                "checksum": data["checksum"],
                "sent_at": station.now(),
                "answer": answer.get("status"),
                "status": None,
            },
        )
        return {**answer, "requestId": request_id}

    async def unpublish_firmware(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        _v201(station, "UnpublishFirmware")
        return await station.call("UnpublishFirmware", {"checksum": call.data["checksum"]})

    async def get_updates(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        return {"requests": state.requests.get(station.cp_id, {})}

    register_station_services(
        ctx,
        {
            "update_firmware": (
                update_firmware,
                {
                    vol.Required("location"): _URL,
                    vol.Optional("retrieve_at"): _datetime,
                    vol.Optional("install_at"): _datetime,
                    vol.Optional("signing_certificate"): _certificate,
                    vol.Optional("signature"): _signature,
                    vol.Optional("retries"): _RETRIES,
                    vol.Optional("retry_interval"): _RETRY_INTERVAL,
                },
            ),
            "publish_firmware": (
                publish_firmware,
                {
                    vol.Required("location"): _URL,
                    vol.Required("checksum"): _md5,
                    vol.Optional("retries"): _RETRIES,
                    vol.Optional("retry_interval"): _RETRY_INTERVAL,
                },
            ),
            "unpublish_firmware": (unpublish_firmware, {vol.Required("checksum"): _md5}),
        },
    )
    register_station_services(ctx, {"get_firmware_updates": (get_updates, {})}, role=Role.VIEWER)
