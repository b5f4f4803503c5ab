"""The simulated charger's side of the hub's authorization feature (features/authorization.py
and authorization_local_list.py): the authorization cache and the local authorization list.

Mixins of the per-version links (v16.V16Link, v201.V201Link): their ``@on_call`` methods
answer the central system's calls; ``self.sim`` is the SimulatedChargePoint. The local list
belongs to the simulated charger, not to one connection: it survives a reconnect.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ocpp.v16 import call_result as v16_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from integrations.ocpp.simulator.link import on_call

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint

# A list larger than this is refused (Failed), as a charger's memory would.
MAX_ENTRIES = 10_000


@dataclass(slots=True)
class LocalList:
    """A charger's local authorization list: version and id -> status info."""

    version: int = 0
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def reported_version(self) -> int:
        # Version 0 says the list is empty (1.6 §5.10; 2.0.1 D02).
        return self.version if self.entries else 0

    def apply(self, version: int, update_type: str, items: list[tuple[str, Any]]) -> str:
        """Apply a SendLocalList (id, info or None to remove); return its status."""
        if update_type == "Differential" and version <= self.version:
            return "VersionMismatch"
        entries = {} if update_type == "Full" else dict(self.entries)
        for token, info in items:
            key = token.casefold()
            if info is None:
                entries.pop(key, None)
            else:
                entries[key] = dict(info)
        if len(entries) > MAX_ENTRIES:
            return "Failed"
        self.version, self.entries = version, entries
        return "Accepted"


_LISTS: weakref.WeakKeyDictionary[SimulatedChargePoint, LocalList] = weakref.WeakKeyDictionary()


def local_list(sim: SimulatedChargePoint) -> LocalList:
    """The simulated charger's local list (empty at first)."""
    found = _LISTS.get(sim)
    if found is None:
        found = _LISTS[sim] = LocalList()
    return found


class Authorization16:
    """OCPP 1.6."""

    sim: SimulatedChargePoint

    @on_call("ClearCache")
    def on_clear_cache(self, **kwargs: Any) -> Any:
        # The simulated charger keeps no authorization cache: nothing to clear.
        return v16_result.ClearCache(status="Accepted")

    @on_call("SendLocalList")
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        items = [
            (entry["id_tag"], entry.get("id_tag_info")) for entry in local_authorization_list or ()
        ]
        status = local_list(self.sim).apply(list_version, update_type, items)
        return v16_result.SendLocalList(status=status)

    @on_call("GetLocalListVersion")
    def on_get_local_list_version(self, **kwargs: Any) -> Any:
        return v16_result.GetLocalListVersion(list_version=local_list(self.sim).reported_version)


class Authorization201:
    """OCPP 2.0.1."""

    sim: SimulatedChargePoint

    @on_call("ClearCache")
    def on_clear_cache(self, **kwargs: Any) -> Any:
        return v201_result.ClearCache(status="Accepted")

    @on_call("SendLocalList")
    def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        items = [
            (entry["id_token"]["id_token"], entry.get("id_token_info"))
            for entry in local_authorization_list or ()
        ]
        status = local_list(self.sim).apply(version_number, update_type, items)
        return v201_result.SendLocalList(status=status)

    @on_call("GetLocalListVersion")
    def on_get_local_list_version(self, **kwargs: Any) -> Any:
        return v201_result.GetLocalListVersion(version_number=local_list(self.sim).reported_version)
