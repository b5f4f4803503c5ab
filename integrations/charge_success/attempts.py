"""Charge attempts, their outcome and visits, from recorded sessions and port status changes.

Pure functions over the recorder's rows (times are POSIX seconds), so the live hub, the API
and ``evhub report charge-success`` compute the same figures.

An attempt is either a recorded session (a transaction) or a failed attempt that never became
one: the port went Preparing (a driver plugged in or was authorized) and no session overlapped
the time until the port was free again (Available, Faulted, Unavailable, Reserved), or until
``attempt_timeout`` passed while it stayed occupied without one.

A session succeeds when it ended, delivered more than ``min_energy_kwh``, ended for one of the
``stop_reasons`` (a missing reason is Local: OCPP 1.6 and 2.0.1 may only omit it then) and its
port did not go Faulted during it or within ``fault_window`` seconds after it ended. A session
still running is ``in_progress`` and in no rate.

A visit is a driver's tries in a row: attempts with the same id tag at the same site (or, for
attempts without one, any tagless attempts at that site), each starting within
``visit_window`` seconds of the previous one's end, until one succeeds. A visit succeeds if
any of its attempts does; it counts in the group and period of its first attempt.
"""

from __future__ import annotations

import bisect
import csv
import io
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from integrations.charge_success.error_codes import NO_ERROR, ErrorMapping

PREPARING: Final = "Preparing"
FAULTED: Final = "Faulted"
OCCUPIED: Final = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"})

OUTCOME_SUCCESS: Final = "success"
OUTCOME_FAILED: Final = "failed"
OUTCOME_IN_PROGRESS: Final = "in_progress"
FAILURE_NO_SESSION: Final = "no_session"
FAILURE_LOW_ENERGY: Final = "low_energy"
FAILURE_STOP_REASON: Final = "stop_reason"
FAILURE_FAULTED: Final = "faulted"
FAILURE_NOT_ENDED: Final = "not_ended"
FAILURES: Final = (
    FAILURE_NO_SESSION,
    FAILURE_LOW_ENERGY,
    FAILURE_STOP_REASON,
    FAILURE_FAULTED,
)
GROUPS: Final = ("port", "station", "site")
PERIODS: Final = ("day", "month")

CSV_COLUMNS: Final = (
    "group",
    "id",
    "name",
    "station_id",
    "site_id",
    "period",
    "start",
    "end",
    "attempts",
    "successful",
    "failed",
    "failed_no_session",
    "failed_low_energy",
    "failed_stop_reason",
    "failed_faulted",
    "in_progress",
    "success_rate",
    "visits",
    "successful_visits",
    "visit_success_rate",
    "attempts_per_visit",
    "error_codes",
)


@dataclass(frozen=True, slots=True)
class SuccessRules:
    """The success definition's thresholds (the ``charge_success`` configuration)."""

    min_energy_kwh: float = 0.1
    stop_reasons: frozenset[str] = frozenset({"Local", "Remote", "EVDisconnected", "StoppedByEV"})
    fault_window: float = 60.0
    visit_window: float = 600.0
    attempt_timeout: float = 600.0
    errors: ErrorMapping = field(default_factory=ErrorMapping)


@dataclass(frozen=True, slots=True)
class PortInfo:
    """Where a port sits and what it is called."""

    port_id: str
    station_id: str | None
    site_id: str | None
    name: str
    station_name: str
    site_name: str


@dataclass(slots=True)
class Attempt:
    """One charge attempt and its outcome."""

    port_id: str
    station_id: str | None
    start: float
    end: float | None
    id_tag: str | None
    transaction_id: str | None
    energy_kwh: float | None
    stop_reason: str | None
    outcome: str
    failure: str | None
    error_codes: tuple[str, ...] = ()
    mrec_codes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "port_id": self.port_id,
            "station_id": self.station_id,
            "start": self.start,
            "end": self.end,
            "id_tag": self.id_tag,
            "transaction_id": self.transaction_id,
            "energy_kwh": self.energy_kwh,
            "stop_reason": self.stop_reason,
            "outcome": self.outcome,
            "failure": self.failure,
            "error_codes": list(self.error_codes),
            "mrec_codes": list(self.mrec_codes),
        }


@dataclass(slots=True)
class Visit:
    """A driver's attempts in a row at one site."""

    attempts: list[Attempt]
    last_end: float
    succeeded: bool = False


def _errors_between(
    rows: list[dict[str, Any]], since: float, until: float
) -> list[tuple[float, str, str | None, str | None]]:
    """(time, status, error code, vendor error code) of a port's status rows in (since,
    until]."""
    return [
        (row["time"], row["status"], row["error_code"], row.get("vendor_error_code"))
        for row in rows
        if since < row["time"] <= until
    ]


def _codes(
    found: Iterable[tuple[str | None, str | None]], rules: SuccessRules
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The error codes seen (OCPP, or the vendor's where the OCPP code says nothing) and
    their MRECs (a vendor code wins over the OCPP code it came with)."""
    pairs = [
        (code, vendor)
        for code, vendor in found
        if (code and code not in NO_ERROR) or (vendor and vendor not in NO_ERROR)
    ]
    codes = tuple(dict.fromkeys(str(code or vendor) for code, vendor in pairs))
    mrecs = tuple(
        dict.fromkeys(
            m for m in (rules.errors.mrec(code, vendor) for code, vendor in pairs) if m is not None
        )
    )
    return codes, mrecs


def session_attempt(
    session: Mapping[str, Any], rows: list[dict[str, Any]], rules: SuccessRules, now: float
) -> Attempt:
    """A recorded session as an attempt, judged by the rules (rows: its port's statuses)."""
    started: float = session["started_at"]
    stopped: float | None = session["stopped_at"]
    energy_wh = session["energy_wh"]
    energy = None if energy_wh is None else energy_wh / 1000.0
    reason = session["stop_reason"]
    until = (stopped if stopped is not None else now) + rules.fault_window
    seen = _errors_between(rows, started, until)
    codes, mrecs = _codes(
        ((session["error_code"], None), *((code, vendor) for _, _, code, vendor in seen)), rules
    )
    failure: str | None = None
    if stopped is None:
        outcome = OUTCOME_IN_PROGRESS
    else:
        if any(status == FAULTED for _, status, _, _ in seen):
            failure = FAILURE_FAULTED
        elif energy is None or energy <= rules.min_energy_kwh:
            failure = FAILURE_LOW_ENERGY
        elif (reason or "Local") not in rules.stop_reasons:
            failure = FAILURE_STOP_REASON
        outcome = OUTCOME_FAILED if failure else OUTCOME_SUCCESS
        # A fault still to come may yet fail it: judged only once its window has passed.
        if failure is None and now < stopped + rules.fault_window:
            outcome = OUTCOME_IN_PROGRESS
    return Attempt(
        port_id=str(session["port_id"]),
        station_id=session["station_id"],
        start=started,
        end=stopped,
        id_tag=session["id_tag"],
        transaction_id=session["transaction_id"],
        energy_kwh=energy,
        stop_reason=reason,
        outcome=outcome,
        failure=failure,
        error_codes=codes,
        mrec_codes=mrecs,
    )


def failed_attempts(
    port_id: str,
    rows: list[dict[str, Any]],
    sessions: list[Mapping[str, Any]],
    rules: SuccessRules,
    now: float,
) -> list[Attempt]:
    """A port's Preparing periods that no session overlapped: failed attempts (rows oldest
    first; sessions of this port)."""
    found: list[Attempt] = []
    previous: str | None = None
    for index, row in enumerate(rows):
        status = row["status"]
        before = previous if index else row["previous"]
        previous = status
        if status != PREPARING or before in OCCUPIED:
            continue
        began: float = row["time"]
        freed = next(
            (later for later in rows[index + 1 :] if later["status"] not in OCCUPIED), None
        )
        ended = began + rules.attempt_timeout
        if freed is not None and freed["time"] < ended:
            ended = freed["time"]
        elif ended > now:
            continue  # still occupied, its timeout not reached: not judged yet
        if any(
            s["started_at"] is not None
            and s["started_at"] <= ended
            # One that began a moment before the port said Preparing (the charger's clock
            # against the hub's) still runs then; one that stopped before is another's.
            and (s["stopped_at"] is None or s["stopped_at"] > began)
            for s in sessions
        ):
            continue
        codes, mrecs = _codes(
            (
                (later["error_code"], later.get("vendor_error_code"))
                for later in rows[index:]
                if began <= later["time"] <= ended
            ),
            rules,
        )
        found.append(
            Attempt(
                port_id=port_id,
                station_id=row["station_id"],
                start=began,
                end=ended,
                id_tag=None,
                transaction_id=None,
                energy_kwh=None,
                stop_reason=None,
                outcome=OUTCOME_FAILED,
                failure=FAILURE_NO_SESSION,
                error_codes=codes,
                mrec_codes=mrecs,
            )
        )
    return found


def attempts(
    sessions: list[Mapping[str, Any]],
    status_rows: list[dict[str, Any]],
    rules: SuccessRules,
    start: float,
    end: float,
    now: float,
) -> list[Attempt]:
    """Every attempt that started in [start, end), by start."""
    by_port: dict[str, list[dict[str, Any]]] = {}
    for row in status_rows:
        by_port.setdefault(str(row["port_id"]), []).append(row)
    sessions_of: dict[str, list[Mapping[str, Any]]] = {}
    for session in sessions:
        if session["port_id"] is not None and session["started_at"] is not None:
            sessions_of.setdefault(str(session["port_id"]), []).append(session)
    found: list[Attempt] = []
    for port_id, mine in sessions_of.items():
        rows = by_port.get(port_id, [])
        for session in mine:
            if start <= session["started_at"] < end:
                found.append(session_attempt(session, rows, rules, now))
    for port_id, rows in by_port.items():
        for attempt in failed_attempts(port_id, rows, sessions_of.get(port_id, []), rules, now):
            if start <= attempt.start < end:
                found.append(attempt)
    found.sort(key=lambda a: (a.start, a.port_id, a.transaction_id or ""))
    return found


def visits(found: list[Attempt], site_of: Mapping[str, str | None], window: float) -> list[Visit]:
    """Group judged attempts (not in progress) into visits; site_of maps a port to its site."""
    made: list[Visit] = []
    open_visits: dict[tuple[str | None, str | None], Visit] = {}
    for attempt in found:
        if attempt.outcome == OUTCOME_IN_PROGRESS:
            continue
        key = (site_of.get(attempt.port_id), attempt.id_tag)
        visit = open_visits.get(key)
        if visit is None or visit.succeeded or attempt.start - visit.last_end > window:
            visit = Visit([], attempt.end or attempt.start)
            open_visits[key] = visit
            made.append(visit)
        visit.attempts.append(attempt)
        visit.last_end = max(visit.last_end, attempt.end or attempt.start)
        visit.succeeded = visit.succeeded or attempt.outcome == OUTCOME_SUCCESS
    return made


def period_starts(start: float, end: float, by: str, zone: zoneinfo.ZoneInfo) -> list[float]:
    """Local day or month starts from start's period to end (hub time zone)."""
    if by not in PERIODS:
        raise ValueError(f"by must be one of {PERIODS}, not {by!r}")
    local = datetime.fromtimestamp(start, zone)
    day = local.date().replace(day=1) if by == "month" else local.date()
    marks: list[float] = []
    while True:
        mark = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
        if mark >= end:
            break
        marks.append(mark)
        if by == "month":
            day = day.replace(year=day.year + (day.month == 12), month=day.month % 12 + 1)
        else:
            day = datetime.fromordinal(day.toordinal() + 1).date()
    return marks or [start]


def _label(mark: float, by: str, zone: zoneinfo.ZoneInfo) -> str:
    local = datetime.fromtimestamp(mark, zone)
    return local.strftime("%Y-%m" if by == "month" else "%Y-%m-%d")


class _Tally:
    __slots__ = ("codes", "counts", "successful_visits", "visits")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.codes: dict[str, int] = {}
        self.visits = 0
        self.successful_visits = 0

    def add(self, attempt: Attempt) -> None:
        counts = self.counts
        counts["attempts"] = counts.get("attempts", 0) + 1
        key = attempt.outcome if attempt.failure is None else f"failed_{attempt.failure}"
        counts[key] = counts.get(key, 0) + 1
        for code in attempt.mrec_codes or ():
            self.codes[code] = self.codes.get(code, 0) + 1

    def figures(self) -> dict[str, Any]:
        counts = self.counts
        failed = sum(counts.get(f"failed_{f}", 0) for f in FAILURES)
        successful = counts.get(OUTCOME_SUCCESS, 0)
        judged = successful + failed
        return {
            "attempts": counts.get("attempts", 0),
            "successful": successful,
            "failed": failed,
            **{f"failed_{f}": counts.get(f"failed_{f}", 0) for f in FAILURES},
            "in_progress": counts.get(OUTCOME_IN_PROGRESS, 0),
            "success_rate": round(successful / judged, 4) if judged else None,
            "visits": self.visits,
            "successful_visits": self.successful_visits,
            "visit_success_rate": (
                round(self.successful_visits / self.visits, 4) if self.visits else None
            ),
            "attempts_per_visit": round(judged / self.visits, 4) if self.visits else None,
            "error_codes": dict(sorted(self.codes.items())),
        }


def aggregate(
    found: list[Attempt],
    ports: Mapping[str, PortInfo],
    rules: SuccessRules,
    start: float,
    end: float,
    group: str,
    by: str,
    zone: zoneinfo.ZoneInfo,
) -> dict[str, Any]:
    """Rows per group (port, station or site) and period (day or month), and their totals."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, not {group!r}")
    marks = period_starts(start, end, by, zone)

    def info(port_id: str, station_id: str | None) -> PortInfo:
        return ports.get(port_id) or PortInfo(
            port_id, station_id, None, port_id, station_id or "", ""
        )

    def key_of(attempt: Attempt) -> tuple[str | None, PortInfo]:
        where = info(attempt.port_id, attempt.station_id)
        if group == "port":
            return where.port_id, where
        if group == "station":
            return where.station_id, where
        return where.site_id, where

    def period_of(ts: float) -> int:
        return max(0, bisect.bisect_right(marks, ts) - 1)

    cells: dict[tuple[str | None, int], _Tally] = {}
    totals: dict[str | None, _Tally] = {}
    names: dict[str | None, PortInfo] = {}
    for attempt in found:
        key, where = key_of(attempt)
        names.setdefault(key, where)
        cells.setdefault((key, period_of(attempt.start)), _Tally()).add(attempt)
        totals.setdefault(key, _Tally()).add(attempt)
    site_of = {a.port_id: info(a.port_id, a.station_id).site_id for a in found}
    for visit in visits(found, site_of, rules.visit_window):
        key, _ = key_of(visit.attempts[0])
        for tally in (cells[(key, period_of(visit.attempts[0].start))], totals[key]):
            tally.visits += 1
            tally.successful_visits += visit.succeeded

    def describe(key: str | None) -> dict[str, Any]:
        where = names[key]
        if group == "port":
            name = where.name
        elif group == "station":
            name = where.station_name
        else:
            name = where.site_name
        return {
            "group": group,
            "id": key,
            "name": name,
            "station_id": where.station_id if group != "site" else None,
            "site_id": where.site_id,
        }

    order = sorted(names, key=lambda k: (describe(k)["name"] or "", k or ""))
    rows = []
    for key in order:
        for index, mark in enumerate(marks):
            cell = cells.get((key, index))
            if cell is None:
                continue
            until = marks[index + 1] if index + 1 < len(marks) else end
            rows.append(
                {
                    **describe(key),
                    "period": _label(max(mark, start), by, zone),
                    "start": max(mark, start),
                    "end": until,
                    **cell.figures(),
                }
            )
    overall = _Tally()
    for attempt in found:
        overall.add(attempt)
    for visit in visits(found, site_of, rules.visit_window):
        overall.visits += 1
        overall.successful_visits += visit.succeeded
    return {
        "group": group,
        "by": by,
        "rows": rows,
        "totals": [{**describe(key), **totals[key].figures()} for key in order],
        "overall": overall.figures(),
    }


def to_csv(report: Mapping[str, Any], iso: Any) -> str:
    """The rows of an aggregate as CSV (times through iso, error codes as CX001:2;CX004:1)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report["rows"]:
        values = dict(row)
        values["start"], values["end"] = iso(row["start"]), iso(row["end"])
        values["error_codes"] = ";".join(f"{k}:{v}" for k, v in row["error_codes"].items())
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return out.getvalue()
