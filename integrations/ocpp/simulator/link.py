"""What a simulated charger needs of its OCPP link, and what the per-version links share.

A link is one websocket connection's OCPP: v16.V16Link or v201.V201Link. It turns the
central system's calls into the charger's methods and the charger's doings into calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar, cast

from ocpp.routing import on  # type: ignore[import-untyped, unused-ignore]

from .model import Connector


class _FrameLogger(logging.LoggerAdapter[logging.Logger]):
    """The ocpp package's logger for a simulated charger's frames: INFO becomes DEBUG.

    The ocpp package logs every frame in and out at INFO; three simulated chargers made
    three quarters of a running hub's log of them. Warnings and errors stay as they are.
    """

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at level, INFO lowered to DEBUG."""
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


# Every OCPP frame in and out, at DEBUG (`evhub run --log-level debug` shows them).
WIRE_LOGGER: Final = _FrameLogger(logging.getLogger(f"{__package__}.wire"))
# How long the ocpp ChargePoint waits for the central system's answer, in real seconds.
RESPONSE_TIMEOUT: Final = 30

_F = TypeVar("_F", bound=Callable[..., Any])


def on_call(action: str) -> Callable[[_F], _F]:
    """Typed ``ocpp.routing.on``."""
    return cast("Callable[[_F], _F]", on(action))


class Link(Protocol):
    """The OCPP calls a charger makes, whatever the version."""

    async def start(self) -> None:
        """Read and answer the central system's messages until the socket closes."""

    async def send_boot(self, reason: str) -> tuple[str, int]:
        """Send BootNotification; return its status and heartbeat interval."""

    async def send_heartbeat(self) -> None:
        """Send Heartbeat."""

    async def send_station_status(self, operative: bool) -> None:
        """Report the station's own availability, where the version has one (1.6: connector 0)."""

    async def send_status(self, connector: Connector, force: bool = False) -> None:
        """Report the connector's status unless it is the one last reported (or force)."""

    async def start_transaction(self, connector: Connector, trigger: str) -> bool:
        """Start the transaction of the connector's session; return whether it is authorized."""

    async def send_meter_values(self, connector: Connector, context: str) -> None:
        """Send the connector's meter values."""

    async def stop_transaction(self, connector: Connector, reason: str) -> None:
        """Stop the transaction of the connector's session (reason in 1.6 words)."""

    async def send_firmware_status(self, status: str, request_id: int | None) -> None:
        """Report a firmware update's progress."""

    async def send_upload_status(
        self, status: str, request_id: int | None, diagnostics: bool
    ) -> None:
        """Report a diagnostics or log upload's progress."""

    async def send_security_event(self, event_type: str, tech_info: str) -> None:
        """Send SecurityEventNotification."""

    async def send_problem(self, connector: Connector, code: str, *, active: bool) -> None:
        """Report a connector fault or its end, where the version says more than the status."""
