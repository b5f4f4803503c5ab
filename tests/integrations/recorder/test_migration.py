"""A database of schema version 1 with data is migrated to the current version, data kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from hub.charger import fire_charger_event
from integrations.recorder import schema

from .conftest import StartHub

T = 1_700_000_000.0
# The version table as version 1 made it (hub.migration makes it since).
VERSION_TABLE = {
    schema.SQLITE: "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL"
    " NOT NULL)",
    schema.POSTGRESQL: "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at"
    " DOUBLE PRECISION NOT NULL)",
}
V1_ROWS = (
    ("INSERT INTO schema_version VALUES (1, ?)", (T,)),
    ("INSERT INTO states_meta (metadata_id, entity_id) VALUES (1, 'sensor.power')", ()),
    (
        "INSERT INTO state_attributes (attributes_id, hash, shared_attrs)"
        ' VALUES (1, 7, \'{"unit":"kW"}\')',
        (),
    ),
    (
        "INSERT INTO states (metadata_id, state, attributes_id, last_changed_ts,"
        " last_updated_ts, context_id) VALUES (1, '3.5', 1, ?, ?, 'c1')",
        (T, T),
    ),
    (
        "INSERT INTO events (event_type, data, origin, time_fired_ts, context_id)"
        " VALUES ('ocpp_boot', '{\"charge_point_id\":\"CP1\"}', 'LOCAL', ?, 'c2')",
        (T,),
    ),
    (
        "INSERT INTO port_status (time, station_id, port_id, port, status, previous, error_code)"
        " VALUES (?, 'st1', 'p1', 1, 'Faulted', 'Available', 'OtherError')",
        (T,),
    ),
    (
        "INSERT INTO sessions (station_id, transaction_id, started_at, stopped_at, energy_wh,"
        " updated_at) VALUES ('st1', '9', ?, ?, 1000.0, ?)",
        (T, T + 60, T),
    ),
    (
        "INSERT INTO audit (time, username, source, action, target, result)"
        " VALUES (?, 'ann', 'cli', 'charger.reset', 'Bay 1', 'ok')",
        (T,),
    ),
)


async def test_v1_database_migrates_with_its_data(
    start_hub: StartHub, db_url: str | None, tmp_path: Path
) -> None:
    if db_url is None:
        conn = sqlite3.connect(tmp_path / "evhub.db")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute(VERSION_TABLE[schema.SQLITE])
        for statement in schema.statements(schema.SQLITE, 1):
            conn.execute(statement)
        for sql, params in V1_ROWS:
            conn.execute(sql, params)
        conn.commit()
        conn.close()
    else:
        pg = await asyncpg.connect(db_url)
        try:
            await pg.execute(VERSION_TABLE[schema.POSTGRESQL])
            for statement in schema.statements(schema.POSTGRESQL, 1):
                await pg.execute(statement)
            for sql, params in V1_ROWS:
                counter = iter(range(1, 10))
                await pg.execute(
                    "".join(f"${next(counter)}" if c == "?" else c for c in sql), *params
                )
            # Ids given explicitly: move the identity sequences past them.
            for table, column in (
                ("states_meta", "metadata_id"),
                ("state_attributes", "attributes_id"),
            ):
                await pg.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), 10)"
                )
        finally:
            await pg.close()

    hub, recorder = await start_hub()
    assert await recorder.backend.schema_version() == schema.SCHEMA_VERSION == 4
    history = await recorder.history(["sensor.power"], T - 10, T + 10)
    assert history["sensor.power"] == [
        {"state": "3.5", "attributes": {"unit": "kW"}, "last_changed": T, "last_updated": T}
    ]
    events = await recorder.events(["ocpp_boot"], T - 10, T + 10)
    assert events[0]["data"] == {"charge_point_id": "CP1"}
    assert events[0]["context_user_id"] is None  # the column v2 added
    sessions = await recorder.sessions(T - 10, T + 100)
    assert sessions[0]["energy_wh"] == 1000.0
    [status] = await recorder.port_status(T - 10, T + 10)
    assert (status["error_code"], status["vendor_error_code"]) == ("OtherError", None)  # v3
    fire_charger_event(
        hub,
        "status",
        station_id="st1",
        device_id="p1",
        data={
            "port": 1,
            "status": "Faulted",
            "error_code": "OtherError",
            "vendor_error_code": "E42",
            "time": T + 6,
        },
    )
    # New rows go in beside the old ones, in the new columns too.
    hub.states.set("sensor.power", "4.0", {"unit": "kW"}, timestamp=T + 5)
    await recorder.flush()
    history = await recorder.history(["sensor.power"], T - 10, T + 10)
    assert [row["state"] for row in history["sensor.power"]] == ["3.5", "4.0"]
    rows = await recorder.port_status(T - 10, T + 10)
    assert [row["vendor_error_code"] for row in rows] == [None, "E42"]
    # v4: an audit entry keeps the data sent; the old entries have none.
    hub.bus.fire(
        "audit_entry",
        {"time": T + 7, "action": "charger.set_current_limit", "data": {"limit": 16}},
    )
    await recorder.flush()
    audit = await recorder.audit()
    assert [(row["action"], row["data"]) for row in audit] == [
        ("charger.set_current_limit", {"limit": 16}),
        ("charger.reset", None),
    ]


async def test_a_database_of_the_current_version_opens_unchanged(
    start_hub: StartHub, db_url: str | None, tmp_path: Path
) -> None:
    """A database made whole by the code before hub.migration (one transaction, every
    version's row) opens without a step run again and keeps its rows."""
    statements = [VERSION_TABLE[schema.SQLITE if db_url is None else schema.POSTGRESQL]]
    dialect = schema.SQLITE if db_url is None else schema.POSTGRESQL
    statements += schema.statements(dialect, 1)
    for version in sorted(schema.MIGRATIONS):
        statements += schema.migration(dialect, version)
    versions = [(version, T) for version in range(1, schema.SCHEMA_VERSION + 1)]
    if db_url is None:
        conn = sqlite3.connect(tmp_path / "evhub.db")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        for statement in statements:
            conn.execute(statement)
        conn.executemany("INSERT INTO schema_version VALUES (?, ?)", versions)
        conn.execute(V1_ROWS[1][0])
        conn.commit()
        conn.close()
    else:
        pg = await asyncpg.connect(db_url)
        try:
            async with pg.transaction():
                for statement in statements:
                    await pg.execute(statement)
                await pg.executemany("INSERT INTO schema_version VALUES ($1, $2)", versions)
                await pg.execute(V1_ROWS[1][0])
        finally:
            await pg.close()

    _hub, recorder = await start_hub()

    assert await recorder.backend.schema_version() == schema.SCHEMA_VERSION
    rows = await recorder.backend.fetch("SELECT version, applied_at FROM schema_version")
    assert sorted(rows) == versions
    assert await recorder.backend.fetch("SELECT entity_id FROM states_meta") == [("sensor.power",)]
