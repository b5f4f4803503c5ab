"""Sessions across restarts and lost messages, seen in the recorder's rows."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.charger import EVENT_CHARGER
from hub.core import Hub
from hub.testing import manual_clock_of
from integrations.ocpp import DATA_SYSTEM
from integrations.ocpp import ledger as ledger_module
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


async def test_the_ledger_mark_stays_while_no_transaction_changes(
    ocpp_hub: HubFactory, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle hub does not rewrite the mark every round (a commit each time), nor wake for
    it; a stored transaction makes the next round move it past the change."""
    monkeypatch.setattr(ledger_module, "MARGIN", 0.0)
    hub = await ocpp_hub(OPEN, manual_clock=True)
    system = hub.data[DATA_SYSTEM]
    ledger, store = system.ledger, system.transactions
    await asyncio.wait_for(ledger.caught_up.wait(), 10)
    caught_up_mark = ledger.mark
    assert caught_up_mark is not None
    assert await store.ledger_mark(ledger_module.MARK) == caught_up_mark
    assert ledger.idle()
    commits = store.commits
    await manual_clock_of(hub).advance(3600)  # 360 rounds of the ledger's interval
    for _ in range(3):
        await ledger.advance()
    assert store.commits == commits
    assert await store.ledger_mark(ledger_module.MARK) == caught_up_mark

    cp = await connect(ws_url(hub, "CP-1"))
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": iso()},
    )
    assert store.changed_until > caught_up_mark
    assert not ledger.idle()
    await ledger.advance()
    moved = await store.ledger_mark(ledger_module.MARK)
    assert moved == ledger.mark
    assert moved is not None
    assert moved > store.changed_until
    # Nothing changed after the mark: what a start would re-announce is empty.
    assert await store.changed_since(moved) == []
    assert ledger.idle()
    commits = store.commits
    await ledger.advance()
    assert store.commits == commits
    assert [tx.ocpp_id for _, tx in await store.changed_since(caught_up_mark)] == [
        str(started["transactionId"])
    ]
