"""Sessions survive SIGKILL: every acknowledged transaction is in the recorder after a start.

20 chargers run Start/Meter/Stop in a loop against a real `evhub run` process, which is
killed with SIGKILL several times under that load and started again. The transaction store
holds every acknowledged start and stop (it is fsync'd before the answer); the recorder,
which commits a second later, is rebuilt from it at each start (the OCPP session ledger).
At the end every acknowledged start is a row in the recorder's sessions table of evhub.db,
every acknowledged stop has closed its row, and nothing the store closed is left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from hub.bootstrap import new_hub
from integrations.ocpp import DATA_SYSTEM
from tests.hub_process import free_port, kill, open_charger, start_hub, wait_port
from tests.integrations.ocpp.conftest import RawChargePoint

CHARGERS = 20
KILLS = 3
LOAD_S = 3.0


def write_config(directory: Path, port: int) -> None:
    chargers = "".join(f"    - id: CP-{i}\n" for i in range(CHARGERS))
    directory.joinpath("configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        "ocpp:\n"
        "  listeners:\n"
        f"    - {{port: {port}, host: 127.0.0.1, security_profile: 0}}\n"
        "  heartbeat_interval: 30\n"
        "  authorize_unknown_id_tags: true\n"
        "  rate_limit: {rate: 1000, burst: 1000}\n"
        "  chargers:\n" + chargers
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Acked:
    """What the hub acknowledged, as the chargers saw it: (cp id, transaction id)."""

    def __init__(self) -> None:
        self.starts: set[tuple[str, int]] = set()
        self.stops: set[tuple[str, int]] = set()


async def charge(cp: RawChargePoint, cp_id: str, acked: Acked) -> None:
    wh = 0
    while True:
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": wh, "timestamp": now_iso()}
        tx_id = (await cp.call("StartTransaction", start))["transactionId"]
        acked.starts.add((cp_id, tx_id))
        wh += 25
        sample = {"value": str(wh), "measurand": "Energy.Active.Import.Register"}
        await cp.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx_id,
                "meterValue": [{"timestamp": now_iso(), "sampledValue": [sample]}],
            },
        )
        await cp.call(
            "StopTransaction", {"transactionId": tx_id, "meterStop": wh, "timestamp": now_iso()}
        )
        acked.stops.add((cp_id, tx_id))


async def run_and_kill(config_dir: Path, port: int, acked: Acked) -> None:
    """Start the hub, charge through it for a while, SIGKILL it mid-load."""
    child = await start_hub(config_dir)
    chargers: list[RawChargePoint] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await wait_port(port)
        for i in range(CHARGERS):
            cp = await open_charger(port, f"CP-{i}")
            chargers.append(cp)
            tasks.append(asyncio.create_task(charge(cp, f"CP-{i}", acked)))
        await asyncio.sleep(LOAD_S)
        await kill(child)
    finally:
        await kill(child)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for cp in chargers:
            with contextlib.suppress(Exception):
                await cp.close()
    assert child.returncode == -signal.SIGKILL


async def test_sessions_survive_sigkill_under_load(tmp_path: Path) -> None:
    port = free_port()
    write_config(tmp_path, port)
    acked = Acked()
    for _ in range(KILLS):
        await run_and_kill(tmp_path, port, acked)
    assert len(acked.stops) >= 100, "too little load"

    # The last start catches history up from the transaction store.
    hub = new_hub(tmp_path)
    await hub.start()
    try:
        ledger = hub.data[DATA_SYSTEM].ledger
        await asyncio.wait_for(ledger.caught_up.wait(), 60)
    finally:
        await hub.stop()

    # Read the rows as they are on disk.
    with contextlib.closing(sqlite3.connect(tmp_path / "evhub.db")) as db:
        rows = db.execute(
            "SELECT charge_point_id, transaction_id, stopped_at FROM sessions"
        ).fetchall()
    with contextlib.closing(sqlite3.connect(tmp_path / "ocpp_transactions.db")) as db:
        stored_open = {
            (cp_id, str(tx_id))
            for cp_id, tx_id in db.execute(
                "SELECT charge_point_id, id FROM transactions WHERE stopped_at IS NULL"
            )
        }
    sessions = {(cp_id, tx): stopped for cp_id, tx, stopped in rows}
    missing = [key for key in acked.starts if (key[0], str(key[1])) not in sessions]
    assert not missing, f"{len(missing)} acknowledged starts have no session row: {missing[:5]}"
    open_but_stopped = [key for key in acked.stops if sessions[(key[0], str(key[1]))] is None]
    assert not open_but_stopped, (
        f"{len(open_but_stopped)} acknowledged stops left open: {open_but_stopped[:5]}"
    )
    # Open in the recorder only where the store has it open too (a start acknowledged just
    # before a kill whose stop never came).
    open_rows = {key for key, stopped in sessions.items() if stopped is None}
    assert open_rows <= stored_open
