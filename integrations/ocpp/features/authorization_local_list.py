"""The local authorization list (D): the hub's tokens sent to a station, Full or
Differential, with versions (SendLocalList, D01), and the station's version (GetLocalListVersion,
D02); 1.6's Local Auth List Management profile likewise.

The hub keeps, per station, the version and the entries of the last list the station
accepted, so a differential update sends only what changed since: new and changed tokens
with their info, removed ones without (which the station deletes, D01.FR.17). A
differential the station refuses (Failed, VersionMismatch) is sent again as a full list, as
the specifications advise.

A list longer than one message may carry (2.0.1 LocalAuthListCtrlr.ItemsPerMessage and
BytesPerMessage, D01.FR.11; 1.6 SendLocalListMaxLength) goes in parts: the first with the
update's type, the others Differential, each with the next version number (a station
refuses a differential that is not above its version). The limits are asked once per
connection, only for a list of more than one entry.

When a customer's data is cleared at a station (CustomerInformation with clear, N10), the
customer's token leaves that station's list by a differential (N10.FR.02, TC_N_46).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.clock import Timer
from hub.core import Event, Hub, HubKey, ServiceCall
from hub.entity import EntityDescription, EntityGroup
from hub.exceptions import HubError, ServiceValidationError
from hub.storage import Store
from integrations.ocpp.const import DOMAIN
from integrations.ocpp.features.authorization import (
    CONF_LOCAL_AUTH_LIST,
    CONF_SYNC_ON_BOOT,
    MAX_ID_16,
    MAX_TOKENS,
    STATUSES_16,
    TokenRegistry,
    valid_token_id,
)
from integrations.ocpp.features.base import register_station_services, station_for
from integrations.ocpp.protocol import OcppVersion

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

_LOGGER = logging.getLogger(__name__)

STORE_KEY: Final = "ocpp.local_lists"
STORE_VERSION: Final = 1
MAX_VERSION: Final = 2**31 - 1
# After an accepted boot, the station hears its BootNotification answer before the hub asks.
SYNC_DELAY: Final = 1.0

# Without a limit from the station, a message carries this many entries at most.
DEFAULT_ITEMS: Final = 1000
# What a message's envelope ([2,"<id>","SendLocalList",{...}]) adds to its payload.
FRAME_OVERHEAD: Final = 64

FULL: Final = "Full"
DIFFERENTIAL: Final = "Differential"

ENTITIES: Final = {
    "local_list_version": EntityDescription(key="local_list_version", name="local list version")
}

# A list entry as the hub keeps it, whichever version the station speaks.
Entry = dict[str, Any]


@dataclass(slots=True)
class StationList:
    """What one station holds, as far as the hub knows."""

    version: int = 0  # of the last list it accepted (0: none sent)
    entries: dict[str, Entry] = field(default_factory=dict)
    reported: int | None = None  # what it last said (GetLocalListVersion)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "entries": self.entries, "reported": self.reported}


def _entry_ok(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("id"), str)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("status"), str)
    )


def _entry_16(entry: Entry, removal: bool) -> dict[str, Any]:
    """A 1.6 AuthorizationData: idTag, and idTagInfo unless the tag is to be removed."""
    data: dict[str, Any] = {"idTag": entry["id"]}
    if not removal:
        status = entry["status"]
        info: dict[str, Any] = {"status": status if status in STATUSES_16 else "Invalid"}
        if entry.get("expiry"):
            info["expiryDate"] = entry["expiry"]
        group = entry.get("group")
        if group and len(group) <= MAX_ID_16:
            info["parentIdTag"] = group
        data["idTagInfo"] = info
    return data


def _entry_201(entry: Entry, removal: bool) -> dict[str, Any]:
    """A 2.0.1 AuthorizationData: idToken, and idTokenInfo unless it is to be removed."""
    data: dict[str, Any] = {"idToken": {"idToken": entry["id"], "type": entry["type"]}}
    if not removal:
        info: dict[str, Any] = {"status": entry["status"]}
        if entry.get("expiry"):
            info["cacheExpiryDateTime"] = entry["expiry"]
        if entry.get("group"):
            info["groupIdToken"] = {"idToken": entry["group"], "type": entry["group_type"]}
        data["idTokenInfo"] = info
    return data


class LocalLists:
    """The lists the hub sent, per station, kept in a store."""

    def __init__(self, hub: Hub, system: CentralSystem, tokens: TokenRegistry) -> None:
        self.hub = hub
        self.system = system
        self.tokens = tokens
        self.lists: dict[str, StationList] = {}
        self._entities: dict[str, EntityGroup] = {}
        # (cp_id, connection) -> (items, bytes) per message; asked once per connection.
        self._limits: dict[tuple[str, int], tuple[int | None, int | None]] = {}
        self._store: Store[dict[str, Any]] = Store(hub, STORE_VERSION, STORE_KEY, private=True)

    async def async_load(self) -> None:
        data = await self._store.load() or {}
        for cp_id, record in (data.get("stations") or {}).items():
            if not isinstance(record, dict):
                continue
            version = record.get("version")
            entries = record.get("entries")
            reported = record.get("reported")
            if not isinstance(version, int) or not isinstance(entries, dict):
                continue
            self.lists[cp_id] = StationList(
                version=version,
                entries={key: entry for key, entry in entries.items() if _entry_ok(entry)},
                reported=reported if isinstance(reported, int) else None,
            )

    def _save(self) -> None:
        self._store.delay_save(
            lambda: {"stations": {cp: held.as_dict() for cp, held in self.lists.items()}}
        )

    def held(self, cp_id: str) -> StationList:
        found = self.lists.get(cp_id)
        if found is None:
            found = self.lists[cp_id] = StationList()
        return found

    def desired(self, ids: list[str] | None) -> dict[str, Entry]:
        """The list built from the hub's tokens (those named, or all of them)."""
        if ids is None:
            chosen = self.tokens.all()
        else:
            chosen = []
            for token_id in ids:
                token = self.tokens.get(token_id)
                if token is None:
                    raise ServiceValidationError(f"no id token {token_id!r}")
                chosen.append(token)
        now = self.system.clock.time()
        entries: dict[str, Entry] = {}
        for token in chosen:
            entries[token.key] = {
                "id": token.id,
                "type": token.type,
                "status": token.status_at(now),
                "expiry": token.as_dict()["expiry"],
                "group": token.group,
                "group_type": self.tokens.group_type(token.group) if token.group else None,
            }
        return entries

    def _write_version(self, station: Station, version: int | None) -> None:
        group = self._entities.get(station.cp_id)
        if group is None:
            group = self._entities[station.cp_id] = EntityGroup(
                DOMAIN, ENTITIES, station.device_id, station.cp_id, station.name
            )
        held = self.lists.get(station.cp_id)
        extra = {"entries": len(held.entries), "sent_version": held.version} if held else None
        group.write(self.hub, "local_list_version", version, None, extra)

    def _items(
        self, station: Station, changes: list[Entry], removals: list[Entry]
    ) -> tuple[list[tuple[Entry, bool, dict[str, Any]]], list[str]]:
        """The AuthorizationData of each change and removal, in the station's version, and
        the tokens left out."""
        skipped: list[str] = []
        items: list[tuple[Entry, bool, dict[str, Any]]] = []
        v16 = station.version is not OcppVersion.V201
        for removal, entries in ((False, changes), (True, removals)):
            for entry in entries:
                if v16 and len(entry["id"]) > MAX_ID_16:
                    skipped.append(entry["id"])  # no 1.6 idTag is that long
                    continue
                data = _entry_16(entry, removal) if v16 else _entry_201(entry, removal)
                items.append((entry, removal, data))
        return items, skipped

    @staticmethod
    def _request(
        station: Station, update_type: str, version: int, items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        v16 = station.version is not OcppVersion.V201
        payload: dict[str, Any] = {
            "listVersion" if v16 else "versionNumber": version,
            "updateType": update_type,
        }
        if items:
            payload["localAuthorizationList"] = items
        return payload

    async def limits(self, station: Station) -> tuple[int | None, int | None]:
        """The entries and bytes one SendLocalList may carry to a station (None: not
        told), asked once per connection."""
        key = (station.cp_id, id(station.connection))
        if key in self._limits:
            return self._limits[key]
        items: int | None = None
        size: int | None = None
        try:
            if station.version is OcppVersion.V201:
                answer = await station.call(
                    "GetVariables",
                    {
                        "getVariableData": [
                            {
                                "component": {"name": "LocalAuthListCtrlr"},
                                "variable": {"name": name},
                            }
                            for name in ("ItemsPerMessage", "BytesPerMessage")
                        ]
                    },
                )
                for result in answer.get("getVariableResult", []):
                    if result.get("attributeStatus") != "Accepted":
                        continue
                    number = _positive(result.get("attributeValue"))
                    if result["variable"]["name"] == "ItemsPerMessage":
                        items = number
                    else:
                        size = number
            else:
                answer = await station.call("GetConfiguration", {"key": ["SendLocalListMaxLength"]})
                for entry in answer.get("configurationKey", []):
                    if entry.get("key") == "SendLocalListMaxLength":
                        items = _positive(entry.get("value"))
        except (HubError, KeyError, TypeError, AttributeError) as err:
            _LOGGER.debug("%s: no local list message limits (%s)", station.cp_id, err)
        for old in [k for k in self._limits if k[0] == station.cp_id]:
            del self._limits[old]
        self._limits[key] = (items, size)
        return items, size

    async def _parts(
        self, station: Station, items: list[dict[str, Any]], update_type: str, version: int
    ) -> list[list[dict[str, Any]]]:
        """The entries split so that each request keeps to the station's limits."""
        if len(items) <= 1:
            return [items]
        max_items, max_bytes = await self.limits(station)
        max_items = max_items or DEFAULT_ITEMS
        parts: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        # The request without entries, with the largest version it may carry.
        size = len(json.dumps(self._request(station, update_type, MAX_VERSION, [])))
        size += FRAME_OVERHEAD
        used = size
        for item in items:
            item_size = len(json.dumps(item, separators=(",", ":"))) + 2
            full = len(current) >= max_items or (
                max_bytes is not None and current and used + item_size > max_bytes
            )
            if full:
                parts.append(current)
                current, used = [], size
            current.append(item)
            used += item_size
        parts.append(current)
        return parts

    async def send(
        self,
        station: Station,
        update_type: str | None,
        version: int | None,
        ids: list[str] | None,
    ) -> dict[str, Any]:
        """Send the hub's list to a station; return what happened."""
        held = self.lists.get(station.cp_id)
        desired = self.desired(ids)
        if update_type is None:
            update_type = DIFFERENTIAL if held is not None and held.version > 0 else FULL
        previous = held.entries if held is not None else {}
        if update_type == FULL:
            changes, removals = list(desired.values()), []
        else:
            changes = [entry for key, entry in desired.items() if previous.get(key) != entry]
            removals = [entry for key, entry in previous.items() if key not in desired]
            if not changes and not removals:
                return {
                    "status": "Unchanged",
                    "update_type": update_type,
                    "version": held.version if held is not None else 0,
                    "sent": 0,
                }
        if version is None:
            known = max(held.version, held.reported or 0) if held is not None else 0
            version = known + 1
        result = await self._send_parts(station, update_type, version, changes, removals)
        if update_type == DIFFERENTIAL and result["first_status"] in ("Failed", "VersionMismatch"):
            # D01 / 1.6 §5.15: after a refused differential, send the full list.
            refused = result["first_status"]
            result = await self._send_parts(station, FULL, version, list(desired.values()), [])
            result["retried_full_after"] = refused
        result.pop("first_status")
        return result

    async def _send_parts(
        self,
        station: Station,
        update_type: str,
        version: int,
        changes: list[Entry],
        removals: list[Entry],
    ) -> dict[str, Any]:
        """Send an update in as many parts as the station's limits need, each accepted
        part kept as what the station holds."""
        items, skipped = self._items(station, changes, removals)
        by_data = {id(data): (entry, removal) for entry, removal, data in items}
        parts = await self._parts(station, [data for _, _, data in items], update_type, version)
        if version + len(parts) - 1 > MAX_VERSION:
            raise ServiceValidationError(
                f"the list version would pass {MAX_VERSION}; send a full list with a lower version"
            )
        held = self.lists.get(station.cp_id)
        entries = {} if update_type == FULL or held is None else dict(held.entries)
        status: Any = None
        first_status: Any = None
        sent = removed = 0
        accepted_version: int | None = None
        for index, part in enumerate(parts):
            kind = update_type if index == 0 else DIFFERENTIAL
            answer = await station.call(
                "SendLocalList", self._request(station, kind, version + index, part)
            )
            status = answer.get("status") if isinstance(answer, dict) else None
            if index == 0:
                first_status = status
            if status != "Accepted":
                break
            for data in part:
                entry, removal = by_data[id(data)]
                key = entry["id"].casefold()
                if removal:
                    entries.pop(key, None)
                    removed += 1
                else:
                    entries[key] = entry
                    sent += 1
            accepted_version = version + index
        if accepted_version is not None:
            # The station now holds what it accepted (less what its version cannot carry).
            self.lists[station.cp_id] = StationList(
                version=accepted_version, entries=entries, reported=accepted_version
            )
            self._save()
            self._write_version(station, accepted_version)
        result: dict[str, Any] = {
            "status": status,
            "update_type": update_type,
            "version": accepted_version if accepted_version is not None else version,
            "sent": sent,
            "removed": removed,
            "first_status": first_status,
        }
        if len(parts) > 1:
            result["parts"] = len(parts)
        if skipped:
            result["skipped"] = skipped
        return result

    async def forget(self, station: Station, token_id: str) -> dict[str, Any] | None:
        """N10.FR.02: a customer's data was cleared at a station; take the customer's
        token off the list the station holds (a differential). None: not on it."""
        held = self.lists.get(station.cp_id)
        key = token_id.casefold()
        if held is None or key not in held.entries:
            return None
        version = max(held.version, held.reported or 0) + 1
        result = await self._send_parts(station, DIFFERENTIAL, version, [], [held.entries[key]])
        result.pop("first_status")
        return result

    async def get_version(self, station: Station) -> dict[str, Any]:
        """Ask a station its list version; remember it."""
        answer = await station.call("GetLocalListVersion", {})
        key = "versionNumber" if station.version is OcppVersion.V201 else "listVersion"
        reported = answer.get(key) if isinstance(answer, dict) else None
        if (
            not isinstance(reported, int)
            or isinstance(reported, bool)
            or not -1 <= reported <= MAX_VERSION
        ):
            raise ServiceValidationError(
                f"{station.cp_id} answered an unreadable list version: {answer!r}"
            )
        held = self.held(station.cp_id)
        held.reported = reported
        self._save()
        self._write_version(station, reported)
        return {
            "version": reported,
            "sent_version": held.version,
            "in_sync": reported == held.version,
            "supported": reported != -1,
        }

    async def sync(self, station: Station) -> None:
        """After a boot: send the hub's list (Full) when the station's is not the last one
        the hub sent."""
        try:
            if station.boot_status != "Accepted":
                return
            reported = (await self.get_version(station))["version"]
            held = self.lists.get(station.cp_id)
            if reported == -1 or (held is not None and reported == held.version and reported > 0):
                return
            if held is None and not self.tokens.all():
                return
            await self.send(station, FULL, max(reported, held.version if held else 0) + 1, None)
        except Exception as err:
            _LOGGER.info("%s: local list not synchronised: %s", station.cp_id, err)


def _positive(value: Any) -> int | None:
    """A limit a station reported: a positive integer, else None."""
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


DATA_LOCAL_LISTS: Final[HubKey[LocalLists]] = HubKey("ocpp.local_lists")


async def setup(ctx: SetupContext, system: CentralSystem, tokens: TokenRegistry) -> None:
    """Register the local list services (and the sync after boot, when configured)."""
    hub = ctx.hub
    lists = LocalLists(hub, system, tokens)
    await lists.async_load()
    hub.data[DATA_LOCAL_LISTS] = lists
    ctx.on_unload(lambda: hub.data.pop(DATA_LOCAL_LISTS, None))

    async def send_local_list(call: ServiceCall) -> Any:
        update_type = call.data.get("update_type")
        return await lists.send(
            station_for(hub, call),
            {"full": FULL, "differential": DIFFERENTIAL}.get(update_type) if update_type else None,
            call.data.get("version"),
            call.data.get("id_tokens"),
        )

    async def get_local_list_version(call: ServiceCall) -> Any:
        return await lists.get_version(station_for(hub, call))

    register_station_services(
        ctx,
        {
            "send_local_list": (
                send_local_list,
                {
                    vol.Optional("update_type"): vol.In(["full", "differential"]),
                    vol.Optional("version"): vol.All(int, vol.Range(min=1, max=MAX_VERSION)),
                    vol.Optional("id_tokens"): vol.All(
                        [valid_token_id], vol.Length(max=MAX_TOKENS)
                    ),
                },
            )
        },
    )
    register_station_services(
        ctx, {"get_local_list_version": (get_local_list_version, {})}, role=Role.VIEWER
    )

    if not system.config.get(CONF_LOCAL_AUTH_LIST, {}).get(CONF_SYNC_ON_BOOT):
        return
    timers: set[Timer] = set()

    def on_boot(event: Event) -> None:
        station = system.stations.get(event.data.get("charge_point_id", ""))
        if station is None:
            return

        def start() -> None:
            timers.discard(timer)
            ctx.create_task(lists.sync(station), f"ocpp-local-list-{station.cp_id}")

        timer = system.clock.call_later(SYNC_DELAY, start)
        timers.add(timer)

    ctx.listen("ocpp_boot", on_boot)

    def cancel() -> None:
        for timer in timers:
            timer.cancel()
        timers.clear()

    ctx.on_unload(cancel)
