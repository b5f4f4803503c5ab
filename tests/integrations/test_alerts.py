"""Alerts: the alert.* services, dedupe, persistence and the built-in rules on a manual clock."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol

from hub.bootstrap import new_hub
from hub.charger import fire_charger_event
from hub.clock import ManualClock, use_manual_clock
from hub.core import Context, Event, Hub
from hub.exceptions import HubError, ServiceValidationError
from hub.security import Severity, security_log
from integrations.alerts import (
    CONFIG_SCHEMA,
    EVENT_ALERT_ACKNOWLEDGED,
    EVENT_ALERT_RAISED,
    EVENT_ALERT_RESOLVED,
    EVENT_ALERT_UPDATED,
    HISTORY_UPDATES,
    AlertError,
    AlertManager,
    alert_manager,
)

START = 1_800_000_000.0
ALERT_EVENTS = (
    EVENT_ALERT_RAISED,
    EVENT_ALERT_UPDATED,
    EVENT_ALERT_ACKNOWLEDGED,
    EVENT_ALERT_RESOLVED,
)

Start = Callable[..., Awaitable[tuple[Hub, ManualClock, AlertManager]]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a hub with the given alerts section (and optional extra YAML) on a manual clock."""
    hubs: list[Hub] = []

    async def run(
        alerts: str = "{}", extra: str = "", clock_start: float = START
    ) -> tuple[Hub, ManualClock, AlertManager]:
        section = textwrap.dedent(alerts).strip()
        body = (
            f"alerts: {section}\n"
            if "\n" not in section
            else "alerts:\n" + textwrap.indent(section + "\n", "  ")
        )
        tmp_path.joinpath("configuration.yaml").write_text(
            "hub:\n  time_zone: UTC\nhttp:\n  server_host: 127.0.0.1\n  server_port: 0\n"
            + body
            + textwrap.dedent(extra)
        )
        hub = new_hub(tmp_path)
        manual = use_manual_clock(hub, clock_start)
        await hub.start()
        hubs.append(hub)
        return hub, manual, alert_manager(hub)

    yield run
    for hub in hubs:
        await hub.stop()


def record_events(hub: Hub) -> list[tuple[str, dict[str, Any]]]:
    """Collect the alert_* events a hub fires."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def listener(event: Event) -> None:
        seen.append((event.event_type, dict(event.data)))

    for event_type in ALERT_EVENTS:
        hub.bus.listen(event_type, listener)
    return seen


async def call(hub: Hub, service: str, context: Context | None = None, **data: Any) -> Any:
    return await hub.services.call("alert", service, data, context=context)


# Services, dedupe, history -----------------------------------------------------------------


async def test_raise_dedupes_while_open_and_fires_events(start: Start) -> None:
    hub, clock, manager = await start()
    events = record_events(hub)
    first = await call(hub, "raise", key="meter:bay1", title="Meter drift", device_id="dev1")
    assert first["state"] == "open"
    assert first["severity"] == "warning"
    assert first["source"] == "service"
    assert first["count"] == 1
    assert first["raised_at"] == START
    assert first["device_id"] == "dev1"
    await clock.advance(30)
    second = await call(
        hub, "raise", key="meter:bay1", title="Meter drift", message="again", severity="critical"
    )
    assert second["id"] == first["id"]
    assert second["count"] == 2
    assert second["last_seen_at"] == START + 30
    assert second["message"] == "again"
    assert second["severity"] == "critical"
    assert [alert.id for alert in manager.open()] == [first["id"]]
    await hub.block_till_done()
    assert [event_type for event_type, _ in events] == [EVENT_ALERT_RAISED, EVENT_ALERT_UPDATED]
    assert events[1][1]["count"] == 2


async def test_an_alert_raised_again_for_months_keeps_a_bounded_history(start: Start) -> None:
    """A figure below target re-raises its alert every minute: the count grows, the history
    keeps the raise and the latest updates only (it was copied whole on every change)."""
    _hub, clock, manager = await start()
    for minute in range(2_000):
        manager.raise_alert("uptime:p1", "Uptime below target", f"minute {minute}")
        await clock.advance(60)
    [alert] = manager.open()
    assert alert.count == 2_000
    assert alert.history[0]["action"] == "raised"
    assert len(alert.history) == 1 + HISTORY_UPDATES
    assert alert.history[-1]["note"] == "minute 1999"
    assert alert.as_dict()["history"] == alert.history


async def test_acknowledge_resolve_and_history(start: Start) -> None:
    hub, clock, manager = await start()
    events = record_events(hub)
    raised = await call(hub, "raise", key="k1", title="One", message="m")
    await clock.advance(60)
    acked = await call(hub, "acknowledge", Context(user_id="alice"), alert="k1", note="on it")
    assert acked["state"] == "acknowledged"
    assert acked["acknowledged_at"] == START + 60
    assert acked["acknowledged_by"] == "alice"
    # Raised again while acknowledged: still the same alert, still acknowledged.
    again = await call(hub, "raise", key="k1", title="One", message="m2")
    assert (again["id"], again["count"], again["state"]) == (raised["id"], 2, "acknowledged")
    await clock.advance(60)
    resolved = await call(hub, "resolve", Context(user_id="bob"), alert=raised["id"], note="fixed")
    assert resolved["state"] == "resolved"
    assert resolved["resolved_at"] == START + 120
    assert resolved["resolved_by"] == "bob"
    assert resolved["resolution"] == "manual"
    assert [(h["action"], h["by"], h["note"]) for h in resolved["history"]] == [
        ("raised", None, "m"),
        ("acknowledged", "alice", "on it"),
        ("updated", None, "m2"),
        ("resolved", "bob", "fixed"),
    ]
    assert manager.open() == []
    assert [alert.id for alert in manager.history(10)] == [raised["id"]]
    assert manager.get(raised["id"]) is not None
    # The key is free again: a new raise opens a new alert.
    fresh = await call(hub, "raise", key="k1", title="One")
    assert fresh["id"] != raised["id"]
    assert fresh["count"] == 1
    await hub.block_till_done()
    assert [event_type for event_type, _ in events] == [
        EVENT_ALERT_RAISED,
        EVENT_ALERT_ACKNOWLEDGED,
        EVENT_ALERT_UPDATED,
        EVENT_ALERT_RESOLVED,
        EVENT_ALERT_RAISED,
    ]


async def test_history_is_newest_first_and_limited(start: Start) -> None:
    hub, clock, manager = await start()
    for index in range(5):
        await call(hub, "raise", key=f"k{index}", title="t")
        await clock.advance(1)
        await call(hub, "resolve", alert=f"k{index}")
    assert [alert.key for alert in manager.history(3)] == ["k4", "k3", "k2"]


async def test_unknown_or_resolved_alert_is_a_clear_error(start: Start) -> None:
    hub, _clock, _manager = await start()
    with pytest.raises(AlertError, match="no alert with id or open key 'nope'"):
        await call(hub, "acknowledge", alert="nope")
    with pytest.raises(HubError, match="no alert"):
        await call(hub, "resolve", alert="nope")
    done = await call(hub, "raise", key="k", title="t")
    await call(hub, "resolve", alert="k")
    with pytest.raises(AlertError, match="resolved"):
        await call(hub, "resolve", alert=done["id"])
    with pytest.raises(AlertError, match="no alert"):
        await call(hub, "acknowledge", alert="k")  # by key: only active alerts
    with pytest.raises(ServiceValidationError, match="severity"):
        await call(hub, "raise", key="k", title="t", severity="urgent")
    with pytest.raises(ServiceValidationError, match="title"):
        await call(hub, "raise", key="k")


async def test_automation_action_raises_an_alert(start: Start) -> None:
    hub, _clock, manager = await start(
        extra="""
        automations:
          - id: on_boot
            triggers:
              - trigger: event
                event_type: test_boot
            actions:
              - action: alert.raise
                data: {key: "boot:cp1", title: "cp1 rebooted", severity: info}
        """
    )
    hub.bus.fire("test_boot", {})
    await hub.block_till_done()
    (alert,) = manager.open()
    assert (alert.key, alert.severity, alert.title) == ("boot:cp1", "info", "cp1 rebooted")
    assert alert.source == "automation:on_boot"
    # The same service called by hand is told apart.
    by_hand = await call(hub, "raise", key="manual", title="by hand")
    assert by_hand["source"] == "service"


async def test_alerts_persist_across_a_restart(start: Start, tmp_path: Path) -> None:
    hub, clock, _manager = await start()
    kept = await call(hub, "raise", key="open1", title="Still open")
    await call(hub, "raise", key="acked", title="Acked")
    await call(hub, "acknowledge", alert="acked")
    done = await call(hub, "raise", key="done", title="Done")
    await call(hub, "resolve", alert="done")
    await hub.stop()
    stored = json.loads(tmp_path.joinpath(".storage", "core.alerts").read_text())
    assert stored["key"] == "core.alerts"
    assert len(stored["data"]["alerts"]) == 3

    again, _clock, manager = await start(clock_start=clock.time() + 5)
    assert [(a.key, a.state) for a in manager.open()] == [
        ("open1", "open"),
        ("acked", "acknowledged"),
    ]
    assert [alert.id for alert in manager.history()] == [done["id"]]
    # Dedupe works against the loaded alert.
    bumped = await call(again, "raise", key="open1", title="Still open")
    assert (bumped["id"], bumped["count"]) == (kept["id"], 2)


async def test_only_the_last_resolved_alerts_are_kept(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("integrations.alerts.MAX_RESOLVED", 3)
    _hub, _clock, manager = await start()
    ids = []
    for index in range(5):
        ids.append(manager.raise_alert(f"k{index}", "t").id)
        manager.resolve(f"k{index}")
    assert [alert.id for alert in manager.history()] == ids[:1:-1]
    assert manager.get(ids[0]) is None


# Built-in rules ----------------------------------------------------------------------------


async def test_station_offline_raises_after_the_delay_and_resolves_online(start: Start) -> None:
    hub, clock, manager = await start()
    events = record_events(hub)
    fire_charger_event(hub, "offline", station_id="st1", data={"charge_point_id": "CP1"})
    await clock.advance(9 * 60 + 59)
    assert manager.open() == []
    await clock.advance(1)
    (alert,) = manager.open()
    assert alert.key == "offline:st1"
    assert alert.severity == "critical"
    assert alert.source == "station_offline"
    assert alert.station_id == "st1"
    assert alert.raised_at == START + 600
    assert "CP1" in alert.title
    fire_charger_event(hub, "online", station_id="st1")
    await hub.block_till_done()
    assert manager.open() == []
    (resolved,) = manager.history()
    assert (resolved.resolution, resolved.resolved_by) == ("auto", None)
    assert [event_type for event_type, _ in events] == [EVENT_ALERT_RAISED, EVENT_ALERT_RESOLVED]


async def test_station_back_online_before_the_delay_raises_nothing(start: Start) -> None:
    hub, clock, manager = await start()
    fire_charger_event(hub, "offline", station_id="st1")
    await clock.advance(5 * 60)
    fire_charger_event(hub, "offline", station_id="st1")  # repeated: the first one counts
    await clock.advance(4 * 60)
    fire_charger_event(hub, "online", station_id="st1")
    await clock.advance(60 * 60)
    assert manager.open() == []
    assert manager.history() == []
    # Another station's delay is its own.
    fire_charger_event(hub, "offline", station_id="st2")
    await clock.advance(10 * 60)
    assert [alert.key for alert in manager.open()] == ["offline:st2"]


async def test_station_offline_minutes_tuned(start: Start) -> None:
    hub, clock, manager = await start("{station_offline: {minutes: 2}}")
    fire_charger_event(hub, "offline", station_id="st1")
    await clock.advance(119)
    assert manager.open() == []
    await clock.advance(1)
    assert [alert.key for alert in manager.open()] == ["offline:st1"]
    assert "2 minutes" in manager.open()[0].message


async def test_pending_offline_timer_is_cancelled_on_stop(start: Start) -> None:
    hub, clock, _manager = await start()
    fire_charger_event(hub, "offline", station_id="st1")
    await hub.block_till_done()
    await hub.stop()
    assert all(timer.cancelled for *_rest, timer in clock._queue)


async def test_connector_fault_and_recovery(start: Start) -> None:
    hub, _clock, manager = await start()
    fire_charger_event(
        hub,
        "fault",
        station_id="st1",
        device_id="st1-c1",
        data={
            "charge_point_id": "CP1",
            "port": 1,
            "status": "Faulted",
            "error_code": "GroundFailure",
        },
    )
    await hub.block_till_done()
    (alert,) = manager.open()
    assert alert.key == "fault:st1-c1"
    assert alert.severity == "warning"
    assert alert.device_id == "st1-c1"
    assert alert.station_id == "st1"
    assert "GroundFailure" in alert.message
    fire_charger_event(
        hub,
        "recovered",
        station_id="st1",
        device_id="st1-c1",
        data={"port": 1, "status": "Available"},
    )
    await hub.block_till_done()
    assert manager.open() == []
    assert manager.history()[0].resolution == "auto"


async def test_security_events_at_or_above_the_threshold(start: Start) -> None:
    hub, _clock, manager = await start()
    log = security_log(hub)
    log.record("bad_password", "login failed", severity=Severity.INFO, charge_point_id="CP1")
    await hub.block_till_done()
    assert manager.open() == []
    log.record("unknown_charger", "CP9 refused", severity=Severity.WARNING, charge_point_id="CP9")
    log.record("firmware_tamper", "bad signature", severity=Severity.CRITICAL)
    log.record("unknown_charger", "CP9 refused again", charge_point_id="CP9")
    await hub.block_till_done()
    alerts = {alert.key: alert for alert in manager.open()}
    assert set(alerts) == {"security:unknown_charger:CP9", "security:firmware_tamper:hub"}
    assert alerts["security:firmware_tamper:hub"].severity == "critical"
    assert alerts["security:unknown_charger:CP9"].count == 2
    assert alerts["security:unknown_charger:CP9"].message == "CP9 refused again"


async def test_security_min_severity_tuned(start: Start) -> None:
    hub, _clock, manager = await start("{security_event: {min_severity: critical}}")
    log = security_log(hub)
    log.record("unknown_charger", "refused", severity=Severity.WARNING, charge_point_id="CP9")
    log.record("firmware_tamper", "bad signature", severity=Severity.CRITICAL, charge_point_id="A")
    await hub.block_till_done()
    assert [alert.key for alert in manager.open()] == ["security:firmware_tamper:A"]


async def test_uptime_below_target_raises_and_resolves(start: Start) -> None:
    hub, _clock, manager = await start("{uptime_below_target: {target: 99}}")
    hub.bus.fire("uptime_updated", {"device_id": "port1", "uptime_percent": 99.5})
    await hub.block_till_done()
    assert manager.open() == []
    hub.bus.fire("uptime_updated", {"port_id": "port1", "uptime_percent": 98.2})
    await hub.block_till_done()
    (alert,) = manager.open()
    assert (alert.key, alert.device_id) == ("uptime:port1", "port1")
    assert "98.20%" in alert.message
    hub.bus.fire("uptime_updated", {"device_id": "port1", "uptime_percent": 99.0})
    await hub.block_till_done()
    assert manager.open() == []
    assert manager.history()[0].resolution == "auto"


async def test_uptime_of_a_port_just_in_service_is_not_judged_yet(start: Start) -> None:
    hub, _clock, manager = await start("{uptime_below_target: {min_hours_in_service: 2}}")
    # Ten minutes in service with a one-minute fault: 90 %, but too soon to say.
    young = {"device_id": "port1", "uptime_percent": 90.0, "window_min": 10.0}
    hub.bus.fire("uptime_updated", young)
    await hub.block_till_done()
    assert manager.open() == []
    hub.bus.fire("uptime_updated", {**young, "uptime_percent": 95.0, "window_min": 120.0})
    await hub.block_till_done()
    (alert,) = manager.open()
    assert alert.key == "uptime:port1"


async def test_rules_turned_off_raise_nothing(start: Start) -> None:
    hub, clock, manager = await start(
        """
        station_offline: {enabled: false}
        connector_faulted: false
        security_event: {enabled: false}
        uptime_below_target: {enabled: false}
        """
    )
    fire_charger_event(hub, "offline", station_id="st1")
    fire_charger_event(
        hub,
        "fault",
        station_id="st1",
        device_id="c1",
        data={"port": 1, "status": "Faulted", "error_code": "X"},
    )
    security_log(hub).record("tamper", "bad", severity=Severity.CRITICAL)
    hub.bus.fire("uptime_updated", {"device_id": "port1", "uptime_percent": 10.0})
    await clock.advance(3600)
    assert manager.open() == []
    # The services still work.
    await call(hub, "raise", key="manual", title="By hand")
    assert [alert.key for alert in manager.open()] == ["manual"]


async def test_one_rule_off_leaves_the_others_on(start: Start) -> None:
    hub, clock, manager = await start("{station_offline: {enabled: false}}")
    fire_charger_event(hub, "offline", station_id="st1")
    fire_charger_event(
        hub,
        "fault",
        station_id="st1",
        device_id="c1",
        data={"port": 1, "status": "Faulted", "error_code": "X"},
    )
    await clock.advance(3600)
    assert [alert.key for alert in manager.open()] == ["fault:c1"]


def test_config_schema_defaults_and_errors() -> None:
    defaults = CONFIG_SCHEMA({})
    assert defaults == {
        "station_offline": {"enabled": True, "minutes": 10.0},
        "connector_faulted": {"enabled": True},
        "security_event": {"enabled": True, "min_severity": "warning"},
        "uptime_below_target": {"enabled": True, "target": 97.0, "min_hours_in_service": 24.0},
        "charge_success_below_target": {
            "enabled": True,
            "target": 80.0,
            "days": 7.0,
            "min_attempts": 5,
            "interval_minutes": 15.0,
        },
    }
    assert CONFIG_SCHEMA(None) == defaults
    bad: dict[str, Any]
    for bad in (
        {"station_offline": {"minutes": -1}},
        {"security_event": {"min_severity": "loud"}},
        {"uptime_below_target": {"target": 120}},
        {"charge_success_below_target": {"min_attempts": 0}},
        {"charge_success_below_target": {"interval_minutes": 0}},
        {"connector_faulted": {"enabled": "maybe"}},
        {"nonsense": {}},
    ):
        with pytest.raises(vol.Invalid):
            CONFIG_SCHEMA(bad)
