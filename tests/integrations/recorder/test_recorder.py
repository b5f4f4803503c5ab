"""The recorder on SQLite and PostgreSQL: what goes in comes back out of the database."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from hub.bootstrap import check_config, new_hub
from hub.charger import fire_charger_event
from hub.clock import ManualClock, use_manual_clock
from hub.const import EVENT_AUDIT, EVENT_EXCLUSION, EVENT_OUTAGE
from hub.core import Context, Hub
from hub.security import Severity, security_log
from integrations.recorder import next_purge_time

from .conftest import StartHub

DAY = 86400.0


async def count(hub_recorder: Any, table: str) -> int:
    rows = await hub_recorder.backend.fetch(f"SELECT count(*) FROM {table}")
    return int(rows[0][0])


async def test_states_with_shared_attribute_sets(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    t0 = time.time() - 100
    for i in range(5):
        hub.states.set("sensor.power", str(i), {"unit_of_measurement": "kW"}, timestamp=t0 + i)
    hub.states.set("sensor.power", "5", {"unit_of_measurement": "W"}, timestamp=t0 + 5)
    hub.states.set("switch.lock", "on", timestamp=t0 + 6)
    await recorder.flush()

    history = await recorder.history(["sensor.power", "switch.lock"], t0 - 1, t0 + 10)
    assert [row["state"] for row in history["sensor.power"]] == ["0", "1", "2", "3", "4", "5"]
    assert history["sensor.power"][0] == {
        "state": "0",
        "attributes": {"unit_of_measurement": "kW"},
        "last_changed": t0,
        "last_updated": t0,
    }
    assert history["sensor.power"][5]["attributes"] == {"unit_of_measurement": "W"}
    assert history["switch.lock"] == [
        {"state": "on", "attributes": {}, "last_changed": t0 + 6, "last_updated": t0 + 6}
    ]
    # Three attribute sets ({kW}, {W}, {}) for seven states; two entities in the meta table.
    assert await count(recorder, "state_attributes") == 3
    assert await count(recorder, "states_meta") == 2
    assert await count(recorder, "states") == 7


async def test_history_starts_with_the_state_in_force(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    t0 = time.time() - 1000
    hub.states.set("sensor.a", "old", timestamp=t0)
    hub.states.set("sensor.a", "before", timestamp=t0 + 10)
    hub.states.set("sensor.a", "inside", timestamp=t0 + 30)
    hub.states.set("sensor.a", "after", timestamp=t0 + 60)
    await recorder.flush()
    history = await recorder.history(["sensor.a", "sensor.unknown"], t0 + 20, t0 + 50)
    assert [(r["state"], r["last_changed"]) for r in history["sensor.a"]] == [
        ("before", t0 + 10),
        ("inside", t0 + 30),
    ]
    assert "sensor.unknown" not in history
    everything = await recorder.history(None, t0 - 1, t0 + 100)
    assert len(everything["sensor.a"]) == 4


async def test_removed_entity_is_a_null_state(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    hub.states.set("sensor.gone", "1")
    hub.states.remove("sensor.gone")
    await recorder.flush()
    rows = (await recorder.history(["sensor.gone"], 0))["sensor.gone"]
    assert [row["state"] for row in rows] == ["1", None]


async def test_events_kept_but_not_state_changes(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    t0 = time.time()
    ctx = Context(user_id="u1")
    hub.bus.fire("ocpp_boot", {"charge_point_id": "CP1", "n": 1}, ctx)
    hub.bus.fire("something_else", {"x": [1, 2]})
    hub.states.set("sensor.x", "1")
    await recorder.flush()
    events = await recorder.events(None, t0 - 1)
    types = [event["event_type"] for event in events]
    assert "ocpp_boot" in types
    assert "something_else" in types
    assert "state_changed" not in types
    boot = await recorder.events(["ocpp_boot"], t0 - 1)
    assert len(boot) == 1
    assert boot[0]["data"] == {"charge_point_id": "CP1", "n": 1}
    assert boot[0]["context_id"] == ctx.id
    assert boot[0]["context_user_id"] == "u1"
    assert boot[0]["time_fired"] >= t0


async def test_include_and_exclude_filters(start_hub: StartHub) -> None:
    hub, recorder = await start_hub(
        {
            "exclude": {
                "domains": ["sensor"],
                "entity_globs": ["switch.noisy_*"],
                "event_types": ["noise"],
            },
            "include": {"entity_ids": ["sensor.kept"]},
        }
    )
    t0 = time.time()
    for entity_id in ("sensor.dropped", "sensor.kept", "switch.noisy_1", "switch.quiet"):
        hub.states.set(entity_id, "1")
    hub.bus.fire("noise", {})
    hub.bus.fire("signal", {})
    await recorder.flush()
    history = await recorder.history(None, t0 - 1)
    assert sorted(history) == ["sensor.kept", "switch.quiet"]
    types = {event["event_type"] for event in await recorder.events(None, t0 - 1)}
    assert "signal" in types
    assert "noise" not in types


async def test_sessions_upserted_by_station_and_transaction(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    t0 = 1_700_000_000.0
    base = {"charge_point_id": "CP1", "port": 1, "transaction_id": 42, "id_tag": "TAG"}
    fire_charger_event(
        hub,
        "session_started",
        station_id="st1",
        device_id="st1-p1",
        data={**base, "started_at": t0, "stopped_at": None, "energy_wh": 0, "peak_power_w": 0},
    )
    await recorder.flush()
    running = await recorder.sessions(t0, t0 + 10)
    assert len(running) == 1
    assert running[0]["stopped_at"] is None
    fire_charger_event(
        hub,
        "session_ended",
        station_id="st1",
        device_id="st1-p1",
        data={
            **base,
            "started_at": t0,
            "stopped_at": t0 + 3600,
            "energy_wh": 7200.0,
            "peak_power_w": 11000.0,
            "stop_reason": "Local",
            "error_code": None,
        },
    )
    # Another station may reuse the same transaction id.
    fire_charger_event(
        hub,
        "session_started",
        station_id="st2",
        device_id="st2-p1",
        data={**base, "started_at": t0 + 7200},
    )
    await recorder.flush()
    rows = await recorder.sessions(t0 - 10, t0 + 10_000)
    assert rows[0] == {
        "station_id": "st1",
        "transaction_id": "42",
        "port_id": "st1-p1",
        "port": 1,
        "charge_point_id": "CP1",
        "id_tag": "TAG",
        "started_at": t0,
        "stopped_at": t0 + 3600,
        "energy_wh": 7200.0,
        "peak_power_w": 11000.0,
        "stop_reason": "Local",
        "error_code": None,
    }
    assert [row["station_id"] for row in rows] == ["st1", "st2"]
    assert await count(recorder, "sessions") == 2
    assert [r["station_id"] for r in await recorder.sessions(t0, t0 + 10_000, ["st2"])] == ["st2"]
    assert [
        r["port_id"] for r in await recorder.sessions(t0, t0 + 10_000, port_ids=["st1-p1"])
    ] == ["st1-p1"]
    # A window after the first session ended sees only the second.
    assert [r["station_id"] for r in await recorder.sessions(t0 + 3700, t0 + 8000)] == ["st2"]


async def test_outages_overlapping_the_window(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    t0 = 1_700_000_000.0

    def outage(outage_id: str, start: float, end: float | None, port: str = "p1") -> None:
        hub.bus.fire(
            EVENT_OUTAGE,
            {
                "outage_id": outage_id,
                "port_id": port,
                "station_id": "st1",
                "start": start,
                "end": end,
                "cause": "faulted",
            },
        )

    outage("o1", t0, None)
    outage("o2", t0 - 500, t0 - 100)
    outage("o3", t0 + 50, None, port="p2")
    await recorder.flush()
    outage("o1", t0, t0 + 100)  # the end of o1: same row
    await recorder.flush()
    rows = await recorder.outages(t0 - 50, t0 + 1000)
    assert [(r["outage_id"], r["end"]) for r in rows] == [("o1", t0 + 100), ("o3", None)]
    assert rows[0] == {
        "outage_id": "o1",
        "port_id": "p1",
        "station_id": "st1",
        "start": t0,
        "end": t0 + 100,
        "cause": "faulted",
    }
    assert [r["outage_id"] for r in await recorder.outages(t0 - 1000, t0 + 10, ["p1"])] == [
        "o2",
        "o1",
    ]
    # An open outage overlaps every later window.
    assert [r["outage_id"] for r in await recorder.outages(t0 + 5000, t0 + 6000)] == ["o3"]


async def test_exclusions_upserted_and_deleted(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    t0 = 1_700_000_000.0
    data = {
        "exclusion_id": "e1",
        "port_id": None,
        "station_id": "st1",
        "start": t0,
        "end": t0 + 3600,
        "reason": "maintenance",
        "note": "pads",
        "deleted": False,
    }
    hub.bus.fire(EVENT_EXCLUSION, data)
    hub.bus.fire(EVENT_EXCLUSION, {**data, "exclusion_id": "e2", "end": None})
    hub.bus.fire(EVENT_EXCLUSION, {**data, "note": "pads and cable"})
    await recorder.flush()
    rows = await recorder.exclusions(t0, t0 + 100)
    assert rows[0] == {
        "exclusion_id": "e1",
        "port_id": None,
        "station_id": "st1",
        "start": t0,
        "end": t0 + 3600,
        "reason": "maintenance",
        "note": "pads and cable",
    }
    assert [r["exclusion_id"] for r in rows] == ["e1", "e2"]
    hub.bus.fire(EVENT_EXCLUSION, {"exclusion_id": "e1", "deleted": True})
    await recorder.flush()
    assert [r["exclusion_id"] for r in await recorder.exclusions(t0, t0 + 100)] == ["e2"]


async def test_alerts_follow_their_lifecycle(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    raised = await hub.services.call(
        "alert", "raise", {"key": "k1", "title": "Broken", "severity": "critical"}
    )
    await hub.services.call("alert", "raise", {"key": "k2", "title": "Other"})
    await recorder.flush()
    open_alerts = await recorder.alerts(status="open")
    assert {a["key"] for a in open_alerts} == {"k1", "k2"}
    await hub.services.call("alert", "resolve", {"alert": raised["id"]})
    await recorder.flush()
    resolved = await recorder.alerts(status="resolved")
    assert [a["id"] for a in resolved] == [raised["id"]]
    assert resolved[0]["state"] == "resolved"
    assert resolved[0]["title"] == "Broken"
    assert [a["key"] for a in await recorder.alerts(status="active")] == ["k2"]
    assert len(await recorder.alerts(limit=1)) == 1
    assert await count(recorder, "alerts") == 2


async def test_security_events_and_audit(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    log = security_log(hub)
    log.record("auth_failed", "bad password", remote="10.0.0.9", data={"user": "x"})
    log.record("charger_reported", "tamper", severity=Severity.CRITICAL, charge_point_id="CP1")
    t0 = time.time()
    hub.bus.fire(
        EVENT_AUDIT,
        {
            "time": t0,
            "user_id": "u1",
            "username": "ann",
            "source": "10.0.0.2",
            "action": "charger.reset",
            "target": "st1",
            "result": "ok",
            "context_id": "c1",
        },
    )
    hub.bus.fire(EVENT_AUDIT, {"time": t0 + 1, "action": "login", "result": "ok"})
    await recorder.flush()
    events = await recorder.security_events()
    assert [e["kind"] for e in events] == ["charger_reported", "auth_failed"]
    assert events[1]["remote"] == "10.0.0.9"
    assert events[1]["data"] == {"user": "x"}
    assert events[0]["severity"] == "critical"
    assert [e["kind"] for e in await recorder.security_events(kind="auth_failed")] == [
        "auth_failed"
    ]
    entries = await recorder.audit()
    assert [e["action"] for e in entries] == ["login", "charger.reset"]
    assert entries[1] == {
        "time": t0,
        "user_id": "u1",
        "username": "ann",
        "source": "10.0.0.2",
        "action": "charger.reset",
        "target": "st1",
        "result": "ok",
        "context_id": "c1",
        "data": None,
    }
    assert [e["action"] for e in await recorder.audit(since=t0 + 0.5)] == ["login"]


async def test_backlog_drops_states_never_sessions(
    start_hub: StartHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub, recorder = await start_hub(
        {"max_backlog": 100, "exclude": {"event_types": ["charger_event"]}}
    )
    await recorder.flush()
    caplog.set_level(logging.WARNING)
    # All in one go, without yielding to the loop: the writer gets no chance in between.
    for i in range(300):
        hub.states.set("sensor.flood", str(i))
    for i in range(150):
        fire_charger_event(
            hub,
            "session_started",
            station_id="st1",
            data={"transaction_id": i, "started_at": 1_700_000_000.0 + i},
        )
    assert recorder.backlog == 250
    assert recorder.dropped == 200
    assert "backlog" in caplog.text
    await recorder.flush()
    assert recorder.backlog == 0
    assert await count(recorder, "states") == 100
    assert await count(recorder, "sessions") == 150


async def test_purge_by_age_with_domain_override(start_hub: StartHub) -> None:
    hub, recorder = await start_hub({"purge_keep_days": 30, "keep_days": {"sensor": 10}})
    now = time.time()
    hub.states.set("sensor.power", "old", {"a": 1}, timestamp=now - 20 * DAY)
    hub.states.set("sensor.power", "new", {"a": 2}, timestamp=now - 1 * DAY)
    hub.states.set("switch.lock", "old", timestamp=now - 40 * DAY)
    hub.states.set("switch.lock", "kept", timestamp=now - 20 * DAY)
    hub.bus.fire("ocpp_boot", {}, time_fired_ts=now - 31 * DAY)
    hub.bus.fire("ocpp_boot", {"n": 2}, time_fired_ts=now - 29 * DAY)
    for transaction_id, stopped in (("old", now - 732 * DAY), ("recent", now - 730 * DAY)):
        fire_charger_event(
            hub,
            "session_ended",
            station_id="st1",
            data={
                "transaction_id": transaction_id,
                "started_at": stopped - 100,
                "stopped_at": stopped,
            },
        )
    fire_charger_event(
        hub,
        "session_started",
        station_id="st1",
        data={"transaction_id": "running", "started_at": now - 800 * DAY},
    )
    await recorder.flush()
    removed = await hub.services.call("recorder", "purge", {})
    assert removed["states"] == 2
    assert removed["events"] == 1
    assert removed["sessions"] == 1
    assert removed["state_attributes"] == 1  # {"a": 1} is no longer used
    history = await recorder.history(None, now - 1000 * DAY)
    assert [r["state"] for r in history["sensor.power"]] == ["new"]
    assert [r["state"] for r in history["switch.lock"]] == ["kept"]
    assert len(await recorder.events(["ocpp_boot"], now - 1000 * DAY)) == 1
    kept = await recorder.sessions(now - 1000 * DAY, now)
    assert sorted(r["transaction_id"] for r in kept) == ["recent", "running"]
    # A keep_days override from the service applies to every domain.
    await hub.services.call("recorder", "purge", {"keep_days": 0})
    assert await recorder.history(None, now - 1000 * DAY) == {}


async def test_nightly_purge_on_the_clock(start_hub: StartHub) -> None:
    manual: list[ManualClock] = []
    start = 1_800_000_000.0  # 2027-01-15 08:00 UTC

    def install(hub: Hub) -> None:
        manual.append(use_manual_clock(hub, start))

    hub, recorder = await start_hub({"purge_keep_days": 1}, before_start=install)
    clock = manual[0]
    hub.states.set("sensor.old", "1", timestamp=start - 3 * DAY)
    await recorder.flush()
    assert await count(recorder, "states") == 1
    due = next_purge_time(start, "UTC")
    assert due - start == pytest.approx(20 * 3600 + 12 * 60)
    await clock.advance(due - start - 1)
    assert await count(recorder, "states") == 1
    await clock.advance(2)
    assert await count(recorder, "states") == 0


async def test_config_errors_name_file_line_and_key(tmp_path: Path) -> None:
    tmp_path.joinpath("configuration.yaml").write_text(
        "hub:\n  name: x\nrecorder:\n  db_url: mysql://nope\n  commit_interval: 5\n"
        "  keep_days:\n    Not-A-Domain: 3\n"
    )
    errors = [str(error) for error in check_config(tmp_path)]
    assert any("configuration.yaml:4" in e and "recorder.db_url" in e for e in errors), errors
    assert any("configuration.yaml:5" in e and "recorder.commit_interval" in e for e in errors)
    assert any("recorder.keep_days" in e for e in errors), errors


async def test_recorder_is_on_by_default(tmp_path: Path) -> None:
    tmp_path.joinpath("configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n"
    )
    hub = new_hub(tmp_path)
    await hub.start()
    try:
        hub.states.set("sensor.x", "1")
    finally:
        await hub.stop()
    # Stopping commits what was queued.
    with sqlite3.connect(tmp_path / "evhub.db") as conn:
        assert conn.execute("SELECT count(*) FROM states").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


# Page reclaiming is SQLite's (auto_vacuum=INCREMENTAL); PostgreSQL's autovacuum reuses space.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_purge_gives_pages_back(start_hub: StartHub) -> None:
    hub, recorder = await start_hub()
    old = time.time() - 100 * DAY
    for i in range(3000):
        hub.states.set(f"sensor.s{i % 50}", str(i), {"blob": "x" * 500, "i": i}, timestamp=old + i)
    await recorder.flush()
    db = hub.path("evhub.db")

    def pages() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("PRAGMA page_count").fetchone()[0])

    before = pages()
    removed = await recorder.purge()
    assert removed["states"] == 3000
    assert removed["state_attributes"] == 3000
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert pages() < before / 4


async def test_state_rows_keep_the_context_made_lazily(start_hub: StartHub) -> None:
    """A context id nobody read before the commit is made on the loop, not lost (issue 12).

    call_service events are not recorded here, so nothing but the recorder asks for the ids
    of the callers' contexts before the writer thread builds the rows.
    """
    hub, recorder = await start_hub({"exclude": {"event_types": ["call_service"]}})

    async def set_bay(call: Any) -> None:
        hub.states.set(f"sensor.bay_{call.data['n']}", "Charging", context=call.context)

    hub.services.register("test", "set_bay", set_bay, None)
    contexts = [Context(user_id="operator") for _ in range(200)]
    for n, ctx in enumerate(contexts):
        await hub.services.call("test", "set_bay", {"n": n}, context=ctx)
    hub.states.set("sensor.plain", "1")  # a context of the state machine's own making
    await recorder.flush()

    rows = dict(
        await recorder.backend.fetch(
            "SELECT m.entity_id, s.context_id FROM states s"
            " JOIN states_meta m ON m.metadata_id = s.metadata_id"
        )
    )
    # Asked only now, after the commit: the ids must be those in the database.
    assert [rows[f"sensor.bay_{n}"] for n in range(200)] == [ctx.id for ctx in contexts]
    plain = hub.states.get("sensor.plain")
    assert plain is not None
    assert rows["sensor.plain"] == plain.context.id
