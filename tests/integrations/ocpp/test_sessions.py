"""Sessions across restarts and lost messages, seen in the recorder's rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.charger import EVENT_CHARGER
from hub.core import Hub
from integrations.ocpp import DATA_SYSTEM
from integrations.recorder import get_recorder
from tests.integrations.ocpp.conftest import Connect, HubFactory, RawChargePoint, ws_url

OPEN = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
heartbeat_interval: 30
call_timeout: 2
authorize_unknown_id_tags: true
chargers:
  - id: CP-1
    name: Bay 1
"""


def iso(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def recorded(hub: Hub) -> list[dict[str, Any]]:
    recorder = get_recorder(hub)
    await recorder.flush()
    return await recorder.sessions(time.time() - 86400, time.time() + 86400)


async def boot201(hub: Hub, connect: Connect) -> RawChargePoint:
    cp = await connect(ws_url(hub, "CP-1"), protocol="ocpp2.0.1")
    await cp.call(
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"vendorName": "V", "model": "M"}},
    )
    return cp


def event201(tx: str, kind: str, seq: int, when: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventType": kind,
        "timestamp": when,
        "triggerReason": "Authorized" if kind == "Started" else "StopAuthorized",
        "seqNo": seq,
        "transactionInfo": {"transactionId": tx, **extra.pop("info", {})},
        "evse": {"id": 1, "connectorId": 1},
        **extra,
    }


async def test_a_new_201_transaction_ends_the_one_left_open(
    ocpp_hub: HubFactory, connect: Connect
) -> None:
    hub = await ocpp_hub(OPEN)
    ended: list[dict[str, Any]] = []
    hub.bus.listen(
        EVENT_CHARGER,
        lambda event: ended.append(dict(event.data)),
        lambda data: data["kind"] == "session_ended",
    )
    cp = await boot201(hub, connect)
    first, second = iso(minutes=-30), iso(minutes=-5)
    await cp.call("TransactionEvent", event201("OLD", "Started", 0, first))
    # Power lost: OLD's Ended is still in the charger's queue when NEW starts.
    await cp.call("TransactionEvent", event201("NEW", "Started", 0, second))
    station = hub.data[DATA_SYSTEM].stations["CP-1"]
    assert station.ports[1].transaction.ocpp_id == "NEW"
    [old] = ended
    assert old["transaction_id"] == "OLD"
    assert old["stopped_at"] == ts(second)
    rows = {row["transaction_id"]: row for row in await recorded(hub)}
    assert rows["OLD"]["stopped_at"] == ts(second)
    assert rows["NEW"]["stopped_at"] is None

    # A late Updated of OLD does not take the port back.
    await cp.call(
        "TransactionEvent",
        {**event201("OLD", "Updated", 1, iso(minutes=-20)), "triggerReason": "MeterValuePeriodic"},
    )
    assert station.ports[1].transaction.ocpp_id == "NEW"
    # The charger's own Ended for OLD, from its queue, gives the real end.
    real_end = iso(minutes=-15)
    await cp.call(
        "TransactionEvent",
        event201("OLD", "Ended", 2, real_end, info={"stoppedReason": "PowerLoss"}),
    )
    assert station.ports[1].transaction.ocpp_id == "NEW"
    rows = {row["transaction_id"]: row for row in await recorded(hub)}
    assert rows["OLD"]["stopped_at"] == ts(real_end)
    assert rows["OLD"]["stop_reason"] == "PowerLoss"
    assert rows["NEW"]["stopped_at"] is None


async def test_a_queued_stop_after_a_restart_closes_the_session(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Path
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG", "meterStart": 1000, "timestamp": iso(minutes=-20)},
    )
    await cp.close()
    await hub.stop()

    hub = await ocpp_hub(OPEN, config_dir=tmp_path)
    station = hub.data[DATA_SYSTEM].stations["CP-1"]
    # The open session is the port's again, before the charger says anything.
    assert station.ports[1].transaction.ocpp_id == str(started["transactionId"])
    cp = await connect(ws_url(hub, "CP-1"))
    stop = iso(minutes=-2)
    # The charger's first message: the stop it queued while the hub was down.
    await cp.call(
        "StopTransaction",
        {"transactionId": started["transactionId"], "meterStop": 4500, "timestamp": stop},
    )
    [row] = await recorded(hub)
    assert row["stopped_at"] == ts(stop)
    assert row["energy_wh"] == 3500
    assert station.ports[1].transaction is None
    assert hub.states.get("sensor.bay_1_1_transaction_id").state == "unknown"


async def test_meter_values_after_a_restart_count_into_the_open_session(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Path
) -> None:
    hub = await ocpp_hub(OPEN)
    cp = await connect(ws_url(hub, "CP-1"))
    await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG", "meterStart": 1000, "timestamp": iso(minutes=-20)},
    )
    await cp.close()
    await hub.stop()
    hub = await ocpp_hub(OPEN, config_dir=tmp_path)
    cp = await connect(ws_url(hub, "CP-1"))
    await cp.call(
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": iso(), "sampledValue": [{"value": "2500"}]}],
        },
    )
    assert hub.states.get("sensor.bay_1_1_session_energy").state == "1500.0"
