"""Access, tried from outside: secrets in events, subscriptions by role, rights that change
under an open socket, token expiry, bans behind NAT and proxies, hostile paths, headers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import voluptuous as vol

from hub.auth import auth_manager
from hub.bootstrap import new_hub
from hub.clock import use_manual_clock
from hub.core import ServiceCall
from hub.exceptions import HubError
from hub.http import DATA_HTTP
from hub.redact import REDACTED, Secret
from hub.security import recent_audit, security_log
from integrations.recorder import get_recorder
from tests.hub.http.conftest import PASSWORD, Api, make_users, start_api
from tests.integrations.ocpp.conftest import (  # noqa: F401 - fixtures used by the tests
    Connect,
    HubFactory,
    connect,
    ocpp_hub,
    ws_url,
)

OCPP = """
listeners:
  - port: 0
    host: 127.0.0.1
    security_profile: 0
unknown_chargers: accept
"""
AUTH_KEY = "0123456789abcdef-rotated-key"
FTP_PASSWORD = "ftp-Pa55-word"
VAULT_CODE = "vault-code-99187"


async def _ws(url: str, session: aiohttp.ClientSession, token: str) -> Any:
    ws = await session.ws_connect(f"{url}/api/websocket")
    assert (await ws.receive_json())["type"] == "auth_required"
    await ws.send_json({"type": "auth", "access_token": token})
    assert (await ws.receive_json())["type"] == "auth_ok"
    return ws


async def _command(ws: Any, msg: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json(msg)
    while True:
        answer: dict[str, Any] = await ws.receive_json(timeout=5)
        if answer.get("id") == msg["id"] and answer["type"] == "result":
            return answer


async def _events(ws: Any, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < count:
        message = await ws.receive_json(timeout=5)
        if message["type"] == "event":
            found.append(message["event"])
    return found


def _db_text(config_dir: Path) -> str:
    """Every byte of the recorder's SQLite files, as text (secrets must be in none)."""
    return "".join(
        path.read_bytes().decode("latin-1")
        for path in config_dir.iterdir()
        if path.name.startswith("evhub.db")
    )


# Secrets ----------------------------------------------------------------------------------


async def test_service_secrets_never_reach_subscribers_the_events_table_or_the_audit(
    ocpp_hub: HubFactory,  # noqa: F811
    connect: Connect,  # noqa: F811
    tmp_path: Path,
) -> None:
    hub = await ocpp_hub(OCPP)
    url = hub.data[DATA_HTTP].url
    tokens, _ids = await make_users(hub)
    charger = await connect(ws_url(hub, "CP-SEC"))
    await charger.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    charger.handlers["GetDiagnostics"] = lambda _payload: {"fileName": "diag.zip"}

    async def unlock(call: ServiceCall) -> None:
        raise HubError(f"the vault refused code {call.data['code']}")

    # A service of an integration that declares its secret field.
    hub.services.register("vault", "unlock", unlock, {vol.Required("code"): Secret(str)})
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    async with aiohttp.ClientSession() as session:
        subscriber = await _ws(url, session, tokens["admin"])
        subscribed = await _command(
            subscriber, {"id": 1, "type": "subscribe_events", "event_type": "call_service"}
        )
        assert subscribed["success"]
        calls = [
            ("change_configuration", {"key": "AuthorizationKey", "value": AUTH_KEY}),
            ("get_diagnostics", {"location": f"ftp://diag:{FTP_PASSWORD}@192.0.2.10/diag"}),
        ]
        for service, data in calls:
            async with session.post(
                f"{url}/api/services/ocpp/{service}",
                json={"data": {"charge_point_id": "CP-SEC", **data}},
                headers=admin,
            ) as resp:
                assert resp.status == 200, await resp.text()
        async with session.post(
            f"{url}/api/services/vault/unlock", json={"data": {"code": VAULT_CODE}}, headers=admin
        ) as resp:
            assert resp.status == 502
        events = await _events(subscriber, 3)
        await subscriber.close()

    # The charger got the values in clear: only what is published is redacted.
    sent = dict(charger.received)
    assert sent["ChangeConfiguration"] == {"key": "AuthorizationKey", "value": AUTH_KEY}
    assert FTP_PASSWORD in sent["GetDiagnostics"]["location"]

    data = [event["data"]["service_data"] for event in events]
    assert data[0]["key"] == "AuthorizationKey"
    assert data[0]["value"] == REDACTED
    assert data[1]["location"] == f"ftp://diag:{REDACTED}@192.0.2.10/diag"
    assert data[2] == {"code": REDACTED}
    for secret in (AUTH_KEY, FTP_PASSWORD, VAULT_CODE):
        assert secret not in str(events)

    recorder = get_recorder(hub)
    await recorder.flush()
    rows = await hub.run_in_executor(_call_service_rows, tmp_path / "evhub.db")
    assert len(rows) == 3
    assert all(REDACTED in row for row in rows)
    audit = await recorder.audit(limit=20)
    assert {"ocpp.change_configuration", "ocpp.get_diagnostics", "vault.unlock"} <= {
        row["action"] for row in audit
    }
    refused = next(row for row in audit if row["action"] == "vault.unlock")
    assert refused["result"] == f"error: the vault refused code {REDACTED}"
    for secret in (AUTH_KEY, FTP_PASSWORD, VAULT_CODE):
        assert secret not in str(rows)
        assert secret not in str(audit)
        assert secret not in str(recent_audit(hub))
        assert secret not in _db_text(tmp_path)


def _call_service_rows(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [
            row[0]
            for row in conn.execute("SELECT data FROM events WHERE event_type = 'call_service'")
        ]


# Subscriptions by role ----------------------------------------------------------------------


async def test_event_subscriptions_are_scoped_by_role(api: Api) -> None:
    admin_only = ("call_service", "audit_entry", "*", "ocpp_data_transfer", "integration_failed")
    async with aiohttp.ClientSession() as session:
        for role in ("viewer", "operator"):
            ws = await _ws(api.url, session, api.tokens[role])
            msg_id = 0
            for event_type in admin_only:
                msg_id += 1
                answer = await _command(
                    ws, {"id": msg_id, "type": "subscribe_events", "event_type": event_type}
                )
                assert not answer["success"], (role, event_type)
                assert answer["error"]["code"] == "forbidden"
            for event_type in ("state_changed", "charger_event", "security_event", "alert_raised"):
                msg_id += 1
                answer = await _command(
                    ws, {"id": msg_id, "type": "subscribe_events", "event_type": event_type}
                )
                assert answer["success"], (role, event_type)
            await ws.close()
        ws = await _ws(api.url, session, api.tokens["admin"])
        answer = await _command(
            ws, {"id": 1, "type": "subscribe_events", "event_type": "call_service"}
        )
        assert answer["success"]
        await ws.close()


async def test_failed_login_usernames_are_shown_to_admins_only(api: Api) -> None:
    typed = "MySecretPassw0rd"  # a password typed into the username field
    async with aiohttp.ClientSession() as session:
        sockets = {role: await _ws(api.url, session, api.tokens[role]) for role in api.tokens}
        for ws in sockets.values():
            answer = await _command(
                ws, {"id": 1, "type": "subscribe_events", "event_type": "security_event"}
            )
            assert answer["success"]
        async with session.post(
            f"{api.url}/api/auth/login", json={"username": typed, "password": "whatever-x"}
        ) as resp:
            assert resp.status == 401
        for role, ws in sockets.items():
            (event,) = await _events(ws, 1)
            assert event["data"]["kind"] == "login_failed"
            if role == "admin":
                assert event["data"]["data"]["username"] == typed
            else:
                assert typed not in str(event), role
            await ws.close()
        for role in api.tokens:
            async with session.get(
                f"{api.url}/api/security/events", headers=api.headers(role)
            ) as resp:
                body = await resp.json()
            failed = [e for e in body if e["kind"] == "login_failed"]
            assert len(failed) == 1
            assert (typed in str(failed)) is (role == "admin"), role


# Rights under an open socket ----------------------------------------------------------------


@pytest.mark.parametrize("change", ["demote", "revoke", "delete", "password"])
async def test_an_open_websocket_loses_rights_when_they_change(api: Api, change: str) -> None:
    auth = auth_manager(api.hub)
    pokes: list[str | None] = []
    api.hub.services.register("test", "poke", lambda call: pokes.append(call.context.user_id))
    user = await auth.add_user("second_admin", PASSWORD, "admin")
    value, token = await auth.create_token(user, "socket")
    poke = {"type": "call_service", "domain": "test", "service": "poke"}
    async with aiohttp.ClientSession() as session:
        ws = await _ws(api.url, session, value)
        assert (await _command(ws, {"id": 1, "type": "get_states"}))["success"]
        assert (await _command(ws, {"id": 2, **poke}))["success"]
        assert pokes == [user.id]
        subscribed = await _command(
            ws, {"id": 3, "type": "subscribe_events", "event_type": "call_service"}
        )
        assert subscribed["success"]

        await _change(api, session, change, user.id, token.id)
        # A read and a service call on the same socket: refused, the socket closed.
        await ws.send_json({"id": 4, "type": "get_states"})
        await ws.send_json({"id": 5, **poke})
        await api.hub.services.call("test", "poke")  # an admin-only event it held
        received = []
        while True:
            message = await ws.receive(timeout=5)
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            received.append(message.json())
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert "revoked" in str(message.extra)
        assert not [m for m in received if m.get("success") or m["type"] == "event"], received
        assert pokes == [user.id, None]  # the test's own call only

        # Authenticating again: with what is left of the rights, if anything.
        again = await session.ws_connect(f"{api.url}/api/websocket")
        await again.receive_json()
        await again.send_json({"type": "auth", "access_token": value})
        answer = await again.receive_json()
        if change != "demote":
            assert answer["type"] == "auth_invalid"
        else:
            assert answer["user"]["role"] == "viewer"
            assert (await _command(again, {"id": 1, "type": "get_states"}))["success"]
            refused = await _command(again, {"id": 2, **poke})
            assert refused["error"]["code"] == "forbidden"
            refused = await _command(
                again, {"id": 3, "type": "subscribe_events", "event_type": "call_service"}
            )
            assert refused["error"]["code"] == "forbidden"
        await again.close()
    assert len(pokes) == 2


async def test_a_token_expiring_under_an_open_websocket_closes_it(api: Api) -> None:
    clock = use_manual_clock(api.hub)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{api.url}/api/tokens",
            json={"name": "short", "lifespan_days": 1},
            headers=api.headers("operator"),
        ) as resp:
            assert resp.status == 201
            created = await resp.json()
        ws = await _ws(api.url, session, created["token"])
        assert (await _command(ws, {"id": 1, "type": "get_states"}))["success"]
        await clock.advance(86400 + 1)
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


async def _change(api: Api, session: aiohttp.ClientSession, change: str, user_id: str,
                  token_id: str) -> None:  # fmt: skip
    admin = api.headers("admin")
    if change == "demote":
        request = session.patch(
            f"{api.url}/api/users/{user_id}", json={"role": "viewer"}, headers=admin
        )
    elif change == "password":
        request = session.patch(
            f"{api.url}/api/users/{user_id}", json={"password": "a new long password"},
            headers=admin,
        )  # fmt: skip
    elif change == "delete":
        request = session.delete(f"{api.url}/api/users/{user_id}", headers=admin)
    else:
        request = session.delete(f"{api.url}/api/tokens/{token_id}", headers=admin)
    async with request as resp:
        assert resp.status in (200, 204), await resp.text()


# Tokens -------------------------------------------------------------------------------------


async def test_tokens_expire_and_a_new_password_revokes_them(api: Api) -> None:
    clock = use_manual_clock(api.hub)
    viewer = api.headers("viewer")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        for bad in (0, -1, "7", True, 100_000, None):
            body: dict[str, Any] = {"name": "bad", "lifespan_days": bad}
            async with session.post(f"{api.url}/api/tokens", json=body, headers=viewer) as resp:
                assert resp.status == (201 if bad is None else 400), bad
        async with session.post(
            f"{api.url}/api/tokens", json={"name": "week", "lifespan_days": 7}, headers=viewer
        ) as resp:
            assert resp.status == 201
            week = await resp.json()
        assert week["expires_at"] == pytest.approx(clock.time() + 7 * 86400)
        week_auth = {"Authorization": f"Bearer {week['token']}"}
        async with session.get(f"{api.url}/api/tokens", headers=week_auth) as resp:
            listed = {t["name"]: t for t in await resp.json()}
        assert listed["week"]["expires_at"] == week["expires_at"]
        assert listed["viewer test token"]["expires_at"] is None
        await clock.advance(7 * 86400 - 60)
        async with session.get(f"{api.url}/api/auth/me", headers=week_auth) as resp:
            assert resp.status == 200
        await clock.advance(61)
        async with session.get(f"{api.url}/api/auth/me", headers=week_auth) as resp:
            assert resp.status == 401
        async with session.get(f"{api.url}/api/auth/me", headers=viewer) as resp:
            assert resp.status == 200  # no lifespan: no expiry

        # A new password ends the user's sessions and revokes their tokens.
        async with session.post(
            f"{api.url}/api/auth/login", json={"username": "viewer_user", "password": PASSWORD}
        ) as resp:
            assert resp.status == 200
        async with session.get(f"{api.url}/api/auth/me") as resp:
            assert resp.status == 200
        async with session.patch(
            f"{api.url}/api/users/{api.user_ids['viewer']}",
            json={"password": "a brand new password"},
            headers=api.headers("admin"),
        ) as resp:
            assert resp.status == 200
        async with session.get(f"{api.url}/api/auth/me") as resp:
            assert resp.status == 401
        async with session.get(f"{api.url}/api/auth/me", headers=viewer) as resp:
            assert resp.status == 401
        async with session.get(f"{api.url}/api/auth/me", headers=api.headers("operator")) as resp:
            assert resp.status == 200  # another user's token is untouched


# Bans ---------------------------------------------------------------------------------------


async def test_wrong_tokens_never_lock_out_a_valid_token_from_the_same_address(
    api: Api,
) -> None:
    async with aiohttp.ClientSession() as session:
        for attempt in range(25):
            async with session.get(
                f"{api.url}/api/states", headers={"Authorization": f"Bearer evh_wrong{attempt}"}
            ) as resp:
                assert resp.status == 401
            ws = await session.ws_connect(f"{api.url}/api/websocket")
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": f"evh_wrong{attempt}"})
            assert (await ws.receive_json())["type"] == "auth_invalid"
            await ws.close()
        async with session.get(f"{api.url}/api/states", headers=api.headers("viewer")) as resp:
            assert resp.status == 200
        ws = await _ws(api.url, session, api.tokens["viewer"])
        await ws.close()
        # Logins from the address are not throttled by them either.
        async with session.post(
            f"{api.url}/api/auth/login", json={"username": "viewer_user", "password": PASSWORD}
        ) as resp:
            assert resp.status == 200
    assert auth_manager(api.hub).banned() == {}
    # Logged without flooding: 50 wrong tokens (HTTP and WebSocket) are the 1st and 10th.
    logged = security_log(api.hub).query(kind="invalid_token")
    assert [event.data["count"] for event in logged] == [1, 10]
    assert logged[-1].severity == "warning"


async def test_a_login_ban_spares_valid_tokens_and_an_admin_lifts_it(tmp_path: Path) -> None:
    hub = await start_api(tmp_path, "  login_attempts_threshold: 3\n")
    clock = use_manual_clock(hub)
    tokens, _ids = await make_users(hub)
    url = hub.data[DATA_HTTP].url
    wrong = {"username": "viewer_user", "password": "not the password"}
    right = {"username": "viewer_user", "password": PASSWORD}
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.post(f"{url}/api/auth/login", json=wrong) as resp:
                    assert resp.status == 401
                await clock.advance(60)  # past the throttle
            async with session.post(f"{url}/api/auth/login", json=right) as resp:
                assert resp.status == 429
                assert (await resp.json())["error"] == "banned"
            # Another user behind the same address keeps working with a token.
            for role in ("viewer", "admin"):
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                async with session.get(f"{url}/api/states", headers=headers) as resp:
                    assert resp.status == 200
            ws = await _ws(url, session, tokens["viewer"])
            await ws.close()
            async with session.get(f"{url}/api/bans", headers=admin) as resp:
                bans = await resp.json()
            assert [ban["address"] for ban in bans] == ["127.0.0.1"]
            assert bans[0]["until"] == pytest.approx(clock.time() + 3600 - 60, abs=1)
            viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
            async with session.delete(f"{url}/api/bans/127.0.0.1", headers=viewer) as resp:
                assert resp.status == 403
            async with session.delete(f"{url}/api/bans/127.0.0.1", headers=admin) as resp:
                assert resp.status == 204
            async with session.delete(f"{url}/api/bans/127.0.0.1", headers=admin) as resp:
                assert resp.status == 404
            async with session.post(f"{url}/api/auth/login", json=right) as resp:
                assert resp.status == 200
        unbans = [e for e in recent_audit(hub) if e["action"] == "ban.remove"]
        assert [(e["username"], e["target"], e["result"]) for e in unbans] == [
            ("admin_user", "127.0.0.1", "error: not banned"),
            ("admin_user", "127.0.0.1", "ok"),
        ]
    finally:
        await hub.stop()


async def test_x_forwarded_for_is_honoured_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    hub = await start_api(
        tmp_path,
        "  login_attempts_threshold: 1\n  trusted_proxies: [127.0.0.0/8, 10.0.0.0/8]\n",
    )
    url = hub.data[DATA_HTTP].url
    wrong = {"username": "nobody", "password": "not the password"}
    try:
        async with aiohttp.ClientSession() as session:
            # The client wrote the left part; the right-most untrusted hop is the client.
            forwarded = {"X-Forwarded-For": "198.51.100.66, 203.0.113.7, 10.1.2.3"}
            async with session.post(f"{url}/api/auth/login", json=wrong, headers=forwarded) as resp:
                assert resp.status == 401
            assert auth_manager(hub).is_banned("203.0.113.7")
            assert not auth_manager(hub).is_banned("127.0.0.1")
            # The proxy itself, and other clients behind it, may still log in.
            async with session.post(
                f"{url}/api/auth/login",
                json=wrong,
                headers={"X-Forwarded-For": "203.0.113.8"},
            ) as resp:
                assert resp.status == 401
            async with session.post(f"{url}/api/auth/login", json=wrong, headers=forwarded) as resp:
                assert resp.status == 429
            for bad in ("not-an-address", "203.0.113.7:443", ""):
                async with session.get(
                    f"{url}/api/health", headers={"X-Forwarded-For": bad}
                ) as resp:
                    assert resp.status == 400, bad
        remotes = [e.remote for e in security_log(hub).query(kind="login_failed")]
        assert remotes == ["203.0.113.7", "203.0.113.8"]
    finally:
        await hub.stop()

    # Without trusted proxies the header is whatever the client says: ignored.
    untrusted = tmp_path / "untrusted"
    untrusted.mkdir()
    hub = await start_api(untrusted, "  login_attempts_threshold: 1\n")
    url = hub.data[DATA_HTTP].url
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{url}/api/auth/login",
                json=wrong,
                headers={"X-Forwarded-For": "203.0.113.9"},
            ) as resp:
                assert resp.status == 401
            async with session.get(
                f"{url}/api/health", headers={"X-Forwarded-For": "garbage"}
            ) as resp:
                assert resp.status == 200
        assert auth_manager(hub).is_banned("127.0.0.1")
        assert not auth_manager(hub).is_banned("203.0.113.9")
    finally:
        await hub.stop()


# Hostile requests -----------------------------------------------------------------------------


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.fixture
async def dashboard_api(tmp_path: Path) -> Any:
    """A hub serving a small built frontend, with its users."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>evhub</title>")
    (dist / "assets" / "app-1234.js").write_text("console.log('hi')")
    hub = await start_api(tmp_path, f"  frontend_dir: {dist}\n")
    tokens, ids = await make_users(hub)
    yield Api(hub, hub.data[DATA_HTTP].url, tokens, ids)
    await hub.stop()


async def test_nul_and_control_characters_in_paths_are_400_not_500(
    dashboard_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    port = dashboard_api.hub.data[DATA_HTTP].port
    caplog.set_level(logging.INFO)
    paths = (
        b"/%00",
        b"/assets/%00",
        b"/index.html%00.js",
        b"/api/states/sensor.x%00",
        b"/%0a",
        b"/?x=%00",
        b"/assets/" + b"a" * 4000,  # longer than a file name may be
    )
    for path in paths:
        answer = await _raw(
            port, b"GET " + path + b" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        status = answer.split(b"\r\n", 1)[0]
        expected = b"200" if path.startswith(b"/assets/aaa") else b"400"
        assert status.split()[1] == expected, (path, answer[:300])
        if expected == b"400":
            assert b'"error":"bad_request"' in answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + b"b" * 20_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n"
        + b"".join(b"X-%d: v\r\n" % i for i in range(500))
        + b"\r\n",
    ],
    ids=["request-line", "header-line", "header-count"],
)
async def test_oversized_requests_are_refused_with_one_log_line(
    dashboard_api: Api, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    port = dashboard_api.hub.data[DATA_HTTP].port
    caplog.set_level(logging.DEBUG)
    # Sent in pieces, as a slow client would.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for start in range(0, len(request_bytes), 1000):
        writer.write(request_bytes[start : start + 1000])
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.split()[1] in (b"400", b"414", b"431"), answer[:200]
    records = [r for r in caplog.records if r.name.startswith(("aiohttp", "hub.http"))]
    assert len(records) == 1, [r.getMessage() for r in records]
    (record,) = records
    assert record.exc_info is None
    assert record.levelno == logging.INFO
    assert "127.0.0.1" in record.getMessage()
    assert len(record.getMessage()) < 300
    assert "\n" not in record.getMessage()


async def test_slow_requests_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hub.http as http_module

    monkeypatch.setattr(http_module, "KEEPALIVE_TIMEOUT", 1.0)
    (tmp_path / "configuration.yaml").write_text(
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
    )
    hub = new_hub(tmp_path)
    await hub.start()
    try:
        port = hub.data[DATA_HTTP].port
        sockets = []
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            await writer.drain()
            sockets.append((reader, writer))
        for reader, writer in sockets:
            # Closed by the server, the request never completed.
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
    finally:
        await hub.stop()


async def test_security_headers_on_the_dashboard_and_the_api(dashboard_api: Api) -> None:
    async with aiohttp.ClientSession() as session:
        for path, headers, status in (
            ("/", {}, 200),
            ("/stations/x", {}, 200),
            ("/assets/app-1234.js", {}, 200),
            ("/api/health", {}, 200),
            ("/api/states", dashboard_api.headers("viewer"), 200),
            ("/api/states", {}, 401),
            ("/api/no/such/thing", {}, 404),
        ):
            async with session.get(f"{dashboard_api.url}{path}", headers=headers) as resp:
                assert resp.status == status, path
                csp = resp.headers.get("Content-Security-Policy", "")
                assert "default-src 'self'" in csp, path
                assert "script-src 'self'" in csp
                assert "'unsafe-inline'" not in csp
                assert "'unsafe-eval'" not in csp
                assert "frame-ancestors 'none'" in csp
                assert resp.headers["X-Frame-Options"] == "DENY"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.headers["Referrer-Policy"] == "no-referrer"
                assert "Strict-Transport-Security" not in resp.headers  # plain HTTP
