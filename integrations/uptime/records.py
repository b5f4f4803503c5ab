"""The outage and exclusion records the engine fires, stores and reads back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from integrations.uptime.const import CAUSE_FAULTED, REASON_OTHER, REASONS
from integrations.uptime.intervals import INF, Interval


@dataclass(frozen=True, slots=True)
class OutageRecord:
    """One outage of one port: [start, end), end None while open."""

    outage_id: str
    port_id: str
    station_id: str | None
    start: float
    end: float | None
    cause: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OutageRecord:
        """Build a record from a recorder row or an event's data."""
        end = row.get("end")
        return cls(
            str(row["outage_id"]),
            str(row["port_id"]),
            None if row.get("station_id") is None else str(row["station_id"]),
            float(row["start"]),
            None if end is None else float(end),
            str(row.get("cause") or CAUSE_FAULTED),
        )

    def as_data(self) -> dict[str, Any]:
        """Return the EVENT_OUTAGE data."""
        return {
            "outage_id": self.outage_id,
            "port_id": self.port_id,
            "station_id": self.station_id,
            "start": self.start,
            "end": self.end,
            "cause": self.cause,
        }

    def interval(self, open_end: float) -> Interval:
        """Return [start, end), an open outage ending at open_end."""
        return (self.start, open_end if self.end is None else self.end)


@dataclass(frozen=True, slots=True)
class ExclusionRecord:
    """An excluded period: a port, every port of a station, or (both None) the whole site."""

    exclusion_id: str
    port_id: str | None
    station_id: str | None
    start: float
    end: float | None
    reason: str
    note: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ExclusionRecord:
        """Build a record from a recorder row or an event's data."""
        end = row.get("end")
        reason = str(row.get("reason") or REASON_OTHER)
        return cls(
            str(row["exclusion_id"]),
            None if row.get("port_id") is None else str(row["port_id"]),
            None if row.get("station_id") is None else str(row["station_id"]),
            float(row["start"]),
            None if end is None else float(end),
            reason if reason in REASONS else REASON_OTHER,
            None if row.get("note") is None else str(row["note"]),
        )

    def as_data(self, deleted: bool = False) -> dict[str, Any]:
        """Return the EVENT_EXCLUSION data."""
        return {
            "exclusion_id": self.exclusion_id,
            "port_id": self.port_id,
            "station_id": self.station_id,
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "note": self.note,
            "deleted": deleted,
        }

    def applies_to(self, port_id: str, station_id: str | None) -> bool:
        """Tell whether the exclusion covers a port."""
        if self.port_id is not None:
            return self.port_id == port_id
        if self.station_id is not None:
            return self.station_id == station_id
        return True

    def interval(self) -> Interval:
        """Return [start, end), an open-ended exclusion ending never."""
        return (self.start, INF if self.end is None else self.end)
