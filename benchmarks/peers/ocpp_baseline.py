"""The baseline central system: the `ocpp` package's documented minimal server, OCPP 1.6.

As in the package's README and "Server side usage" page: ``websockets.serve(on_connect, host,
port, subprotocols=["ocpp1.6"])``, one ``ChargePoint(ocpp.v16.ChargePoint)`` per connection,
handlers registered with ``@on(Action....)``. Added to the documented BootNotification handler:
Heartbeat, StatusNotification and MeterValues, which answer and do nothing else. The package's
default schema validation (jsonschema, in the default executor) stays on.

One departure, in the baseline's favour: the README sets logging to INFO, which makes the
package log every message; here the level stays at WARNING.

    .venv/bin/python benchmarks/peers/ocpp_baseline.py --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as cp
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, RegistrationStatus

logging.basicConfig(level=logging.WARNING)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ChargePoint(cp):
    """A charge point as the minimal central system sees it."""

    @on(Action.boot_notification)
    def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=_now(), interval=3600, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        return call_result.MeterValues()


async def on_connect(connection: websockets.ServerConnection) -> None:
    """For every charge point that connects, make a ChargePoint and listen to it."""
    if connection.subprotocol is None:
        logging.warning("client offered no subprotocol; closing")
        await connection.close()
        return
    charge_point_id = connection.request.path.strip("/").rsplit("/", 1)[-1]
    charge_point = ChargePoint(charge_point_id, connection)
    with contextlib.suppress(websockets.ConnectionClosed):
        await charge_point.start()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with websockets.serve(
        on_connect, args.host, args.port, subprotocols=["ocpp1.6"], backlog=4096
    ):
        print(f"baseline listening on ws://{args.host}:{args.port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
