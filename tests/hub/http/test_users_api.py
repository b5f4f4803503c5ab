"""The users and tokens page's API against a real hub: users, every user's tokens for an
admin, and one's own password change (old + new), each checked for its role and audited."""

from __future__ import annotations

from typing import Any

import aiohttp

from hub.security import recent_audit, security_log
from tests.hub.http.conftest import PASSWORD, Api, request

NEW_PASSWORD = "a much better passphrase"


def audited(api: Api, action: str) -> list[dict[str, Any]]:
    """The audit entries of an action, oldest first."""
    return [e for e in reversed(recent_audit(api.hub, 1000)) if e["action"] == action]


async def test_admin_adds_changes_resets_and_deletes_a_user(
    api: Api, session: aiohttp.ClientSession
) -> None:
    new = {"username": "dana", "password": PASSWORD, "role": "viewer"}
    status, dana = await request(session, api, "POST", "/api/users", "admin", body=new)
    assert status == 201
    assert set(dana) == {"id", "username", "role", "created_at"}
    status, users = await request(session, api, "GET", "/api/users", "admin")
    assert status == 200
    assert [u["username"] for u in users][-1] == "dana"

    status, changed = await request(
        session, api, "PATCH", f"/api/users/{dana['id']}", "admin", body={"role": "operator"}
    )
    assert (status, changed["role"]) == (200, "operator")
    status, _ = await request(
        session, api, "PATCH", f"/api/users/{dana['id']}", "admin", body={"password": NEW_PASSWORD}
    )
    assert status == 200
    async with session.post(
        api.url + "/api/auth/login", json={"username": "dana", "password": NEW_PASSWORD}
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["user"]["role"] == "operator"

    status, _ = await request(session, api, "DELETE", f"/api/users/{dana['id']}", "admin")
    assert status == 204
    status, users = await request(session, api, "GET", "/api/users", "admin")
    assert "dana" not in {u["username"] for u in users}

    assert [e["target"] for e in audited(api, "user.add")] == ["dana (viewer)"]
    assert [e["target"] for e in audited(api, "user.update")] == [
        "dana (role)",
        "dana (password)",
    ]
    assert [(e["target"], e["username"]) for e in audited(api, "user.delete")] == [
        ("dana", "admin_user")
    ]


async def test_the_last_admin_stays_and_bad_input_is_a_clear_4xx(
    api: Api, session: aiohttp.ClientSession
) -> None:
    admin_id = api.user_ids["admin"]
    status, body = await request(session, api, "DELETE", f"/api/users/{admin_id}", "admin")
    assert (status, body["message"]) == (400, "cannot delete the last admin")
    status, body = await request(
        session, api, "PATCH", f"/api/users/{admin_id}", "admin", body={"role": "viewer"}
    )
    assert (status, body["message"]) == (400, "cannot demote the last admin")
    assert [e["result"] for e in audited(api, "user.delete")] == [
        "error: cannot delete the last admin"
    ]

    bad_bodies = [
        ({"username": "eve", "password": PASSWORD, "role": "root"}, "role must be one of"),
        ({"username": "two words", "password": PASSWORD, "role": "viewer"}, "username must be"),
        ({"username": "eve", "password": 12345678, "role": "viewer"}, "password must be"),
        ({"username": "eve", "password": "short", "role": "viewer"}, "password must be"),
        ({"username": "viewer_user", "password": PASSWORD, "role": "viewer"}, "exists already"),
    ]
    for bad, reason in bad_bodies:
        status, body = await request(session, api, "POST", "/api/users", "admin", body=bad)
        assert 400 <= status < 500, bad
        assert reason in body["message"], (bad, body)
    status, body = await request(
        session, api, "PATCH", f"/api/users/{admin_id}", "admin", body={"name": "x"}
    )
    assert (status, body["message"]) == (400, "unknown fields: name")
    for method in ("PATCH", "DELETE"):
        status, body = await request(
            session, api, method, "/api/users/nobody", "admin", body={"role": "viewer"}
        )
        assert (status, body["error"]) == (404, "not_found")

    # A second admin: now the first may be demoted.
    status, second = await request(
        session,
        api,
        "POST",
        "/api/users",
        "admin",
        body={"username": "root2", "password": PASSWORD, "role": "admin"},
    )
    assert status == 201
    status, body = await request(
        session, api, "PATCH", f"/api/users/{second['id']}", "admin", body={"role": "viewer"}
    )
    assert (status, body["role"]) == (200, "viewer")


async def test_only_admins_manage_users(api: Api, session: aiohttp.ClientSession) -> None:
    for role in ("viewer", "operator"):
        for method, path in (
            ("GET", "/api/users"),
            ("POST", "/api/users"),
            ("PATCH", f"/api/users/{api.user_ids['viewer']}"),
            ("DELETE", f"/api/users/{api.user_ids['viewer']}"),
        ):
            status, body = await request(session, api, method, path, role, body={})
            assert (status, body["error"]) == (403, "forbidden"), (role, method, path)
    status, _ = await request(session, api, "GET", "/api/users", None)
    assert status == 401


async def test_admins_see_every_token_others_their_own(
    api: Api, session: aiohttp.ClientSession
) -> None:
    status, created = await request(
        session, api, "POST", "/api/tokens", "viewer", {"name": "grafana"}
    )
    assert status == 201
    assert created["token"].startswith("evh_")

    status, own = await request(session, api, "GET", "/api/tokens", "viewer")
    assert status == 200
    assert {(t["name"], t["username"]) for t in own} == {
        ("viewer test token", "viewer_user"),
        ("grafana", "viewer_user"),
    }
    assert all("token" not in t and "token_hash" not in t for t in own)

    status, every = await request(session, api, "GET", "/api/tokens?all=true", "admin")
    assert status == 200
    assert {(t["name"], t["username"]) for t in every} == {
        ("admin test token", "admin_user"),
        ("operator test token", "operator_user"),
        ("viewer test token", "viewer_user"),
        ("grafana", "viewer_user"),
    }
    assert all("token" not in t and "token_hash" not in t for t in every)
    status, mine = await request(session, api, "GET", "/api/tokens", "admin")
    assert [t["name"] for t in mine] == ["admin test token"]

    status, body = await request(session, api, "GET", "/api/tokens?all=true", "operator")
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await request(session, api, "GET", "/api/tokens?all=maybe", "admin")
    assert (status, body["message"]) == (400, "all must be true or false")

    # The admin revokes the viewer's new token from the list of all; it stops working.
    status, _ = await request(session, api, "DELETE", f"/api/tokens/{created['id']}", "admin")
    assert status == 204
    async with session.get(
        api.url + "/api/auth/me", headers={"Authorization": f"Bearer {created['token']}"}
    ) as resp:
        assert resp.status == 401
    assert [e["target"] for e in audited(api, "token.create")] == ["grafana"]
    assert [(e["target"], e["username"]) for e in audited(api, "token.revoke")] == [
        ("grafana", "admin_user")
    ]


async def login(client: aiohttp.ClientSession, api: Api, username: str, password: str) -> str:
    """Log in with a password; return the session's CSRF token."""
    async with client.post(
        api.url + "/api/auth/login", json={"username": username, "password": password}
    ) as resp:
        assert resp.status == 200, await resp.text()
        csrf: str = (await resp.json())["csrf_token"]
        return csrf


async def test_a_user_changes_their_own_password(api: Api) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    other_jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as client,
        aiohttp.ClientSession(cookie_jar=other_jar) as other,
    ):
        csrf = await login(client, api, "viewer_user", PASSWORD)
        await login(other, api, "viewer_user", PASSWORD)  # the same user on another device
        url = api.url + "/api/auth/password"
        change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}

        async with client.post(url, json=change) as resp:
            assert resp.status == 403  # a cookie session needs its CSRF token
            assert (await resp.json())["error"] == "csrf"
        headers = {"X-CSRF-Token": csrf}
        for bad, reason in (
            ({"current_password": PASSWORD}, "password must be a string"),
            ({**change, "new_password": "short"}, "password must be 8 to 1024 characters"),
            ({**change, "new_password": PASSWORD}, "the new password is the current one"),
            ({**change, "role": "admin"}, "unknown fields: role"),
            ({"new_password": NEW_PASSWORD}, "current_password is required"),
        ):
            async with client.post(url, json=bad, headers=headers) as resp:
                assert resp.status == 400, bad
                assert (await resp.json())["message"] == reason

        async with client.post(url, json=change, headers=headers) as resp:
            assert resp.status == 200
            answer = await resp.json()
            assert "evhub_session" in resp.cookies
        assert answer["user"]["username"] == "viewer_user"
        assert answer["csrf_token"]
        assert answer["csrf_token"] != csrf
        # This browser goes on with its new session; the other device is logged out.
        async with client.get(api.url + "/api/auth/me") as resp:
            assert resp.status == 200
            assert (await resp.json())["csrf_token"] == answer["csrf_token"]
        async with other.get(api.url + "/api/auth/me") as resp:
            assert resp.status == 401
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as again:
        await login(again, api, "viewer_user", NEW_PASSWORD)
    # Like any new password, it ends the user's tokens; the old password is refused.
    async with aiohttp.ClientSession() as plain:
        async with plain.get(api.url + "/api/auth/me", headers=api.headers("viewer")) as resp:
            assert resp.status == 401
        async with plain.post(
            api.url + "/api/auth/login", json={"username": "viewer_user", "password": PASSWORD}
        ) as resp:
            assert resp.status == 401
    results = [e["result"] for e in audited(api, "user.password")]
    assert results[-1] == "ok"
    assert results[:-1] == [
        "error: password must be a string",
        "error: password must be 8 to 1024 characters",
        "error: the new password is the current one",
        "error: current_password is required",
    ]


async def test_a_wrong_current_password_counts_as_a_failed_login(
    api: Api, session: aiohttp.ClientSession
) -> None:
    """With a bearer token (no CSRF); the answer has no session for it."""
    url = api.url + "/api/auth/password"
    wrong = {"current_password": "not my password", "new_password": NEW_PASSWORD}
    async with session.post(url, json=wrong, headers=api.headers("operator")) as resp:
        assert resp.status == 403
        assert await resp.json() == {
            "error": "invalid_credentials",
            "message": "the current password is wrong",
        }
    # Throttled like a login from that address: no quick guessing with a stolen session.
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    async with session.post(url, json=right, headers=api.headers("operator")) as resp:
        assert resp.status == 429
        assert (await resp.json())["error"] == "throttled"
    events = security_log(api.hub).query(kind="login_failed")
    assert [e.message for e in events] == [
        "wrong current password in a password change from 127.0.0.1"
    ]
    assert [e["result"] for e in audited(api, "user.password")] == [
        "error: the current password is wrong",
        "error: too many failed logins from 127.0.0.1; retry later",
    ]
    status, _ = await request(session, api, "POST", "/api/auth/password", None, right)
    assert status == 401
