"""The WebSocket API over a real socket: auth, commands, compact state diffs, bad input."""

from __future__ import annotations

from typing import Any

import aiohttp

from hub.security import recent_audit
from tests.hub.http.conftest import PASSWORD, Api


async def _connect(api: Api, session: aiohttp.ClientSession, role: str) -> Any:
    ws = await session.ws_connect(f"{api.url}/api/websocket")
    hello = await ws.receive_json()
    assert hello["type"] == "auth_required"
    assert hello["version"]
    await ws.send_json({"type": "auth", "access_token": api.tokens[role]})
    ok = await ws.receive_json()
    assert ok["type"] == "auth_ok"
    assert ok["user"]["role"] == role
    return ws


async def test_auth_with_a_bad_token_is_refused_and_closed(
    api: Api, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(f"{api.url}/api/websocket") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": "evh_wrong"})
        answer = await ws.receive_json()
        assert answer["type"] == "auth_invalid"
        closing = await ws.receive()
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    async with session.ws_connect(f"{api.url}/api/websocket") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth"})  # no cookie, no token
        assert (await ws.receive_json())["type"] == "auth_invalid"


async def test_auth_with_the_session_cookie(api: Api) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(
            f"{api.url}/api/auth/login", json={"username": "viewer_user", "password": PASSWORD}
        ) as resp:
            assert resp.status == 200
        async with client.ws_connect(f"{api.url}/api/websocket") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth"})
            answer = await ws.receive_json()
            assert answer["type"] == "auth_ok"
            assert answer["user"]["username"] == "viewer_user"
        # A page of another origin cannot use the cookie.
        async with client.ws_connect(
            f"{api.url}/api/websocket", headers={"Origin": "https://evil.example"}
        ) as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth"})
            assert (await ws.receive_json())["type"] == "auth_invalid"


async def test_bad_input_gets_error_messages_and_the_socket_stays(
    api: Api, session: aiohttp.ClientSession
) -> None:
    ws = await _connect(api, session, "viewer")
    try:
        await ws.send_str("{not json")
        error = await ws.receive_json()
        assert error["success"] is False
        assert error["error"]["code"] == "invalid_format"
        await ws.send_json([1, 2])
        assert (await ws.receive_json())["error"]["code"] == "invalid_format"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["error"]["code"] == "invalid_format"
        await ws.send_json({"id": 1, "type": "no_such_command"})
        assert (await ws.receive_json())["error"]["code"] == "unknown_command"
        await ws.send_json({"id": 1, "type": "ping"})
        assert (await ws.receive_json())["error"]["code"] == "id_reuse"
        await ws.send_json({"id": 2, "type": "subscribe_entities", "entity_ids": "sensor.x"})
        assert (await ws.receive_json())["error"]["code"] == "invalid_format"
        await ws.send_json({"id": 3, "type": "call_service", "domain": 5, "service": "x"})
        assert (await ws.receive_json())["error"]["code"] == "invalid_format"
        await ws.send_json({"id": 4, "type": "unsubscribe_events", "subscription": 99})
        assert (await ws.receive_json())["error"]["code"] == "not_found"
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive_json())["error"]["code"] == "invalid_format"
        await ws.send_json({"id": 5, "type": "ping"})
        assert await ws.receive_json() == {"id": 5, "type": "pong"}
    finally:
        await ws.close()


async def test_subscribe_entities_sends_initial_states_then_compact_diffs(
    api: Api, session: aiohttp.ClientSession
) -> None:
    hub = api.hub
    hub.states.set("sensor.bay_1_power", "10", {"unit_of_measurement": "W", "phase": "L1"})
    hub.states.set("sensor.other", "x")
    ws = await _connect(api, session, "viewer")
    try:
        await ws.send_json(
            {
                "id": 1,
                "type": "subscribe_entities",
                "entity_ids": ["sensor.bay_1_power", "sensor.new"],
            }
        )
        assert await ws.receive_json() == {
            "id": 1, "type": "result", "success": True, "result": None,
        }  # fmt: skip
        initial = await ws.receive_json()
        added = initial["event"]["a"]
        assert set(added) == {"sensor.bay_1_power"}
        assert added["sensor.bay_1_power"]["s"] == "10"
        assert added["sensor.bay_1_power"]["a"] == {"unit_of_measurement": "W", "phase": "L1"}
        assert isinstance(added["sensor.bay_1_power"]["lc"], float)

        old = hub.states.get("sensor.bay_1_power")
        assert old is not None
        hub.states.set("sensor.other", "y")  # not subscribed
        hub.states.set("sensor.bay_1_power", "20", {"unit_of_measurement": "W"})
        change = await ws.receive_json()
        diff = change["event"]["c"]["sensor.bay_1_power"]
        assert diff["+"]["s"] == "20"
        assert "a" not in diff["+"]  # unit unchanged
        assert diff["-"] == {"a": ["phase"]}
        assert diff["+"]["lc"] > old.last_changed_ts

        hub.states.set("sensor.bay_1_power", "20", {"unit_of_measurement": "kW"})
        diff = (await ws.receive_json())["event"]["c"]["sensor.bay_1_power"]
        assert diff["+"]["a"] == {"unit_of_measurement": "kW"}
        assert "s" not in diff["+"]
        assert "lc" not in diff["+"]

        hub.states.set("sensor.new", "on")
        assert (await ws.receive_json())["event"]["a"]["sensor.new"]["s"] == "on"
        hub.states.remove("sensor.new")
        assert (await ws.receive_json())["event"] == {"r": ["sensor.new"]}

        await ws.send_json({"id": 2, "type": "get_states"})
        states = await ws.receive_json()
        assert {s["entity_id"] for s in states["result"]} == {
            "sensor.bay_1_power", "sensor.other",
        }  # fmt: skip
    finally:
        await ws.close()


async def test_subscribe_events_and_unsubscribe(api: Api, session: aiohttp.ClientSession) -> None:
    ws = await _connect(api, session, "viewer")
    try:
        await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "audit_entry"})
        assert (await ws.receive_json())["error"]["code"] == "forbidden"
        await ws.send_json({"id": 2, "type": "subscribe_events", "event_type": "alert_raised"})
        assert (await ws.receive_json())["success"] is True
        api.hub.bus.fire("alert_raised", {"key": "k1"})
        event = (await ws.receive_json())["event"]
        assert event["event_type"] == "alert_raised"
        assert event["data"] == {"key": "k1"}
        assert set(event["context"]) >= {"id", "user_id"}
        await ws.send_json({"id": 3, "type": "unsubscribe_events", "subscription": 2})
        assert (await ws.receive_json())["success"] is True
        api.hub.bus.fire("alert_raised", {"key": "k2"})
        await ws.send_json({"id": 4, "type": "ping"})
        assert await ws.receive_json() == {"id": 4, "type": "pong"}
    finally:
        await ws.close()


async def test_call_service_checks_the_role_and_is_audited(
    api: Api, session: aiohttp.ClientSession
) -> None:
    viewer = await _connect(api, session, "viewer")
    operator = await _connect(api, session, "operator")
    try:
        call = {
            "type": "call_service",
            "domain": "alert",
            "service": "raise",
            "service_data": {"key": "door", "title": "Door open"},
        }
        await viewer.send_json({"id": 1, **call})
        refused = await viewer.receive_json()
        assert refused["success"] is False
        assert refused["error"]["code"] == "forbidden"
        await operator.send_json({"id": 1, **call})
        done = await operator.receive_json()
        assert done["success"] is True
        assert done["result"]["result"]["key"] == "door"
        await operator.send_json({"id": 2, **call, "service_data": {"key": 5}})
        invalid = await operator.receive_json()
        assert invalid["error"]["code"] == "invalid"
        await operator.send_json({"id": 3, **call, "domain": "nope"})
        assert (await operator.receive_json())["error"]["code"] == "forbidden"  # admin only
    finally:
        await viewer.close()
        await operator.close()
    entries = [e for e in recent_audit(api.hub) if e["action"] == "alert.raise"]
    results = sorted(e["result"].split(":")[0] for e in entries)
    assert results == ["error", "error", "ok"]
    ok = next(e for e in entries if e["result"] == "ok")
    assert ok["username"] == "operator_user"
    assert ok["source"] == "127.0.0.1"
