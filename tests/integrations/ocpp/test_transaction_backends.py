"""The OCPP integration keeps its transactions where transactions_db_url says (PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import voluptuous as vol

from integrations.ocpp import DATA_SYSTEM
from integrations.ocpp.transactions import DB_FILENAME, valid_db_url
from tests.integrations.ocpp.conftest import Connect, HubFactory, ws_url

CONFIG = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
authorize_unknown_id_tags: true
chargers:
  - id: CP-1
transactions_db_url: "{url}"
"""


def iso(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


async def test_transactions_go_to_postgresql_and_come_back_after_a_restart(
    ocpp_hub: HubFactory, connect: Connect, tmp_path: Path, pg_schema: str
) -> None:
    hub = await ocpp_hub(CONFIG.format(url=pg_schema))
    cp = await connect(ws_url(hub, "CP-1"))
    await cp.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    started = await cp.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG", "meterStart": 1000, "timestamp": iso(minutes=-20)},
    )
    # Accepted means committed: the row is there for any other connection to see.
    pg = await asyncpg.connect(pg_schema)
    try:
        rows = await pg.fetch("SELECT id, charge_point_id, stopped_at FROM transactions")
    finally:
        await pg.close()
    assert [tuple(row) for row in rows] == [(started["transactionId"], "CP-1", None)]
    assert not (tmp_path / DB_FILENAME).exists()
    await cp.close()
    await hub.stop()

    hub = await ocpp_hub(CONFIG.format(url=pg_schema), config_dir=tmp_path)
    station = hub.data[DATA_SYSTEM].stations["CP-1"]
    assert station.ports[1].transaction.ocpp_id == str(started["transactionId"])
    cp = await connect(ws_url(hub, "CP-1"))
    answer = await cp.call(
        "StopTransaction",
        {"transactionId": started["transactionId"], "meterStop": 4500, "timestamp": iso()},
    )
    assert answer.get("idTagInfo", {"status": "Accepted"})["status"] == "Accepted"
    stored = await hub.data[DATA_SYSTEM].transactions.get(started["transactionId"])
    assert stored.energy_wh == 3500


def test_transactions_db_url_is_checked() -> None:
    assert valid_db_url("sqlite:///tx.db") == "sqlite:///tx.db"
    assert valid_db_url("postgresql://u@h/db") == "postgresql://u@h/db"
    for bad in ("sqlite:///", "mysql://h/db", "tx.db"):
        with pytest.raises(vol.Invalid, match="unsupported transactions_db_url"):
            valid_db_url(bad)
