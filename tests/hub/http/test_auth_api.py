"""Onboarding, login with cookie and CSRF, logout, users, tokens, bans and their audit."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from hub.http import DATA_HTTP
from hub.security import recent_audit, security_log
from integrations.recorder import get_recorder
from tests.hub.http.conftest import PASSWORD, Api, start_api


async def test_onboarding_creates_the_admin_once_and_logs_in(tmp_path: Path) -> None:
    hub = await start_api(tmp_path)
    url = hub.data[DATA_HTTP].url
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            async with client.get(f"{url}/api/onboarding") as resp:
                assert await resp.json() == {"needed": True}
            async with client.post(
                f"{url}/api/onboarding", json={"username": "alice", "password": "short"}
            ) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"] == "invalid"
            async with client.post(
                f"{url}/api/onboarding", json={"username": "alice", "password": PASSWORD}
            ) as resp:
                assert resp.status == 200
                body = await resp.json()
                cookie = resp.headers["Set-Cookie"]
            assert body["user"]["username"] == "alice"
            assert body["user"]["role"] == "admin"
            assert "HttpOnly" in cookie
            assert "SameSite=Strict" in cookie
            assert "Path=/" in cookie
            assert "Secure" not in cookie  # plain HTTP here; see test_tls for Secure
            async with client.get(f"{url}/api/auth/me") as resp:
                assert (await resp.json())["csrf_token"] == body["csrf_token"]
            client.cookie_jar.clear()
            async with client.post(
                f"{url}/api/onboarding", json={"username": "mallory", "password": PASSWORD}
            ) as resp:
                assert resp.status == 409
            async with client.get(f"{url}/api/onboarding") as resp:
                assert await resp.json() == {"needed": False}
    finally:
        await hub.stop()
    actions = [entry["action"] for entry in recent_audit(hub)]
    assert "onboarding" in actions


async def test_cookie_session_needs_csrf_on_changes(api: Api) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(
            f"{api.url}/api/auth/login", json={"username": "admin_user", "password": PASSWORD}
        ) as resp:
            assert resp.status == 200
            csrf = (await resp.json())["csrf_token"]
        async with client.get(f"{api.url}/api/users") as resp:
            assert resp.status == 200
            assert {u["username"] for u in await resp.json()} == {
                "admin_user", "operator_user", "viewer_user",
            }  # fmt: skip
        new_user = {"username": "dave", "password": PASSWORD, "role": "viewer"}
        async with client.post(f"{api.url}/api/users", json=new_user) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"] == "csrf"
        async with client.post(
            f"{api.url}/api/users", json=new_user, headers={"X-CSRF-Token": "forged"}
        ) as resp:
            assert resp.status == 403
        async with client.post(
            f"{api.url}/api/users", json=new_user, headers={"X-CSRF-Token": csrf}
        ) as resp:
            assert resp.status == 201
            dave = await resp.json()
        assert set(dave) == {"id", "username", "role", "created_at"}
        async with client.patch(
            f"{api.url}/api/users/{dave['id']}",
            json={"role": "operator"},
            headers={"X-CSRF-Token": csrf},
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["role"] == "operator"
        async with client.delete(
            f"{api.url}/api/users/{dave['id']}", headers={"X-CSRF-Token": csrf}
        ) as resp:
            assert resp.status == 204
        async with client.post(
            f"{api.url}/api/auth/logout", headers={"X-CSRF-Token": csrf}
        ) as resp:
            assert resp.status == 204
        async with client.get(f"{api.url}/api/auth/me") as resp:
            assert resp.status == 401
    actions = [(e["action"], e["result"]) for e in recent_audit(api.hub)]
    assert ("login", "ok") in actions
    assert ("user.add", "ok") in actions
    assert ("user.update", "ok") in actions
    assert ("user.delete", "ok") in actions
    assert ("logout", "ok") in actions
    login = next(e for e in recent_audit(api.hub) if e["action"] == "login")
    assert login["username"] == "admin_user"
    assert login["source"] == "127.0.0.1"


async def test_tokens_api_shows_a_token_once_and_revokes_it(
    api: Api, session: aiohttp.ClientSession
) -> None:
    viewer = api.headers("viewer")
    async with session.post(f"{api.url}/api/tokens", json={"name": "cli"}, headers=viewer) as resp:
        assert resp.status == 201
        created = await resp.json()
    assert set(created) == {"id", "name", "token", "created_at", "expires_at"}
    assert created["expires_at"] is None
    new = {"Authorization": f"Bearer {created['token']}"}
    async with session.get(f"{api.url}/api/auth/me", headers=new) as resp:
        assert (await resp.json())["user"]["username"] == "viewer_user"
    async with session.get(f"{api.url}/api/tokens", headers=viewer) as resp:
        listed = await resp.json()
    assert {t["name"] for t in listed} == {"viewer test token", "cli"}
    assert all("token" not in t for t in listed)
    assert next(t for t in listed if t["name"] == "cli")["last_used_at"] is not None
    # Someone else's token is not found for a viewer; an admin may revoke it.
    async with session.delete(
        f"{api.url}/api/tokens/{created['id']}", headers=api.headers("operator")
    ) as resp:
        assert resp.status == 404
    async with session.delete(
        f"{api.url}/api/tokens/{created['id']}", headers=api.headers("admin")
    ) as resp:
        assert resp.status == 204
    async with session.get(f"{api.url}/api/auth/me", headers=new) as resp:
        assert resp.status == 401
    revoked = [e for e in recent_audit(api.hub) if e["action"] == "token.revoke"]
    assert [e["result"] for e in revoked] == ["ok", "error: not found"]


async def test_failed_logins_end_in_a_ban_that_is_a_security_event(tmp_path: Path) -> None:
    hub = await start_api(tmp_path, "  login_attempts_threshold: 2\n")
    from hub.auth import auth_manager
    from hub.clock import use_manual_clock

    clock = use_manual_clock(hub)
    await auth_manager(hub).add_user("admin", PASSWORD, "admin")
    url = hub.data[DATA_HTTP].url
    try:
        async with aiohttp.ClientSession() as client:
            wrong = {"username": "admin", "password": "not the password"}
            async with client.post(f"{url}/api/auth/login", json=wrong) as resp:
                assert resp.status == 401
                assert (await resp.json())["error"] == "invalid_credentials"
            async with client.post(f"{url}/api/auth/login", json=wrong) as resp:
                assert resp.status == 429
                assert (await resp.json())["error"] == "throttled"
                assert int(resp.headers["Retry-After"]) >= 1
            await clock.advance(2)
            async with client.post(f"{url}/api/auth/login", json=wrong) as resp:
                assert resp.status == 401
            right = {"username": "admin", "password": PASSWORD}
            async with client.post(f"{url}/api/auth/login", json=right) as resp:
                assert resp.status == 429
                assert (await resp.json())["error"] == "banned"
            # The ban stops password logins; a wrong token is a 401 as from anywhere.
            async with client.get(
                f"{url}/api/states", headers={"Authorization": "Bearer whatever"}
            ) as resp:
                assert resp.status == 401
        bans = security_log(hub).query(kind="login_banned")
        assert len(bans) == 1
        assert bans[0].remote == "127.0.0.1"
        await get_recorder(hub).flush()
        rows = await get_recorder(hub).audit(limit=10)
        assert [r["result"].split(":")[0] for r in rows if r["action"] == "login"] == [
            "error", "error", "error", "error",
        ]  # fmt: skip
    finally:
        await hub.stop()


async def test_unknown_bearer_token_is_401_and_a_security_event(
    api: Api, session: aiohttp.ClientSession
) -> None:
    async with session.get(
        f"{api.url}/api/states", headers={"Authorization": "Bearer evh_guess"}
    ) as resp:
        assert resp.status == 401
    async with session.get(f"{api.url}/api/states", headers={"Authorization": "Basic x"}) as resp:
        assert resp.status == 401
    assert security_log(api.hub).query(kind="invalid_token")[-1].remote == "127.0.0.1"
    assert not security_log(api.hub).query(kind="login_failed")
