"""The simulated charger's side of the hub's reservation feature (features/reservation.py).

Mixins of the per-version links (v16.V16Link, v201.V201Link): their ``@on_call`` methods
answer the central system's calls; ``self.sim`` is the SimulatedChargePoint.

A reservation takes an Available connector (the named one, or in 2.0.1 the first free one):
it turns Reserved (StatusNotification) until it is cancelled or expires; at expiry it is
Available again and, in 2.0.1, ReservationStatusUpdate says Expired.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ocpp.v16 import call_result as v16_result  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from integrations.ocpp.simulator.link import on_call
from integrations.ocpp.simulator.model import STATUS_AVAILABLE

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint
    from integrations.ocpp.simulator.model import Connector

STATUS_RESERVED: Final = "Reserved"


@dataclass(slots=True)
class _Reservation:
    id: int
    connector: Connector
    id_tag: str
    expiry: datetime


# Each simulated charger's reservations, by id: they outlive its connections.
_RESERVATIONS: weakref.WeakKeyDictionary[SimulatedChargePoint, dict[int, _Reservation]] = (
    weakref.WeakKeyDictionary()
)


def _of(sim: SimulatedChargePoint) -> dict[int, _Reservation]:
    return _RESERVATIONS.setdefault(sim, {})


def _expiry(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Reserving:
    sim: SimulatedChargePoint
    send_status: Callable[..., Coroutine[Any, Any, None]]

    def _reserve_now(self, rid: int, number: int | None, id_tag: str, expiry_text: str) -> str:
        sim = self.sim
        expiry = _expiry(expiry_text)
        if expiry is None or expiry <= datetime.now(UTC):
            return "Rejected"
        reservations = _of(sim)
        if rid in reservations:  # the same id again: replaced
            self._release(reservations.pop(rid))
        connectors = sim.targets(number)
        if connectors is None:
            return "Rejected"
        free = [c for c in connectors if c.status == STATUS_AVAILABLE and c.session is None]
        if not free:
            statuses = {c.status for c in connectors}
            if "Faulted" in statuses:
                return "Faulted"
            if "Unavailable" in statuses and len(statuses) == 1:
                return "Unavailable"
            return "Occupied"
        connector = free[0]
        connector.status = STATUS_RESERVED
        reservation = _Reservation(rid, connector, id_tag, expiry)
        reservations[rid] = reservation
        sim.later(lambda: self.send_status(connector))
        sim.later(lambda: self._expire(reservation))
        return "Accepted"

    def _release(self, reservation: _Reservation) -> None:
        connector = reservation.connector
        if connector.status == STATUS_RESERVED:
            connector.status = STATUS_AVAILABLE
            self.sim.later(lambda: self.send_status(connector))

    def _cancel(self, rid: int) -> bool:
        reservation = _of(self.sim).pop(rid, None)
        if reservation is None:
            return False
        self._release(reservation)
        return True

    async def _expire(self, reservation: _Reservation) -> None:
        wait = (reservation.expiry - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await self.sim._sleep(wait * self.sim.speed)  # the expiry is wall-clock time
        if _of(self.sim).get(reservation.id) is not reservation:
            return  # cancelled or replaced meanwhile
        del _of(self.sim)[reservation.id]
        connector = reservation.connector
        if connector.status == STATUS_RESERVED:
            connector.status = STATUS_AVAILABLE
            await self.send_status(connector)
        await self._expired(reservation.id)

    async def _expired(self, rid: int) -> None:
        """Tell the central system, where the version can."""


class Reservation16(_Reserving):
    """OCPP 1.6."""

    @on_call("ReserveNow")
    def on_reserve_now(
        self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int, **kwargs: Any
    ) -> Any:
        if connector_id == 0:
            return v16_result.ReserveNow(status="Rejected")  # ReserveConnectorZeroSupported off
        status = self._reserve_now(reservation_id, connector_id, id_tag, expiry_date)
        return v16_result.ReserveNow(status=status)

    @on_call("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int, **kwargs: Any) -> Any:
        accepted = self._cancel(reservation_id)
        return v16_result.CancelReservation(status="Accepted" if accepted else "Rejected")


class Reservation201(_Reserving):
    """OCPP 2.0.1."""

    # The ocpp ChargePoint's, later in the link's MRO.
    call: Callable[..., Awaitable[Any]]

    @on_call("ReserveNow")
    def on_reserve_now(
        self,
        id: int,
        expiry_date_time: str,
        id_token: dict[str, Any],
        evse_id: int | None = None,
        **kwargs: Any,
    ) -> Any:
        status = self._reserve_now(id, evse_id, str(id_token["id_token"]), expiry_date_time)
        return v201_result.ReserveNow(status=status)

    @on_call("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int, **kwargs: Any) -> Any:
        accepted = self._cancel(reservation_id)
        return v201_result.CancelReservation(status="Accepted" if accepted else "Rejected")

    async def _expired(self, rid: int) -> None:
        await self.call(
            v201_call.ReservationStatusUpdate(
                reservation_id=rid, reservation_update_status="Expired"
            ),
            suppress=False,
        )
