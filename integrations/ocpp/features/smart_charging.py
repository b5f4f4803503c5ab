"""Smart charging (K): charging profiles, composite schedules, external charging limits and
the EV's charging needs (ISO 15118).

What the hub asks of a station is checked here before it leaves, beyond the official schema
(connection.py checks that): periods ascending from 0 (K01.FR.31), limits >= 0, a purpose
the station may be given (never ChargingStationExternalConstraints), the kind's fields
(startSchedule for Absolute and Recurring, never for Relative; recurrencyKind only for
Recurring), a TxProfile on a port with its transaction (K01.FR.03). Profiles a station
accepted are kept per station (``sensor.<station>_charging_profiles``) so the hub can judge
the EV's schedule (K15.FR.11) and show what it set.

With ``ev_charging_needs_status: Processing`` the hub answers an EV's charging needs itself
(K15): a TxProfile for the running transaction at the EV's maximum, within the station
maximum and transaction defaults it set, until the EV's departure; sent again when the EV's
schedule goes beyond it (K16 renegotiation, a few times a transaction). A remote start may
carry its TxProfile (K05, ``ocpp.start_transaction_with_profile``).

Also here, used by the other features: ``Reports``, the collector of answers that arrive
as a series of messages (requestId, tbc), and the helpers every service of this block uses.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.charger import EVENT_CHARGER, ChargerEventKind
from hub.clock import clock
from hub.core import Context, Event, Hub, HubKey, ServiceCall
from hub.entity import EntityDescription, EntityGroup
from hub.exceptions import HubError, ServiceValidationError
from hub.storage import Store
from integrations.ocpp.const import DOMAIN
from integrations.ocpp.features.base import (
    ID_TOKEN_TYPES,
    TARGET,
    MessageHandler,
    answer_status,
    register_station_services,
    station_for,
)
from integrations.ocpp.protocol import OcppVersion

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem

_LOGGER = logging.getLogger(__name__)

INT32_MAX: Final = 2_147_483_647
# What a service may name: ports, stack levels, durations (seconds), limits (A / W).
MAX_EVSE: Final = 1000
MAX_STACK_LEVEL: Final = 1000
MAX_DURATION: Final = 366 * 86400
MAX_LIMIT: Final = {"A": 10_000.0, "W": 10_000_000.0}
MAX_PERIODS: Final = 1024
# charger.set_current_limit: an absolute profile of this length, renewed by setting it again.
CURRENT_LIMIT_HORIZON: Final = 365 * 86400
CURRENT_LIMIT_PROFILE_BASE: Final = 1000
# A series of report messages (ReportChargingProfiles, NotifyDisplayMessages) is waited for
# at most this long after the station accepted the request, and holds at most this many items.
REPORT_TIMEOUT: Final = 30.0
REPORT_MAX_ITEMS: Final = 5000
# Profiles kept per station (what the hub set and the station accepted).
MAX_KEPT_PROFILES: Final = 200
# The TxProfile the hub sets for an EV's charging needs (ev_charging_needs_status:
# Processing): id EV_PROFILE_BASE + EVSE, until the EV's departure or for a day; sent again
# (renegotiated, K16) at most MAX_RENEGOTIATIONS times a transaction when the EV's schedule
# goes beyond it.
EV_PROFILE_BASE: Final = 2000
EV_PROFILE_DURATION: Final = 86400
MAX_RENEGOTIATIONS: Final = 3

TARGET_KEYS: Final = ("charge_point_id", "device_id", "entity_id")
CONF_EV_CHARGING_NEEDS: Final = "ev_charging_needs_status"
STORE_KEY: Final = "ocpp.smart_charging"

PURPOSE_MAX: Final = "ChargingStationMaxProfile"
PURPOSE_TX_DEFAULT: Final = "TxDefaultProfile"
PURPOSE_TX: Final = "TxProfile"
# Either version's word for the station-wide maximum is taken; each is sent in its own.
PURPOSES: Final = {
    PURPOSE_MAX: PURPOSE_MAX,
    "ChargePointMaxProfile": PURPOSE_MAX,
    PURPOSE_TX_DEFAULT: PURPOSE_TX_DEFAULT,
    PURPOSE_TX: PURPOSE_TX,
}
PURPOSE_16: Final = {PURPOSE_MAX: "ChargePointMaxProfile"}
ALL_PURPOSES_201: Final = (
    "ChargingStationExternalConstraints",
    PURPOSE_MAX,
    PURPOSE_TX_DEFAULT,
    PURPOSE_TX,
)
KINDS: Final = ("Absolute", "Recurring", "Relative")
LIMIT_SOURCES: Final = ("EMS", "Other", "SO", "CSO")

CONFIG: dict[Any, Any] = {
    # The answer to an EV's charging needs (K15): Rejected unless something (an automation
    # on the ocpp_ev_charging_needs event) sends the schedule; then Processing (K15.FR.05).
    vol.Optional(CONF_EV_CHARGING_NEEDS, default="Rejected"): vol.In(
        ["Accepted", "Processing", "Rejected"]
    ),
}


# Shared helpers --------------------------------------------------------------------------


def utc_datetime(value: Any) -> datetime:
    """A service's date and time: ISO 8601 with a zone (or a datetime), as UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError as err:
            raise vol.Invalid(
                f"expected an ISO 8601 date and time, got {str(value)[:40]!r}"
            ) from err
    if moment.tzinfo is None:
        raise vol.Invalid("a date and time needs its zone (Z or +hh:mm)")
    return moment.astimezone(UTC)


def iso(moment: datetime | float) -> str:
    """A time as OCPP writes it (UTC, seconds, Z)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def is_201(station: Station) -> bool:
    """Whether the station speaks 2.0.1 (1.6 until it has spoken)."""
    return station.version is OcppVersion.V201


def needs_201(station: Station, what: str) -> None:
    """Refuse, as bad input, what OCPP 1.6 has no message for."""
    if not is_201(station):
        raise ServiceValidationError(f"{what} is OCPP 2.0.1; {station.cp_id} speaks 1.6")


def check_port(station: Station, number: int, field: str = "evse_id") -> int:
    """A service's port number within the station's port limit."""
    limit = station.system.limits.max_ports
    if not 0 <= number <= limit:
        raise ServiceValidationError(f"{field} {number} is outside 0..{limit}")
    return number


def port_entities(
    station: Station, table: dict[str, EntityDescription], number: int
) -> EntityGroup:
    """An EntityGroup of a feature's own entities on a port (number > 0) or the station (0)."""
    if number == 0:
        return EntityGroup(DOMAIN, table, station.device_id, station.cp_id, station.name)
    port = station.port(number)
    return EntityGroup(
        DOMAIN, table, port.device_id, f"{station.cp_id}-{number}", f"{station.name} {number}"
    )


class _Pending:
    __slots__ = ("done", "ended", "items")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.items: list[Any] = []
        self.ended = False  # the last message (tbc false) came, and nothing was dropped


class Reports:
    """Requests answered by a status, then by a series of messages with the same requestId
    (tbc until the last one): GetChargingProfiles, GetDisplayMessages."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._pending: dict[tuple[str, int], _Pending] = {}
        # Ids differ from those of an earlier run, whose late reports are not mixed in.
        self._ids = itertools.count(int(clock(hub).time()) % 1_000_000_000 + 1)

    def next_id(self) -> int:
        return next(self._ids) % INT32_MAX

    async def request(
        self, station: Station, action: str, payload: dict[str, Any], request_id: int
    ) -> dict[str, Any]:
        """Send the request; if Accepted, wait for its series of messages.

        Returns ``{"status", "items", "complete"}``: complete is False when the series did not
        end within REPORT_TIMEOUT or held more than REPORT_MAX_ITEMS items.
        """
        key = (station.cp_id, request_id)
        if key in self._pending:
            raise ServiceValidationError(f"request {request_id} is already running")
        done: asyncio.Future[None] = self.hub.loop.create_future()
        pending = self._pending[key] = _Pending(done)

        def give_up() -> None:
            if not done.done():
                done.set_result(None)

        timer = clock(self.hub).call_later(
            max(REPORT_TIMEOUT, station.system.call_timeout), give_up
        )
        try:
            status = answer_status(await station.call(action, payload))
            if status != "Accepted":
                return {"status": status, "items": [], "complete": True}
            await done
            return {"status": status, "items": pending.items, "complete": pending.ended}
        finally:
            timer.cancel()
            self._pending.pop(key, None)

    def feed(self, cp_id: str, request_id: int, items: list[Any], tbc: bool) -> bool:
        """Add a message's items to its request; return whether a request waited for it."""
        pending = self._pending.get((cp_id, request_id))
        if pending is None or pending.done.done():
            return False
        room = REPORT_MAX_ITEMS - len(pending.items)
        pending.items.extend(items[:room])
        if len(items) > room:
            pending.done.set_result(None)  # too many: stop here, incomplete
        elif not tbc:
            pending.ended = True
            pending.done.set_result(None)
        return True


DATA_REPORTS: Final[HubKey[Reports]] = HubKey("ocpp.reports")


def reports(hub: Hub) -> Reports:
    """The hub's report collector, made on first use."""
    found = hub.data.get(DATA_REPORTS)
    if found is None:
        found = hub.data[DATA_REPORTS] = Reports(hub)
    return found


# Charging profiles -----------------------------------------------------------------------


def _period(value: Any) -> dict[str, Any]:
    checked: dict[str, Any] = vol.Schema(
        {
            vol.Required("start_period"): vol.All(int, vol.Range(min=0, max=MAX_DURATION)),
            vol.Required("limit"): vol.All(vol.Coerce(float), vol.Range(min=0, max=MAX_LIMIT["W"])),
            vol.Optional("number_phases"): vol.All(int, vol.Range(min=1, max=3)),
            vol.Optional("phase_to_use"): vol.All(int, vol.Range(min=1, max=3)),
        }
    )(value)
    return checked


# The keys of a charging profile, as a service takes them (flat, snake_case).
PROFILE_KEYS: Final[dict[Any, Any]] = {
    vol.Optional("evse_id", default=0): vol.All(int, vol.Range(min=0, max=MAX_EVSE)),
    vol.Required("profile_id"): vol.All(int, vol.Range(min=1, max=INT32_MAX)),
    vol.Optional("stack_level", default=0): vol.All(int, vol.Range(min=0, max=MAX_STACK_LEVEL)),
    vol.Required("purpose"): vol.In(list(PURPOSES)),
    vol.Optional("kind", default="Absolute"): vol.In(KINDS),
    vol.Optional("recurrency_kind"): vol.In(["Daily", "Weekly"]),
    vol.Optional("valid_from"): utc_datetime,
    vol.Optional("valid_to"): utc_datetime,
    vol.Optional("transaction_id"): vol.All(str, vol.Length(min=1, max=36)),
    vol.Optional("rate_unit", default="A"): vol.In(["A", "W"]),
    vol.Optional("start_schedule"): utc_datetime,
    vol.Optional("duration"): vol.All(int, vol.Range(min=1, max=MAX_DURATION)),
    vol.Optional("min_charging_rate"): vol.All(
        vol.Coerce(float), vol.Range(min=0, max=MAX_LIMIT["W"])
    ),
    vol.Required("periods"): vol.All([_period], vol.Length(min=1, max=MAX_PERIODS)),
}


def _check_periods(data: dict[str, Any]) -> None:
    periods = data["periods"]
    if periods[0]["start_period"] != 0:
        raise ServiceValidationError("the first period starts at 0 (K01.FR.31)")
    for before, after in itertools.pairwise(periods):
        if after["start_period"] <= before["start_period"]:
            raise ServiceValidationError(
                f"periods start in ascending order: {after['start_period']} follows "
                f"{before['start_period']}"
            )
    most = MAX_LIMIT[data["rate_unit"]]
    for period in periods:
        if period["limit"] > most:
            raise ServiceValidationError(
                f"limit {period['limit']} {data['rate_unit']} is above {most:g}"
            )
        if "phase_to_use" in period and period.get("number_phases") != 1:
            raise ServiceValidationError("phase_to_use needs number_phases 1")
        if data.get("duration") is not None and period["start_period"] >= data["duration"]:
            raise ServiceValidationError(
                f"period at {period['start_period']} s starts after the schedule's "
                f"{data['duration']} s"
            )


def checked_profile(station: Station, data: dict[str, Any]) -> dict[str, Any]:
    """A service's profile with its defaults filled in, or ServiceValidationError."""
    profile = dict(data)
    purpose = profile["purpose"] = PURPOSES[profile["purpose"]]
    evse = check_port(station, profile["evse_id"])
    kind = profile["kind"]
    now = datetime.fromtimestamp(station.now(), UTC).replace(microsecond=0)
    _check_periods(profile)
    if kind == "Relative":
        if "start_schedule" in profile:
            raise ServiceValidationError("a Relative profile has no start_schedule")
    else:
        # Absolute and Recurring profiles say when they start (TC_K_01, TC_K_19).
        profile.setdefault("start_schedule", now)
        profile.setdefault("valid_from", now)
        if kind == "Absolute" and "duration" in profile:
            end = profile["start_schedule"].timestamp() + profile["duration"]
            profile.setdefault("valid_to", datetime.fromtimestamp(end, UTC))
    if (kind == "Recurring") != ("recurrency_kind" in profile):
        raise ServiceValidationError("recurrency_kind goes with kind Recurring, and only with it")
    if "valid_to" in profile:
        if profile["valid_to"].timestamp() <= profile.get("valid_from", now).timestamp():
            raise ServiceValidationError("valid_to is after valid_from")
        if profile["valid_to"].timestamp() <= now.timestamp():
            raise ServiceValidationError("valid_to is in the past")
    if purpose == PURPOSE_MAX:
        if evse != 0:
            raise ServiceValidationError(f"a {purpose} applies to the whole station: evse_id 0")
        if kind == "Relative":
            raise ServiceValidationError(f"a {purpose} is not Relative (K01.FR.38)")
    if purpose != PURPOSE_TX and "transaction_id" in profile:
        raise ServiceValidationError("only a TxProfile names a transaction")
    if purpose == PURPOSE_TX:
        if evse == 0:
            raise ServiceValidationError("a TxProfile applies to one EVSE/connector: evse_id")
        if "transaction_id" not in profile:
            # K01.FR.03: a TxProfile names its transaction; the port's running one.
            port = station.ports.get(evse)
            if port is not None and port.transaction is not None:
                profile["transaction_id"] = str(port.transaction.ocpp_id)
        if not is_201(station) and "transaction_id" in profile:
            try:
                profile["transaction_id"] = str(int(profile["transaction_id"]))
            except ValueError:
                raise ServiceValidationError("an OCPP 1.6 transaction id is a number") from None
    return profile


def profile_payload(station: Station, profile: dict[str, Any]) -> dict[str, Any]:
    """The SetChargingProfile payload of a checked profile, in the station's version."""
    v201 = is_201(station)
    periods = []
    for item in profile["periods"]:
        limit = round(item["limit"], 1)
        period: dict[str, Any] = {"startPeriod": item["start_period"], "limit": limit}
        if "number_phases" in item:
            period["numberPhases"] = item["number_phases"]
        if v201 and "phase_to_use" in item:
            period["phaseToUse"] = item["phase_to_use"]
        periods.append(period)
    schedule: dict[str, Any] = {
        "chargingRateUnit": profile["rate_unit"],
        "chargingSchedulePeriod": periods,
    }
    if v201:
        schedule["id"] = profile["profile_id"]
    if "start_schedule" in profile:
        schedule["startSchedule"] = iso(profile["start_schedule"])
    if "duration" in profile:
        schedule["duration"] = profile["duration"]
    if "min_charging_rate" in profile:
        schedule["minChargingRate"] = round(profile["min_charging_rate"], 1)
    purpose = profile["purpose"]
    body: dict[str, Any] = {
        "id" if v201 else "chargingProfileId": profile["profile_id"],
        "stackLevel": profile["stack_level"],
        "chargingProfilePurpose": purpose if v201 else PURPOSE_16.get(purpose, purpose),
        "chargingProfileKind": profile["kind"],
        "chargingSchedule": [schedule] if v201 else schedule,
    }
    for key, name in (
        ("recurrency_kind", "recurrencyKind"),
        ("valid_from", "validFrom"),
        ("valid_to", "validTo"),
    ):
        if key in profile:
            body[name] = profile[key] if key == "recurrency_kind" else iso(profile[key])
    if "transaction_id" in profile:
        body["transactionId"] = (
            profile["transaction_id"] if v201 else int(profile["transaction_id"])
        )
    if v201:
        return {"evseId": profile["evse_id"], "chargingProfile": body}
    return {"connectorId": profile["evse_id"], "csChargingProfiles": body}


PROFILE_ENTITIES: Final = {
    "charging_profiles": EntityDescription(key="charging_profiles", name="charging profiles"),
    "charging_limit": EntityDescription(key="charging_limit", name="external charging limit"),
}


class SmartCharging:
    """The profiles each station accepted from the hub, kept on disk."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store: Store[dict[str, Any]] = Store(hub, 1, STORE_KEY, private=True)
        # cp_id -> str(profile id) -> {"evse_id", "purpose", "stack_level", "transaction_id",
        # "set_at", "profile": the OCPP payload as sent}
        self.profiles: dict[str, dict[str, dict[str, Any]]] = {}
        self.ev_needs_status = "Rejected"
        # (cp_id, evse) -> the profile the hub set for the EV's needs (service form), and
        # how often it was sent again because the EV's schedule went beyond it.
        self.ev_plans: dict[tuple[str, int], dict[str, Any]] = {}
        self.renegotiations: dict[tuple[str, int], int] = {}

    async def load(self) -> None:
        stored = await self.store.load() or {}
        self.profiles = {cp_id: dict(kept) for cp_id, kept in stored.get("profiles", {}).items()}

    def save(self) -> None:
        self.store.delay_save(lambda: {"profiles": self.profiles}, 0.5)

    def show(self, station: Station, ctx: Context | None = None) -> None:
        kept = self.profiles.get(station.cp_id, {})
        summary = [
            {
                "id": int(pid),
                "evse_id": item["evse_id"],
                "purpose": item["purpose"],
                "stack_level": item["stack_level"],
            }
            for pid, item in sorted(kept.items(), key=lambda pair: int(pair[0]))
        ]
        port_entities(station, PROFILE_ENTITIES, 0).write(
            self.hub, "charging_profiles", len(summary), ctx, {"profiles": summary}
        )

    def accepted(self, station: Station, profile: dict[str, Any], payload: dict[str, Any]) -> None:
        """A station accepted a profile: it replaces the one of the same id, and the one of
        the same port, purpose and stack level (and transaction)."""
        kept = self.profiles.setdefault(station.cp_id, {})
        for pid, item in list(kept.items()):
            if (item["evse_id"], item["purpose"], item["stack_level"]) == (
                profile["evse_id"],
                profile["purpose"],
                profile["stack_level"],
            ) and item.get("transaction_id") == profile.get("transaction_id"):
                del kept[pid]
        kept[str(profile["profile_id"])] = {
            "evse_id": profile["evse_id"],
            "purpose": profile["purpose"],
            "stack_level": profile["stack_level"],
            "transaction_id": profile.get("transaction_id"),
            "set_at": iso(station.now()),
            "payload": payload,
        }
        while len(kept) > MAX_KEPT_PROFILES:
            del kept[next(iter(kept))]
        self.save()
        self.show(station)

    def cleared(self, station: Station, criteria: dict[str, Any]) -> None:
        """A station cleared profiles: forget those the criteria match."""
        kept = self.profiles.get(station.cp_id, {})
        for pid, item in list(kept.items()):
            if criteria.get("all"):
                del kept[pid]
                continue
            if "profile_id" in criteria and int(pid) != criteria["profile_id"]:
                continue
            if "evse_id" in criteria and item["evse_id"] != criteria["evse_id"]:
                continue
            if "purpose" in criteria and item["purpose"] != PURPOSES[criteria["purpose"]]:
                continue
            if "stack_level" in criteria and item["stack_level"] != criteria["stack_level"]:
                continue
            del kept[pid]
        self.save()
        self.show(station)

    def cap(self, station: Station, evse: int, unit: str) -> float | None:
        """The lowest limit in force now, in unit, of the station-wide maximum and the
        transaction defaults (of the EVSE, or of all) the hub set on a station."""
        now = station.now()
        lowest: float | None = None
        for item in self.profiles.get(station.cp_id, {}).values():
            if item["purpose"] == PURPOSE_TX or item["evse_id"] not in (0, evse):
                continue
            body = item["payload"].get("chargingProfile") or item["payload"]["csChargingProfiles"]
            schedule = body["chargingSchedule"]
            schedule = schedule[0] if isinstance(schedule, list) else schedule
            if schedule["chargingRateUnit"] != unit:
                continue
            start = now
            if schedule.get("startSchedule"):
                start = datetime.fromisoformat(schedule["startSchedule"]).timestamp()
            if body.get("validTo") and datetime.fromisoformat(body["validTo"]).timestamp() <= now:
                continue
            offset = now - start
            if body.get("chargingProfileKind") == "Recurring" and offset >= 0:
                offset %= 7 * 86400 if body.get("recurrencyKind") == "Weekly" else 86400
            limit = _limit_at(schedule, offset)
            if limit is not None and (lowest is None or limit < lowest):
                lowest = limit
        return lowest

    def tx_schedule(self, station: Station, evse: int) -> dict[str, Any] | None:
        """The schedule of the newest TxProfile the hub set on a port, if any."""
        found: dict[str, Any] | None = None
        for item in self.profiles.get(station.cp_id, {}).values():
            if item["evse_id"] == evse and item["purpose"] == PURPOSE_TX:
                found = item
        if found is None:
            return None
        body = found["payload"].get("chargingProfile") or found["payload"]["csChargingProfiles"]
        schedule = body["chargingSchedule"]
        return dict(schedule[0] if isinstance(schedule, list) else schedule)


DATA_SMART_CHARGING: Final[HubKey[SmartCharging]] = HubKey("ocpp.smart_charging")


def _state(station: Station) -> SmartCharging:
    found = station.hub.data.get(DATA_SMART_CHARGING)
    if found is None:
        found = station.hub.data[DATA_SMART_CHARGING] = SmartCharging(station.hub)
    return found


async def set_profile(station: Station, data: dict[str, Any]) -> Any:
    """Check a profile, send it, remember it if accepted; return the station's status."""
    profile = checked_profile(station, data)
    payload = profile_payload(station, profile)
    status = answer_status(await station.call("SetChargingProfile", payload))
    if status == "Accepted":
        _state(station).accepted(station, profile, payload)
    return status


async def set_current_limit(station: Station, limit: float, connector_id: int | None) -> Any:
    """charger.set_current_limit: an Absolute profile from now, of the station (its maximum)
    or of one connector (the default for its transactions), with startSchedule, validFrom,
    validTo and duration (TC_K_01, TC_K_03); set again, it replaces itself (same id)."""
    number = connector_id or 0
    return await set_profile(
        station,
        {
            "evse_id": number,
            "profile_id": CURRENT_LIMIT_PROFILE_BASE + number,
            "stack_level": 0,
            "purpose": PURPOSE_TX_DEFAULT if number else PURPOSE_MAX,
            "kind": "Absolute",
            "rate_unit": "A",
            "duration": CURRENT_LIMIT_HORIZON,
            "periods": [{"start_period": 0, "limit": min(float(limit), MAX_LIMIT["A"])}],
        },
    )


def _limit_at(schedule: dict[str, Any], offset: float) -> float | None:
    """A schedule's limit offset seconds after its start (None: outside it)."""
    duration = schedule.get("duration")
    if offset < 0 or (duration is not None and offset >= duration):
        return None
    limit = None
    for period in schedule["chargingSchedulePeriod"]:
        if period["startPeriod"] <= offset:
            limit = float(period["limit"])
    return limit


def _within(station: Station, ev: dict[str, Any], time_base: float, ours: dict[str, Any]) -> bool:
    """Whether the EV's schedule stays within the hub's (K15.FR.11): at the start of each of
    the EV's periods, and at each of the hub's changes while the EV's period lasts."""
    if ev["chargingRateUnit"] != ours["chargingRateUnit"]:
        return True  # not comparable without the EV's voltage: the station checked it
    start = time_base
    if ours.get("startSchedule"):
        start = datetime.fromisoformat(ours["startSchedule"]).timestamp()
    ev_periods = ev["chargingSchedulePeriod"]
    moments = {float(p["startPeriod"]) + time_base for p in ev_periods}
    moments |= {float(p["startPeriod"]) + start for p in ours["chargingSchedulePeriod"]}
    for moment in sorted(moments):
        ev_limit = _limit_at(ev, moment - time_base)
        hub_limit = _limit_at(ours, moment - start)
        if ev_limit is not None and hub_limit is not None and ev_limit > hub_limit + 1e-6:
            return False
    return True


# Inbound messages (2.0.1) ----------------------------------------------------------------


async def on_report_charging_profiles(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    evse = station._port_number("evseId", payload["evseId"])
    station._touch(context=ctx)
    source = payload["chargingLimitSource"]
    items = [
        {"evse_id": evse, "charging_limit_source": source, "profile": profile}
        for profile in payload["chargingProfile"]
    ]
    tbc = bool(payload.get("tbc", False))
    reports(station.hub).feed(station.cp_id, payload["requestId"], items, tbc)
    station.hub.bus.fire(
        "ocpp_charging_profiles_report",
        {
            "charge_point_id": station.cp_id,
            "request_id": payload["requestId"],
            "evse_id": evse,
            "charging_limit_source": source,
            "tbc": tbc,
            "profiles": payload["chargingProfile"],
        },
        ctx,
    )
    return {}


async def on_notify_charging_limit(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    evse = payload.get("evseId")
    if evse is not None:
        station._port_number("evseId", evse)
    station._touch(context=ctx)
    limit = payload["chargingLimit"]
    data = {
        "charge_point_id": station.cp_id,
        "evse_id": evse,
        "charging_limit_source": limit["chargingLimitSource"],
        "grid_critical": limit.get("isGridCritical", False),
        "schedule": payload.get("chargingSchedule"),
    }
    port_entities(station, PROFILE_ENTITIES, 0).write(
        station.hub,
        "charging_limit",
        limit["chargingLimitSource"],
        ctx,
        {key: value for key, value in data.items() if key != "charge_point_id"},
    )
    station.hub.bus.fire("ocpp_charging_limit", data, ctx)
    return {}


async def on_cleared_charging_limit(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    evse = payload.get("evseId")
    if evse is not None:
        station._port_number("evseId", evse)
    station._touch(context=ctx)
    port_entities(station, PROFILE_ENTITIES, 0).write(station.hub, "charging_limit", "none", ctx)
    station.hub.bus.fire(
        "ocpp_charging_limit_cleared",
        {
            "charge_point_id": station.cp_id,
            "evse_id": evse,
            "charging_limit_source": payload["chargingLimitSource"],
        },
        ctx,
    )
    return {}


PHASES: Final = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3}


def ev_plan(station: Station, evse: int, needs: dict[str, Any]) -> dict[str, Any] | None:
    """The TxProfile (service form) the hub sets for an EV's charging needs (K15): one
    period at the EV's maximum, within the station maximum and the transaction defaults the
    hub set, from now until the EV's departure (or for a day). None when the EVSE has no
    transaction or the needs give no maximum the hub can use."""
    port = station.ports.get(evse)
    if port is None or port.transaction is None:
        return None
    transfer = needs.get("requestedEnergyTransfer")
    ac = needs.get("acChargingParameters")
    dc = needs.get("dcChargingParameters")
    period: dict[str, Any] = {"start_period": 0}
    if transfer in PHASES and isinstance(ac, dict):
        unit, most = "A", ac.get("evMaxCurrent")
        period["number_phases"] = PHASES[transfer]
    elif transfer == "DC" and isinstance(dc, dict):
        unit, most = (
            ("W", dc.get("evMaxPower")) if "evMaxPower" in dc else ("A", dc.get("evMaxCurrent"))
        )
    else:
        return None
    if not isinstance(most, int | float) or isinstance(most, bool) or most <= 0:
        return None
    limit = min(float(most), MAX_LIMIT[unit])
    cap = _state(station).cap(station, evse, unit)
    if cap is not None:
        limit = min(limit, cap)
    period["limit"] = limit
    duration = EV_PROFILE_DURATION
    departure = needs.get("departureTime")
    if isinstance(departure, str):
        try:
            until = datetime.fromisoformat(departure).timestamp() - station.now()
        except ValueError:
            until = 0
        if 60 <= until < EV_PROFILE_DURATION:
            duration = int(until)
    return {
        "evse_id": evse,
        "profile_id": EV_PROFILE_BASE + evse,
        "stack_level": 0,
        "purpose": PURPOSE_TX,
        "kind": "Absolute",
        "rate_unit": unit,
        "duration": duration,
        "transaction_id": str(port.transaction.ocpp_id),
        "periods": [period],
    }


async def send_ev_plan(station: Station, evse: int, plan: dict[str, Any], ctx: Context) -> None:
    """Send the EV's TxProfile after the answer to its needs; a failure is logged and fired."""
    try:
        status = await set_profile(station, dict(plan))
    except HubError as err:
        _LOGGER.warning("%s: the EV's charging profile was not set: %s", station.cp_id, err)
        status = "Failed"
    station.hub.bus.fire(
        "ocpp_ev_charging_profile",
        {
            "charge_point_id": station.cp_id,
            "evse_id": evse,
            "profile_id": plan["profile_id"],
            "limit": plan["periods"][0]["limit"],
            "rate_unit": plan["rate_unit"],
            "status": status,
        },
        ctx,
    )


async def on_notify_ev_charging_needs(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    evse = station._port_number("evseId", payload["evseId"])
    station._touch(context=ctx)
    state = _state(station)
    status = state.ev_needs_status
    plan = None
    if status == "Processing":
        # K15.FR.05: Processing, then the hub's schedule; none without a transaction.
        plan = ev_plan(station, evse, payload["chargingNeeds"])
        if plan is None:
            status = "Rejected"
    station.hub.bus.fire(
        "ocpp_ev_charging_needs",
        {
            "charge_point_id": station.cp_id,
            "evse_id": evse,
            "charging_needs": payload["chargingNeeds"],
            "max_schedule_tuples": payload.get("maxScheduleTuples"),
            "status": status,
        },
        ctx,
    )
    if plan is not None:
        key = (station.cp_id, evse)
        if state.ev_plans.get(key, {}).get("transaction_id") != plan["transaction_id"]:
            state.renegotiations.pop(key, None)
        state.ev_plans[key] = plan
        station.hub.create_task(
            send_ev_plan(station, evse, plan, ctx), f"ocpp EV profile {station.cp_id}/{evse}"
        )
    return {"status": status}


async def on_notify_ev_charging_schedule(
    station: Station, payload: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    evse = station._port_number("evseId", payload["evseId"])
    time_base = station._charger_time("timeBase", payload["timeBase"])
    station._touch(context=ctx)
    ours = _state(station).tx_schedule(station, evse)
    schedule = payload["chargingSchedule"]
    status = "Accepted"
    if ours is not None and not _within(station, schedule, time_base, ours):
        status = "Rejected"
        # The EV went beyond the hub's schedule for its needs: the hub sends it again
        # (renegotiation, K16), a few times a transaction at most.
        state = _state(station)
        key = (station.cp_id, evse)
        plan = state.ev_plans.get(key)
        port = station.ports.get(evse)
        running = port.transaction if port is not None else None
        if (
            plan is not None
            and running is not None
            and plan["transaction_id"] == str(running.ocpp_id)
            and state.renegotiations.get(key, 0) < MAX_RENEGOTIATIONS
        ):
            state.renegotiations[key] = state.renegotiations.get(key, 0) + 1
            station.hub.create_task(
                send_ev_plan(station, evse, plan, ctx), f"ocpp EV profile {station.cp_id}/{evse}"
            )
    station.hub.bus.fire(
        "ocpp_ev_charging_schedule",
        {
            "charge_point_id": station.cp_id,
            "evse_id": evse,
            "time_base": payload["timeBase"],
            "schedule": schedule,
            "status": status,
        },
        ctx,
    )
    return {"status": status}


HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {
    "ReportChargingProfiles": on_report_charging_profiles,
    "NotifyChargingLimit": on_notify_charging_limit,
    "ClearedChargingLimit": on_cleared_charging_limit,
    "NotifyEVChargingNeeds": on_notify_ev_charging_needs,
    "NotifyEVChargingSchedule": on_notify_ev_charging_schedule,
}


# Services --------------------------------------------------------------------------------


def _clear_criteria(data: dict[str, Any]) -> dict[str, Any]:
    """ClearChargingProfile names what it clears (K10.FR.02): an id, or criteria, or all."""
    criteria = {k: data[k] for k in ("evse_id", "purpose", "stack_level") if k in data}
    if data.get("all"):
        if criteria or "profile_id" in data:
            raise vol.Invalid("all: true clears every profile; give no other criterion")
        return data
    if "profile_id" in data and criteria:
        raise vol.Invalid("give profile_id or criteria (evse_id, purpose, stack_level), not both")
    if "profile_id" not in data and not criteria:
        raise vol.Invalid(
            "name what to clear: profile_id, or evse_id / purpose / stack_level, or all: true"
        )
    return data


def _get_criteria(data: dict[str, Any]) -> dict[str, Any]:
    """GetChargingProfiles names what it asks for (K09.FR.03)."""
    if not any(k in data for k in ("profile_ids", "purpose", "stack_level", "limit_source")):
        raise vol.Invalid("name a criterion: profile_ids, purpose, stack_level or limit_source")
    if "profile_ids" in data and any(k in data for k in ("purpose", "stack_level", "limit_source")):
        raise vol.Invalid("profile_ids names the profiles: give no other criterion with it")
    return data


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the smart charging services."""
    hub = ctx.hub
    state = hub.data.get(DATA_SMART_CHARGING)
    if state is None:
        state = hub.data[DATA_SMART_CHARGING] = SmartCharging(hub)
    state.ev_needs_status = system.config.get(CONF_EV_CHARGING_NEEDS, "Rejected")
    await state.load()

    def unload() -> None:
        hub.data.pop(DATA_SMART_CHARGING, None)

    ctx.on_unload(unload)

    def session_ended(event: Event) -> None:
        """A TxProfile ends with its transaction: the station drops it, so does the hub."""
        cp_id = event.data.get("charge_point_id")
        station = system.stations.get(cp_id) if isinstance(cp_id, str) else None
        transaction = event.data.get("transaction_id")
        for key, plan in list(state.ev_plans.items()):
            if key[0] == cp_id and plan["transaction_id"] == str(transaction):
                del state.ev_plans[key]
                state.renegotiations.pop(key, None)
        kept = state.profiles.get(cp_id or "", {})
        ended = [
            pid
            for pid, item in kept.items()
            if item["purpose"] == PURPOSE_TX and item.get("transaction_id") == str(transaction)
        ]
        if station is None or not ended:
            return
        for pid in ended:
            del kept[pid]
        state.save()
        state.show(station, event.context)

    ctx.listen(
        EVENT_CHARGER,
        session_ended,
        lambda data: (
            data.get("kind") == ChargerEventKind.SESSION_ENDED
            and data.get("charge_point_id") in state.profiles
        ),
    )

    async def set_charging_profile(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        data = {k: v for k, v in call.data.items() if k not in TARGET_KEYS}
        return await set_profile(station, data)

    async def clear_charging_profile(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        data = call.data
        payload: dict[str, Any] = {}
        if "evse_id" in data:
            check_port(station, data["evse_id"])
        purpose = PURPOSES.get(data.get("purpose", ""), data.get("purpose"))
        if is_201(station):
            if "profile_id" in data:
                payload["chargingProfileId"] = data["profile_id"]
            elif not data.get("all"):
                criteria: dict[str, Any] = {}
                if "evse_id" in data:
                    criteria["evseId"] = data["evse_id"]
                if purpose is not None:
                    criteria["chargingProfilePurpose"] = purpose
                if "stack_level" in data:
                    criteria["stackLevel"] = data["stack_level"]
                payload["chargingProfileCriteria"] = criteria
        else:
            for key, name in (
                ("profile_id", "id"),
                ("evse_id", "connectorId"),
                ("stack_level", "stackLevel"),
            ):
                if key in data:
                    payload[name] = data[key]
            if purpose is not None:
                payload["chargingProfilePurpose"] = PURPOSE_16.get(purpose, purpose)
        status = answer_status(await station.call("ClearChargingProfile", payload))
        if status == "Accepted":
            state.cleared(station, dict(data))
        return status

    async def get_composite_schedule(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        evse = check_port(station, call.data["evse_id"])
        key = "evseId" if is_201(station) else "connectorId"
        payload: dict[str, Any] = {key: evse, "duration": call.data["duration"]}
        if "rate_unit" in call.data:
            payload["chargingRateUnit"] = call.data["rate_unit"]
        return await station.call("GetCompositeSchedule", payload)

    async def get_charging_profiles(call: ServiceCall) -> Any:
        station = station_for(hub, call)
        needs_201(station, "GetChargingProfiles")
        data = call.data
        criterion: dict[str, Any] = {}
        for key, name in (
            ("profile_ids", "chargingProfileId"),
            ("purpose", "chargingProfilePurpose"),
            ("stack_level", "stackLevel"),
            ("limit_source", "chargingLimitSource"),
        ):
            if key in data:
                criterion[name] = data[key]
        collector = reports(hub)
        request_id = collector.next_id()
        payload: dict[str, Any] = {"requestId": request_id, "chargingProfile": criterion}
        if "evse_id" in data:
            payload["evseId"] = check_port(station, data["evse_id"])
        answer = await collector.request(station, "GetChargingProfiles", payload, request_id)
        return {
            "status": answer["status"],
            "request_id": request_id,
            "profiles": answer["items"],
            "complete": answer["complete"],
        }

    async def start_transaction_with_profile(call: ServiceCall) -> Any:
        """K05 / 1.6 TC_059: a remote start carrying the transaction's TxProfile (no
        transactionId: the transaction does not exist yet; F01.FR.12)."""
        station = station_for(hub, call)
        data = {k: v for k, v in call.data.items() if k not in TARGET_KEYS}
        evse = data.pop("evse_id", None)
        token = data.pop("id_token")
        token_type = data.pop("id_token_type")
        remote_start_id = data.pop("remote_start_id", None)
        if evse is not None:
            check_port(station, evse)
            if evse == 0:
                raise ServiceValidationError("evse_id names an EVSE (1..); omit it for any")
        profile = checked_profile(station, {**data, "purpose": PURPOSE_TX, "evse_id": evse or 1})
        profile.pop("transaction_id", None)
        sent = profile_payload(station, profile)
        if is_201(station):
            payload: dict[str, Any] = {
                "idToken": {"idToken": token, "type": token_type},
                "remoteStartId": remote_start_id or reports(hub).next_id(),
                "chargingProfile": sent["chargingProfile"],
            }
            if evse is not None:
                payload["evseId"] = evse
            action = "RequestStartTransaction"
        else:
            if len(token) > 20:
                raise ServiceValidationError("an OCPP 1.6 idTag has at most 20 characters")
            payload = {"idTag": token, "chargingProfile": sent["csChargingProfiles"]}
            if evse is not None:
                payload["connectorId"] = evse
            action = "RemoteStartTransaction"
        answer = await station.call(action, payload)
        result = {"status": answer_status(answer)}
        if "remoteStartId" in payload:
            result["remote_start_id"] = payload["remoteStartId"]
        if isinstance(answer, dict) and answer.get("transactionId"):
            result["transaction_id"] = answer["transactionId"]
        return result

    start_keys = {
        k: v
        for k, v in PROFILE_KEYS.items()
        if str(k) not in ("evse_id", "purpose", "transaction_id", "stack_level", "kind")
    }
    ctx.register_service(
        "start_transaction_with_profile",
        start_transaction_with_profile,
        vol.Schema(
            {
                **TARGET,
                **start_keys,
                vol.Optional("evse_id"): vol.All(int, vol.Range(min=0, max=MAX_EVSE)),
                vol.Required("id_token"): vol.All(str, vol.Length(min=1, max=36)),
                vol.Optional("id_token_type", default="Central"): vol.In(ID_TOKEN_TYPES),
                vol.Optional("remote_start_id"): vol.All(int, vol.Range(min=1, max=INT32_MAX)),
                vol.Optional("stack_level", default=0): vol.All(
                    int, vol.Range(min=0, max=MAX_STACK_LEVEL)
                ),
                vol.Optional("kind", default="Relative"): vol.In(KINDS),
            }
        ),
        # Starting a session is an operator's daily job (charger.start_charging); the
        # profile only limits that session.
        role=Role.OPERATOR,
        description="Start a transaction remotely with its TxProfile (no transactionId).",
    )

    evse = vol.All(int, vol.Range(min=0, max=MAX_EVSE))
    register_station_services(
        ctx,
        {
            "set_charging_profile": (set_charging_profile, PROFILE_KEYS),
        },
    )
    ctx.register_service(
        "clear_charging_profile",
        clear_charging_profile,
        vol.Schema(
            vol.All(
                {
                    **TARGET,
                    vol.Optional("profile_id"): vol.All(int, vol.Range(min=1, max=INT32_MAX)),
                    vol.Optional("evse_id"): evse,
                    vol.Optional("purpose"): vol.In(list(PURPOSES)),
                    vol.Optional("stack_level"): vol.All(
                        int, vol.Range(min=0, max=MAX_STACK_LEVEL)
                    ),
                    vol.Optional("all"): vol.All(bool, True),
                },
                _clear_criteria,
            )
        ),
        role=Role.ADMIN,
        description="Clear charging profiles by id, by criteria, or all of them (all: true).",
    )
    ctx.register_service(
        "get_charging_profiles",
        get_charging_profiles,
        vol.Schema(
            vol.All(
                {
                    **TARGET,
                    vol.Optional("evse_id"): evse,
                    vol.Optional("profile_ids"): vol.All(
                        [vol.All(int, vol.Range(min=0, max=INT32_MAX))],
                        vol.Length(min=1, max=100),
                    ),
                    vol.Optional("purpose"): vol.In(ALL_PURPOSES_201),
                    vol.Optional("stack_level"): vol.All(
                        int, vol.Range(min=0, max=MAX_STACK_LEVEL)
                    ),
                    vol.Optional("limit_source"): vol.All(
                        [vol.In(LIMIT_SOURCES)], vol.Length(min=1, max=4), vol.Unique()
                    ),
                },
                _get_criteria,
            )
        ),
        role=Role.VIEWER,
        description="Ask a 2.0.1 station for its charging profiles (ReportChargingProfiles).",
    )
    register_station_services(
        ctx,
        {
            "get_composite_schedule": (
                get_composite_schedule,
                {
                    vol.Required("evse_id"): evse,
                    vol.Required("duration"): vol.All(int, vol.Range(min=1, max=MAX_DURATION)),
                    vol.Optional("rate_unit"): vol.In(["A", "W"]),
                },
            ),
        },
        role=Role.VIEWER,
    )
