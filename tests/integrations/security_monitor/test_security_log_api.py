"""The one security log: kept in the recorder's database, searched through the API."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from hub.core import Hub
from hub.security import SecurityQuery, Severity, search_security_events, security_log
from hub.testing import ApiUser, Connect, http_url
from tests.integrations.ocpp.conftest import HubFactory, ws_url
from tests.integrations.security_monitor.test_detections import OPEN, boot, now_iso


async def get(hub: Hub, token: str, **params: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{http_url(hub)}/api/security/events",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        ) as answer,
    ):
        return answer.status, await answer.json()


async def reported(cp: Any, event_type: str) -> None:
    await cp.call("SecurityEventNotification", {"type": event_type, "timestamp": now_iso()})


async def test_search_by_station_kind_severity_and_time(
    ocpp_hub: HubFactory, connect: Connect, api_user: ApiUser
) -> None:
    hub = await ocpp_hub(OPEN)
    token = await api_user(hub, "viewer")
    one = await connect(ws_url(hub, "CP-1"))
    two = await connect(ws_url(hub, "CP-2"))
    await boot(one)
    await boot(two, serial="SN-2")
    await reported(one, "TamperDetectionActivated")
    await reported(one, "InvalidMessages")
    middle = datetime.now(UTC).timestamp()
    await reported(two, "SettingSystemTime")
    await reported(two, "InvalidMessages")

    status, events = await get(hub, token, station="CP-1")
    assert status == 200
    assert [e["data"]["type"] for e in events] == ["InvalidMessages", "TamperDetectionActivated"]
    assert {e["source"] for e in events} == {"charger"}
    _, critical = await get(hub, token, severity="critical", kind="ocpp_charger_security_event")
    assert [(e["charge_point_id"], e["data"]["type"]) for e in critical] == [
        ("CP-2", "SettingSystemTime"),
        ("CP-1", "TamperDetectionActivated"),
    ]
    since = datetime.fromtimestamp(middle, UTC).isoformat()
    _, later = await get(hub, token, since=since, kind="ocpp_charger_security_event")
    assert [e["charge_point_id"] for e in later] == ["CP-2", "CP-2"]
    _, earlier = await get(hub, token, until=since, station="CP-2")
    assert earlier == []
    # Read from the recorder's table: what the ring of recent events holds is not the source.
    rows = sqlite3.connect(hub.config_dir / "evhub.db").execute(
        "SELECT charge_point_id, severity, source FROM security_events"
        " WHERE kind = 'ocpp_charger_security_event' ORDER BY time"
    )
    assert [tuple(r) for r in rows] == [
        ("CP-1", "critical", "charger"),
        ("CP-1", "warning", "charger"),
        ("CP-2", "critical", "charger"),
        ("CP-2", "warning", "charger"),
    ]
    security_log(hub).events.clear()
    _, still = await get(hub, token, station="CP-2", severity="warning")
    assert len(still) == 2


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"severity": "urgent"}, "severity must be one of"),
        ({"since": "yesterday"}, "since must be an ISO 8601 time"),
        ({"limit": "0"}, "limit must be between"),
    ],
)
async def test_bad_search_parameters_are_a_400(
    ocpp_hub: HubFactory, api_user: ApiUser, params: dict[str, str], reason: str
) -> None:
    hub = await ocpp_hub(OPEN)
    status, answer = await get(hub, await api_user(hub, "viewer"), **params)
    assert status == 400
    assert reason in str(answer)


async def test_the_recent_ring_answers_without_a_recorder(ocpp_hub: HubFactory) -> None:
    hub = await ocpp_hub(OPEN, extra="recorder: false\n")
    log = security_log(hub)
    log.record("a", "one", charge_point_id="CP-1", severity=Severity.INFO)
    log.record("b", "two", charge_point_id="CP-1", severity=Severity.CRITICAL)
    log.record("b", "three", charge_point_id="CP-2", severity=Severity.CRITICAL)
    found = await search_security_events(
        hub, SecurityQuery(charge_point_id="CP-1", min_severity=Severity.WARNING)
    )
    assert [e["message"] for e in found] == ["two"]
    newest = await search_security_events(hub, SecurityQuery(kind="b", limit=1))
    assert [e["message"] for e in newest] == ["three"]
