"""Reservation (H): reserving a port (or, in 2.0.1, any EVSE of a station) for an id token
until a given time, cancelling it, and the station's word that it expired or was removed.

The reservations a station accepted are kept on disk and shown as the port's (or the
station's, for an unspecified EVSE) ``reservation`` entity: ``reserved`` with the id, token
and expiry, ``none`` once it is used up, cancelled, expired (on the hub clock, whether or not
the station says so) or removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.charger import EVENT_CHARGER, ChargerEventKind
from hub.clock import Timer, clock
from hub.core import Context, Event, Hub, HubKey, ServiceCall
from hub.entity import EntityDescription
from hub.exceptions import ServiceValidationError
from hub.storage import Store
from integrations.ocpp.features.authorization import registry
from integrations.ocpp.features.base import (
    ID_TOKEN_TYPES,
    TARGET,
    MessageHandler,
    answer_status,
    station_for,
)
from integrations.ocpp.features.smart_charging import (
    INT32_MAX,
    MAX_EVSE,
    check_port,
    is_201,
    iso,
    port_entities,
    utc_datetime,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

STORE_KEY: Final = "ocpp.reservations"
# A reservation lasts at least a minute and at most 30 days; 15 minutes unless told.
MIN_RESERVATION: Final = 60
MAX_RESERVATION: Final = 30 * 86400
DEFAULT_RESERVATION: Final = 15 * 60
MAX_KEPT: Final = 1000  # reservations kept per station
CONNECTOR_TYPES: Final = (
    "cCCS1",
    "cCCS2",
    "cG105",
    "cTesla",
    "cType1",
    "cType2",
    "s309-1P-16A",
    "s309-1P-32A",
    "s309-3P-16A",
    "s309-3P-32A",
    "sBS1361",
    "sCEE-7-7",
    "sType2",
    "sType3",
    "Other1PhMax16A",
    "Other1PhOver16A",
    "Other3Ph",
    "Pan",
    "wInductive",
    "wResonant",
    "Undetermined",
    "Unknown",
)
ENTITIES: Final = {"reservation": EntityDescription(key="reservation", name="reservation")}
CONFIG: dict[Any, Any] = {}


class Reservations:
    """The reservations each station accepted: on disk, shown, expired on the hub clock."""

    def __init__(self, hub: Hub, system: CentralSystem) -> None:
        self.hub = hub
        self.system = system
        self.store: Store[dict[str, Any]] = Store(hub, 1, STORE_KEY, private=True)
        # cp_id -> str(reservation id) -> {"evse_id", "id_token", "expiry" (POSIX s), ...}
        self.reservations: dict[str, dict[str, dict[str, Any]]] = {}
        self.next_id = 1
        self._timers: dict[tuple[str, str], Timer] = {}

    async def load(self) -> None:
        stored = await self.store.load() or {}
        self.next_id = int(stored.get("next_id", 1))
        self.reservations = {}
        for cp_id, kept in stored.get("reservations", {}).items():
            for rid, item in kept.items():
                self._add(cp_id, rid, item)

    def unload(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _save(self) -> None:
        self.store.delay_save(
            lambda: {"next_id": self.next_id, "reservations": self.reservations}, 0.5
        )

    def new_id(self) -> int:
        rid = self.next_id
        self.next_id = rid % INT32_MAX + 1
        self._save()
        return rid

    def _add(self, cp_id: str, rid: str, item: dict[str, Any]) -> None:
        delay = item["expiry"] - clock(self.hub).time()
        if delay <= 0:
            self._show(cp_id, item.get("evse_id") or 0, None)
            return
        self.reservations.setdefault(cp_id, {})[rid] = item
        old = self._timers.pop((cp_id, rid), None)
        if old is not None:
            old.cancel()
        self._timers[(cp_id, rid)] = clock(self.hub).call_later(
            delay, lambda: self.drop(cp_id, int(rid), "Expired")
        )
        self._show(cp_id, item.get("evse_id") or 0, item | {"reservation_id": int(rid)})

    def _show(self, cp_id: str, evse: int, item: dict[str, Any] | None) -> None:
        station = self.system.stations.get(cp_id)
        if station is None:
            return
        if item is None:
            # Another reservation of the same port may still hold it.
            for rid, other in self.reservations.get(cp_id, {}).items():
                if (other.get("evse_id") or 0) == evse:
                    item = other | {"reservation_id": int(rid)}
        entities = port_entities(station, ENTITIES, evse)
        if item is None:
            entities.write(self.hub, "reservation", "none")
            return
        entities.write(
            self.hub,
            "reservation",
            "reserved",
            None,
            {
                "reservation_id": item["reservation_id"],
                "id_token": item["id_token"],
                "expires": iso(item["expiry"]),
                "group_id_token": item.get("group_id_token"),
                "connector_type": item.get("connector_type"),
            },
        )

    def accepted(self, station: Station, rid: int, item: dict[str, Any]) -> None:
        kept = self.reservations.setdefault(station.cp_id, {})
        if str(rid) in kept:  # ReserveNow with a known id replaces that reservation
            self.drop(station.cp_id, rid, "Replaced")
        if len(kept) >= MAX_KEPT:
            oldest = min(kept, key=lambda key: kept[key]["expiry"])
            self.drop(station.cp_id, int(oldest), "Removed")
        self._add(station.cp_id, str(rid), item)
        self._save()

    def drop(
        self, cp_id: str, rid: int, why: str, ctx: Context | None = None
    ) -> dict[str, Any] | None:
        """Forget a reservation (used, cancelled, expired, removed); return it if known."""
        item = self.reservations.get(cp_id, {}).pop(str(rid), None)
        timer = self._timers.pop((cp_id, str(rid)), None)
        if timer is not None:
            timer.cancel()
        if item is None:
            return None
        self._save()
        self._show(cp_id, item.get("evse_id") or 0, None)
        self.hub.bus.fire(
            "ocpp_reservation_ended",
            {"charge_point_id": cp_id, "reservation_id": rid, "reason": why, **item},
            ctx,
        )
        return item


DATA_RESERVATIONS: Final[HubKey[Reservations]] = HubKey("ocpp.reservations")


async def on_reservation_status_update(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    station._touch(context=ctx)
    rid = payload["reservationId"]
    status = payload["reservationUpdateStatus"]
    state = station.hub.data.get(DATA_RESERVATIONS)
    known = state is not None and state.drop(station.cp_id, rid, status, ctx) is not None
    station.hub.bus.fire(
        "ocpp_reservation_status",
        {
            "charge_point_id": station.cp_id,
            "reservation_id": rid,
            "status": status,
            "known": known,
        },
        ctx,
    )
    return {}


HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {
    "ReservationStatusUpdate": on_reservation_status_update,
}


def _expiry(data: dict[str, Any]) -> dict[str, Any]:
    if "expiry_date_time" in data and "expires_in" in data:
        raise vol.Invalid("give expiry_date_time or expires_in, not both")
    return data


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the reservation services."""
    hub = ctx.hub
    state = hub.data[DATA_RESERVATIONS] = Reservations(hub, system)
    await state.load()

    def unload() -> None:
        state.unload()
        if hub.data.get(DATA_RESERVATIONS) is state:
            hub.data.pop(DATA_RESERVATIONS, None)

    ctx.on_unload(unload)

    def session_started(event: Event) -> None:
        """A reservation is used when its token, its group, or a token of its group (as the
        hub knows the token: 1.6 TC_053, H_19) starts a session on its port, or on any port
        for one of no EVSE (H03)."""
        cp_id = str(event.data.get("charge_point_id"))
        port = event.data.get("port")
        tag = event.data.get("id_tag")
        if not isinstance(tag, str):
            return
        known = registry(system).get(tag)
        group = known.group if known is not None else None
        for rid, item in list(state.reservations.get(cp_id, {}).items()):
            if item.get("evse_id") not in (None, 0, port):
                continue
            reserved_group = item.get("group_id_token")
            if tag in (item["id_token"], reserved_group) or (
                group is not None and group == reserved_group
            ):
                state.drop(cp_id, int(rid), "Used", event.context)
                return

    ctx.listen(
        EVENT_CHARGER,
        session_started,
        lambda data: (
            data.get("kind") == ChargerEventKind.SESSION_STARTED
            and data.get("charge_point_id") in state.reservations
        ),
    )

    async def reserve_now(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        data = call.data
        now = station.now()
        if "expiry_date_time" in data:
            expiry = data["expiry_date_time"].timestamp()
            if not MIN_RESERVATION <= expiry - now <= MAX_RESERVATION:
                raise ServiceValidationError(
                    f"expiry_date_time is {MIN_RESERVATION} s to {MAX_RESERVATION // 86400} "
                    "days from now"
                )
        else:
            expiry = now + data.get("expires_in", DEFAULT_RESERVATION)
        expiry = float(int(expiry))
        evse = data.get("evse_id")
        if evse is not None:
            check_port(station, evse)
        rid = data.get("reservation_id") or state.new_id()
        token = data["id_token"]
        group = data.get("group_id_token")
        payload: dict[str, Any]
        if is_201(station):
            if evse == 0:
                raise ServiceValidationError("evse_id names an EVSE (1..); omit it for any EVSE")
            payload = {
                "id": rid,
                "expiryDateTime": iso(expiry),
                "idToken": {"idToken": token, "type": data["id_token_type"]},
            }
            if evse is not None:
                payload["evseId"] = evse
            if "connector_type" in data:
                payload["connectorType"] = data["connector_type"]
            if group is not None:
                payload["groupIdToken"] = {"idToken": group, "type": data["id_token_type"]}
        else:
            if evse is None:
                raise ServiceValidationError("OCPP 1.6 reserves a connector: give evse_id")
            if "connector_type" in data:
                raise ServiceValidationError("OCPP 1.6 has no connector_type")
            if len(token) > 20 or (group is not None and len(group) > 20):
                raise ServiceValidationError("an OCPP 1.6 idTag has at most 20 characters")
            payload = {
                "connectorId": evse,
                "expiryDate": iso(expiry),
                "idTag": token,
                "reservationId": rid,
            }
            if group is not None:
                payload["parentIdTag"] = group
        status = answer_status(await station.call("ReserveNow", payload))
        if status == "Accepted":
            item: dict[str, Any] = {"evse_id": evse, "id_token": token, "expiry": expiry}
            if group is not None:
                item["group_id_token"] = group
            if "connector_type" in data:
                item["connector_type"] = data["connector_type"]
            state.accepted(station, rid, item)
        return {"status": status, "reservation_id": rid, "expires": iso(expiry)}

    async def cancel_reservation(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        rid = call.data["reservation_id"]
        status = answer_status(await station.call("CancelReservation", {"reservationId": rid}))
        if status == "Accepted":
            state.drop(station.cp_id, rid, "Cancelled", call.context)
        return status

    async def reservations(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        kept = state.reservations.get(station.cp_id, {})
        return [
            {"reservation_id": int(rid), **item, "expires": iso(item["expiry"])}
            for rid, item in sorted(kept.items(), key=lambda pair: pair[1]["expiry"])
        ]

    token = vol.All(str, vol.Length(min=1, max=36))
    ctx.register_service(
        "reserve_now",
        reserve_now,
        vol.Schema(
            vol.All(
                {
                    **TARGET,
                    vol.Optional("evse_id"): vol.All(int, vol.Range(min=0, max=MAX_EVSE)),
                    vol.Required("id_token"): token,
                    vol.Optional("id_token_type", default="Central"): vol.In(ID_TOKEN_TYPES),
                    vol.Optional("group_id_token"): token,
                    vol.Optional("connector_type"): vol.In(CONNECTOR_TYPES),
                    vol.Optional("expiry_date_time"): utc_datetime,
                    vol.Optional("expires_in"): vol.All(
                        int, vol.Range(min=MIN_RESERVATION, max=MAX_RESERVATION)
                    ),
                    vol.Optional("reservation_id"): vol.All(int, vol.Range(min=1, max=INT32_MAX)),
                },
                _expiry,
            )
        ),
        role=Role.OPERATOR,
        description="Reserve a port (or any EVSE, 2.0.1) for an id token until a time.",
    )
    ctx.register_service(
        "cancel_reservation",
        cancel_reservation,
        vol.Schema(
            {
                **TARGET,
                vol.Required("reservation_id"): vol.All(int, vol.Range(min=0, max=INT32_MAX)),
            }
        ),
        role=Role.OPERATOR,
        description="Cancel a reservation.",
    )
    ctx.register_service(
        "reservations",
        reservations,
        vol.Schema(dict(TARGET)),
        role=Role.VIEWER,
        description="The reservations a station accepted that are still running.",
    )
