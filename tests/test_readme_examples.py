"""The README's three automation examples, as written, run end to end against simulated
chargers speaking real OCPP to the hub, and do what the README says they do:

- ``reset_faulted_once``: a charger that faults gets a Reset over its websocket; when it
  faults again within 10 minutes, a critical alert is raised;
- ``lock_on_tamper``: a charger that reports tampering gets ChangeAvailability Inoperative
  over its websocket, and the operator gets an email;
- ``daily_uptime_report``: at 07:00 in the hub's time zone, an email with each station's
  uptime sensors and the stations below 97 %.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from hub.bootstrap import new_hub
from hub.clock import use_manual_clock
from integrations.alerts import alert_manager
from integrations.automation import traces
from integrations.ocpp.simulator import TAMPER_EVENT, SimulatedChargePoint
from integrations.simulator import DATA_CHARGERS
from tests.integrations.test_notify_integrations import (  # noqa: F401 - the fixture
    Inbox,
    email_section,
    smtp_server,
)

ROOT = Path(__file__).resolve().parents[1]
# Simulated seconds per real second: the fault scenario faults 5 s after boot and again
# every 40 s, the tamper scenario reports 5 s after boot.
SPEED = 25.0
STATIONS = {"CP-1": "Bay 1", "CP-2": "Bay 2", "CP-3": "Bay 3"}
UPTIME_SENSORS = ["sensor.bay_1_uptime", "sensor.bay_2_uptime", "sensor.bay_3_uptime"]


def readme_automations() -> list[dict[str, Any]]:
    text = ROOT.joinpath("README.md").read_text()
    section = text[text.index("## Automations") : text.index("## Alerts")]
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", section, re.S) if "automations:" in b]
    automations: list[dict[str, Any]] = yaml.safe_load(block)["automations"]
    return automations


def zone_where_it_is_six(now: float) -> str:
    """A time zone in which it is now 06:xx, so the 07:00 report is less than an hour away."""
    offset = (6 - datetime.fromtimestamp(now, UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-10 is UTC+10


async def until(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll (real time) until condition() is truthy; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def mails(inbox: Inbox) -> list[email.message.Message]:
    return [email.message_from_bytes(envelope.content) for envelope in inbox.envelopes]


def body(message: email.message.Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return " ".join(payload.decode().split())


def calls(charger: SimulatedChargePoint, action: str) -> list[dict[str, Any]]:
    """What the charger received over its websocket, for one action."""
    return [payload for name, payload in charger.received_calls if name == action]


async def test_readme_examples_run_end_to_end_against_simulated_chargers(
    tmp_path: Path,
    smtp_server: tuple[Inbox, int, Path],  # noqa: F811
) -> None:
    inbox, port, cert = smtp_server
    automations = readme_automations()
    assert [a["id"] for a in automations] == [
        "reset_faulted_once",
        "lock_on_tamper",
        "daily_uptime_report",
    ]
    start = time.time()
    zone = zone_where_it_is_six(start)
    config = {
        "hub": {"time_zone": zone},
        "http": {"server_host": "127.0.0.1", "server_port": 0, "zeroconf": False},
        "ocpp": {
            "listeners": [{"port": 0, "host": "127.0.0.1", "security_profile": 0}],
            "chargers": [{"id": cp_id, "name": name} for cp_id, name in STATIONS.items()],
        },
        # `evhub simulate`'s charge points, run by the hub against its own OCPP listener.
        "simulator": {
            "speed": SPEED,
            "stations": [
                {"id": "CP-1", "version": "1.6", "scenario": "fault"},
                {"id": "CP-2", "version": "2.0.1", "scenario": "tamper"},
                {"id": "CP-3", "version": "1.6", "scenario": "idle"},
            ],
        },
        "automations": automations,
        **email_section(port, cert),
    }
    tmp_path.joinpath("configuration.yaml").write_text(yaml.safe_dump(config))
    hub = new_hub(tmp_path)
    # The hub's clock starts at the real time (the chargers' timestamps are real) and moves
    # only when told, so the 07:00 report comes without waiting for it.
    clock = use_manual_clock(hub, start)
    await hub.start()
    try:
        chargers: list[SimulatedChargePoint] = hub.data[DATA_CHARGERS]
        faulty, tampered, quiet = chargers

        # reset_faulted_once: the fault → a soft Reset over OCPP 1.6; the charger reboots,
        # faults again → the refault alert.
        assert await until(lambda: calls(faulty, "Reset"), "the Reset") == [{"type": "Soft"}]
        station_id = traces(hub, "reset_faulted_once")[0]["trigger"]["station_id"]
        key = f"refault:{station_id}"
        refault = await until(
            lambda: next((a for a in alert_manager(hub).open() if a.key == key), None),
            "the refault alert",
        )
        assert refault.severity == "critical"
        assert refault.title == "CP-1 faults again after a reset"
        first = await until(
            lambda: next(
                (t for t in traces(hub, "reset_faulted_once") if t["outcome"] != "running"),
                None,
            ),
            "the first run to end",
        )
        assert first["error"] is None
        assert first["outcome"] == "finished"
        assert [step["result"] for step in first["steps"] if step["kind"] == "if"] == [True]
        assert faulty.boot_count >= 2  # it did reboot on the Reset

        # lock_on_tamper: the tamper report → ChangeAvailability Inoperative over OCPP
        # 2.0.1 (the whole station) → the email.
        assert await until(
            lambda: calls(tampered, "ChangeAvailability"), "the ChangeAvailability"
        ) == [{"operationalStatus": "Inoperative"}]
        await until(lambda: tampered.status == {1: "Unavailable", 2: "Unavailable"}, "the lock")
        locked = await until(
            lambda: [m for m in mails(inbox) if "locked after" in m["Subject"]], "the lock email"
        )
        assert locked[0]["Subject"] == f"CP-2 locked after {TAMPER_EVENT}"
        assert "unlock with charger.set_availability" in body(locked[0])
        lock_run = traces(hub, "lock_on_tamper")[0]
        assert lock_run["conditions"] == [{"path": "condition/0", "result": True}]
        assert lock_run["outcome"] == "finished"
        # Nobody else was reset or locked.
        assert calls(faulty, "ChangeAvailability") == []
        assert calls(tampered, "Reset") == []
        assert calls(quiet, "Reset") == calls(quiet, "ChangeAvailability") == []

        # daily_uptime_report: the fault and tamper stations leave; at 07:00 (hub time zone)
        # the email reports the three stations' uptime sensors.
        await faulty.stop()
        await tampered.stop()
        assert not [m for m in mails(inbox) if m["Subject"].startswith("evhub uptime")]
        local = datetime.fromtimestamp(clock.time(), ZoneInfo(zone))
        seven = local.replace(hour=7, minute=0, second=0, microsecond=0)
        if seven <= local:
            seven += timedelta(days=1)
        await clock.advance(seven.timestamp() - clock.time() - 1)
        await hub.block_till_done()
        assert not [m for m in mails(inbox) if m["Subject"].startswith("evhub uptime")]
        await clock.advance(2)
        (report,) = await until(
            lambda: [m for m in mails(inbox) if m["Subject"].startswith("evhub uptime")],
            "the daily email",
        )
        await hub.block_till_done()
        assert report["Subject"] == f"evhub uptime {seven.strftime('%Y-%m-%d')}"
        text = body(report)
        below = []
        for entity_id in UPTIME_SENSORS:
            state = hub.states.get(entity_id)
            assert state is not None, entity_id
            year = float(state.state)
            name = state.attributes["friendly_name"]
            assert (
                f"{name}: {state.state} % over 12 months, {state.attributes['month_to_date']} %"
                f" this month ({round(state.attributes['month_t_outage_min'])} min down)"
            ) in text
            if year < 97:
                below.append(entity_id)
        # The two stations gone for the last hour are below the line, the one online is not.
        assert below == UPTIME_SENSORS[:2]
        assert text.endswith(f"Below 97 %: {' '.join(below)}")
        assert traces(hub, "daily_uptime_report")[-1]["outcome"] == "finished"
    finally:
        await hub.stop()
