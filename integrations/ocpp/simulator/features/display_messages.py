"""The simulated charger's side of the hub's display message feature (features/
display_messages.py), OCPP 2.0.1 only.

A mixin of the 2.0.1 link (v201.V201Link): the station keeps the messages it is given (at
most MAX_MESSAGES), lists them in NotifyDisplayMessages parts and clears them by id; a
message whose end time (endDateTime) has passed is gone.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ocpp.v201 import call as v201_call  # type: ignore[import-untyped, unused-ignore]
from ocpp.v201 import call_result as v201_result  # type: ignore[import-untyped, unused-ignore]

from integrations.ocpp.simulator.link import on_call

if TYPE_CHECKING:
    from integrations.ocpp.simulator.charger import SimulatedChargePoint

MAX_MESSAGES: Final = 10
# Messages per NotifyDisplayMessages: small, so that a list comes in several parts.
REPORT_PART_SIZE: Final = 2

# Each simulated charger's messages, by id: they outlive its connections.
_MESSAGES: weakref.WeakKeyDictionary[SimulatedChargePoint, dict[int, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class DisplayMessages16:
    """OCPP 1.6 has no display messages."""

    sim: SimulatedChargePoint


class DisplayMessages201:
    """OCPP 2.0.1."""

    sim: SimulatedChargePoint
    # The ocpp ChargePoint's, later in the link's MRO.
    call: Callable[..., Awaitable[Any]]

    def _messages(self) -> dict[int, dict[str, Any]]:
        """The messages still shown: those whose end time passed are dropped."""
        messages = _MESSAGES.setdefault(self.sim, {})
        now = datetime.now(UTC)
        for mid, message in list(messages.items()):
            end = _moment(message.get("end_date_time"))
            if end is not None and end <= now:
                del messages[mid]
        return messages

    @on_call("SetDisplayMessage")
    def on_set_display_message(self, message: dict[str, Any], **kwargs: Any) -> Any:
        messages = self._messages()
        if message.get("transaction_id") is not None and not any(
            c.session is not None and str(c.session.transaction_id) == message["transaction_id"]
            for c in self.sim.targets(None) or []
        ):
            return v201_result.SetDisplayMessage(status="UnknownTransaction")
        if message["message"]["format"] not in ("ASCII", "UTF8"):
            return v201_result.SetDisplayMessage(status="NotSupportedMessageFormat")
        if len(messages) >= MAX_MESSAGES and message["id"] not in messages:
            return v201_result.SetDisplayMessage(status="Rejected")
        messages[int(message["id"])] = message
        return v201_result.SetDisplayMessage(status="Accepted")

    @on_call("GetDisplayMessages")
    def on_get_display_messages(
        self,
        request_id: int,
        id: list[int] | None = None,
        priority: str | None = None,
        state: str | None = None,
        **kwargs: Any,
    ) -> Any:
        found = [
            message
            for mid, message in sorted(self._messages().items())
            if (not id or mid in id)
            and (priority is None or message["priority"] == priority)
            and (state is None or message.get("state") == state)
        ]
        if not found:
            return v201_result.GetDisplayMessages(status="Unknown")
        self.sim.later(functools.partial(self._notify_messages, request_id, found))
        return v201_result.GetDisplayMessages(status="Accepted")

    async def _notify_messages(self, request_id: int, found: list[dict[str, Any]]) -> None:
        parts = [
            found[start : start + REPORT_PART_SIZE]
            for start in range(0, len(found), REPORT_PART_SIZE)
        ]
        for index, part in enumerate(parts):
            await self.call(
                v201_call.NotifyDisplayMessages(
                    request_id=request_id, tbc=index < len(parts) - 1, message_info=part
                ),
                suppress=False,
            )

    @on_call("ClearDisplayMessage")
    def on_clear_display_message(self, id: int, **kwargs: Any) -> Any:
        found = self._messages().pop(int(id), None)
        return v201_result.ClearDisplayMessage(status="Accepted" if found else "Unknown")
