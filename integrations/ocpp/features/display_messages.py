"""Display messages (O), OCPP 2.0.1: what a station shows its drivers.

An operator (or an automation on a fault) sets a message — "out of order, use bay 2" on a
faulted station — with a priority, the station state it shows in, a time window or the
transaction it belongs to; asks which messages a station holds (GetDisplayMessages, answered
by NotifyDisplayMessages) and clears one. The messages a station accepted from the hub are
kept and shown as the station's ``display_messages`` entity (their count, and each one);
the hub drops a message at its end time (on the hub clock, TC_O_14) and one of a
transaction when that transaction ends, as the station does.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.charger import EVENT_CHARGER, ChargerEventKind
from hub.clock import Timer, clock
from hub.core import Context, Event, Hub, HubKey, ServiceCall
from hub.entity import EntityDescription
from hub.exceptions import ServiceValidationError
from hub.storage import Store
from integrations.ocpp.features.base import (
    TARGET,
    MessageHandler,
    answer_status,
    station_for,
)
from integrations.ocpp.features.smart_charging import (
    INT32_MAX,
    iso,
    needs_201,
    port_entities,
    reports,
    utc_datetime,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

STORE_KEY: Final = "ocpp.display_messages"
MAX_KEPT: Final = 100  # messages kept per station
PRIORITIES: Final = ("AlwaysFront", "InFront", "NormalCycle")
STATES: Final = ("Charging", "Faulted", "Idle", "Unavailable")
FORMATS: Final = ("ASCII", "HTML", "URI", "UTF8")
ENTITIES: Final = {
    "display_messages": EntityDescription(key="display_messages", name="display messages")
}
CONFIG: dict[Any, Any] = {}


class DisplayMessages:
    """The messages each station accepted from the hub, on disk and shown; each one with
    an end time is dropped at that time on the hub clock."""

    def __init__(self, hub: Hub, system: CentralSystem) -> None:
        self.hub = hub
        self.system = system
        self.store: Store[dict[str, Any]] = Store(hub, 1, STORE_KEY, private=True)
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}
        self.next_id = 1
        self._timers: dict[tuple[str, str], Timer] = {}

    async def load(self) -> None:
        stored = await self.store.load() or {}
        self.next_id = int(stored.get("next_id", 1))
        self.messages = {}
        for cp_id, kept in stored.get("messages", {}).items():
            for mid, item in kept.items():
                self._keep(cp_id, str(mid), item)
            self.show(cp_id)

    def unload(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _save(self) -> None:
        self.store.delay_save(lambda: {"next_id": self.next_id, "messages": self.messages}, 0.5)

    def new_id(self) -> int:
        mid = self.next_id
        self.next_id = mid % INT32_MAX + 1
        self._save()
        return mid

    def show(self, cp_id: str, ctx: Context | None = None) -> None:
        station = self.system.stations.get(cp_id)
        if station is None:
            return
        kept = self.messages.get(cp_id, {})
        listed = [
            {"id": int(mid), **item}
            for mid, item in sorted(kept.items(), key=lambda pair: int(pair[0]))
        ]
        port_entities(station, ENTITIES, 0).write(
            self.hub, "display_messages", len(listed), ctx, {"messages": listed}
        )

    def _keep(self, cp_id: str, mid: str, item: dict[str, Any]) -> bool:
        """Keep a message (with its end timer); False if its end time has passed."""
        old = self._timers.pop((cp_id, mid), None)
        if old is not None:
            old.cancel()
        end = item.get("endDateTime")
        delay = None
        if isinstance(end, str):
            try:
                delay = datetime.fromisoformat(end).timestamp() - clock(self.hub).time()
            except ValueError:
                delay = 0.0
            if delay <= 0:
                self.messages.get(cp_id, {}).pop(mid, None)
                return False
        self.messages.setdefault(cp_id, {})[mid] = item
        if delay is not None:
            self._timers[(cp_id, mid)] = clock(self.hub).call_later(
                delay, lambda: self.drop(cp_id, mid, "Expired")
            )
        return True

    def drop(self, cp_id: str, mid: str, why: str, ctx: Context | None = None) -> None:
        """Forget a message (ended, cleared, its transaction over)."""
        timer = self._timers.pop((cp_id, mid), None)
        if timer is not None:
            timer.cancel()
        item = self.messages.get(cp_id, {}).pop(mid, None)
        if item is None:
            return
        self._save()
        self.show(cp_id, ctx)
        self.hub.bus.fire(
            "ocpp_display_message_ended",
            {"charge_point_id": cp_id, "message_id": int(mid), "reason": why},
            ctx,
        )

    def accepted(self, station: Station, mid: int, item: dict[str, Any]) -> None:
        kept = self.messages.setdefault(station.cp_id, {})
        self._keep(station.cp_id, str(mid), item)
        while len(kept) > MAX_KEPT:
            self.drop(station.cp_id, next(iter(kept)), "Removed")
        self._save()
        self.show(station.cp_id)

    def cleared(self, station: Station, mid: int) -> None:
        self.drop(station.cp_id, str(mid), "Cleared")
        self.show(station.cp_id)

    def transaction_ended(self, cp_id: str, transaction_id: str, ctx: Context | None) -> None:
        for mid, item in list(self.messages.get(cp_id, {}).items()):
            if item.get("transactionId") == transaction_id:
                self.drop(cp_id, mid, "TransactionEnded", ctx)


DATA_DISPLAY: Final[HubKey[DisplayMessages]] = HubKey("ocpp.display_messages")


async def on_notify_display_messages(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    station._touch(context=ctx)
    infos = payload.get("messageInfo", [])
    for index, info in enumerate(infos):
        evse = info.get("display", {}).get("evse", {}).get("id")
        if evse is not None:
            station._port_number(f"messageInfo[{index}].display.evse.id", evse)
    tbc = bool(payload.get("tbc", False))
    reports(station.hub).feed(station.cp_id, payload["requestId"], list(infos), tbc)
    station.hub.bus.fire(
        "ocpp_display_messages_report",
        {
            "charge_point_id": station.cp_id,
            "request_id": payload["requestId"],
            "tbc": tbc,
            "messages": infos,
        },
        ctx,
    )
    return {}


HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {"NotifyDisplayMessages": on_notify_display_messages}


def _window(data: dict[str, Any]) -> dict[str, Any]:
    if "start_time" in data and "end_time" in data and data["end_time"] <= data["start_time"]:
        raise vol.Invalid("end_time is after start_time")
    return data


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the display message services."""
    hub = ctx.hub
    state = hub.data[DATA_DISPLAY] = DisplayMessages(hub, system)
    await state.load()

    def unload() -> None:
        state.unload()
        if hub.data.get(DATA_DISPLAY) is state:
            hub.data.pop(DATA_DISPLAY, None)

    ctx.on_unload(unload)

    def session_ended(event: Event) -> None:
        """A message of a transaction goes with it (the station drops it too)."""
        state.transaction_ended(
            str(event.data.get("charge_point_id")),
            str(event.data.get("transaction_id")),
            event.context,
        )

    ctx.listen(
        EVENT_CHARGER,
        session_ended,
        lambda data: (
            data.get("kind") == ChargerEventKind.SESSION_ENDED
            and data.get("charge_point_id") in state.messages
        ),
    )

    async def set_display_message(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        needs_201(station, "SetDisplayMessage")
        data = call.data
        if "end_time" in data and data["end_time"].timestamp() <= station.now():
            raise ServiceValidationError("end_time is in the past")
        mid = data.get("message_id") or state.new_id()
        content: dict[str, Any] = {"format": data["format"], "content": data["message"]}
        if "language" in data:
            content["language"] = data["language"]
        # O01.FR.04: no transactionId unless the message belongs to a transaction.
        info: dict[str, Any] = {"id": mid, "priority": data["priority"], "message": content}
        if "state" in data:
            info["state"] = data["state"]
        if "start_time" in data:
            info["startDateTime"] = iso(data["start_time"])
        if "end_time" in data:
            info["endDateTime"] = iso(data["end_time"])
        if "transaction_id" in data:
            info["transactionId"] = data["transaction_id"]
        status = answer_status(await station.call("SetDisplayMessage", {"message": info}))
        if status == "Accepted":
            kept = {key: value for key, value in info.items() if key != "id"}
            state.accepted(station, mid, kept)
        return {"status": status, "message_id": mid}

    async def get_display_messages(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        needs_201(station, "GetDisplayMessages")
        data = call.data
        collector = reports(hub)
        request_id = collector.next_id()
        payload: dict[str, Any] = {"requestId": request_id}
        if "message_ids" in data:
            payload["id"] = data["message_ids"]
        for key in ("priority", "state"):
            if key in data:
                payload[key] = data[key]
        answer = await collector.request(station, "GetDisplayMessages", payload, request_id)
        return {
            "status": answer["status"],
            "request_id": request_id,
            "messages": answer["items"],
            "complete": answer["complete"],
        }

    async def clear_display_message(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        needs_201(station, "ClearDisplayMessage")
        mid = call.data["message_id"]
        status = answer_status(await station.call("ClearDisplayMessage", {"id": mid}))
        if status in ("Accepted", "Unknown"):
            state.cleared(station, mid)
        return status

    message_id = vol.All(int, vol.Range(min=1, max=INT32_MAX))
    ctx.register_service(
        "set_display_message",
        set_display_message,
        vol.Schema(
            vol.All(
                {
                    **TARGET,
                    vol.Required("message"): vol.All(str, vol.Length(min=1, max=512)),
                    vol.Optional("format", default="UTF8"): vol.In(FORMATS),
                    vol.Optional("language"): vol.All(str, vol.Length(min=2, max=8)),
                    vol.Optional("priority", default="NormalCycle"): vol.In(PRIORITIES),
                    vol.Optional("state"): vol.In(STATES),
                    vol.Optional("start_time"): utc_datetime,
                    vol.Optional("end_time"): utc_datetime,
                    vol.Optional("transaction_id"): vol.All(str, vol.Length(min=1, max=36)),
                    vol.Optional("message_id"): message_id,
                },
                _window,
            )
        ),
        # An operator's daily job: "out of order, use bay 2" on a faulted station.
        role=Role.OPERATOR,
        description="Show a message on a 2.0.1 station's display.",
    )
    ctx.register_service(
        "get_display_messages",
        get_display_messages,
        vol.Schema(
            {
                **TARGET,
                vol.Optional("message_ids"): vol.All(
                    [message_id], vol.Length(min=1, max=100), vol.Unique()
                ),
                vol.Optional("priority"): vol.In(PRIORITIES),
                vol.Optional("state"): vol.In(STATES),
            }
        ),
        role=Role.VIEWER,
        description="Ask a 2.0.1 station which display messages it holds.",
    )
    ctx.register_service(
        "clear_display_message",
        clear_display_message,
        vol.Schema({**TARGET, vol.Required("message_id"): message_id}),
        role=Role.OPERATOR,
        description="Remove a message from a 2.0.1 station's display.",
    )
