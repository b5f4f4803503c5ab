"""Every route's role, walked from the app's router, and the OpenAPI document against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hub.http import DATA_HTTP, HttpServer
from hub.http.extensions import extensions
from tests.hub.http.conftest import Api, make_users, start_api

# The core's routes: (method, path as registered) -> least role; None: no login needed.
EXPECTED: dict[tuple[str, str], str | None] = {
    ("GET", "/api/health"): None,
    ("GET", "/api/onboarding"): None,
    ("POST", "/api/onboarding"): None,
    ("POST", "/api/auth/login"): None,
    ("POST", "/api/auth/logout"): "viewer",
    ("GET", "/api/auth/me"): "viewer",
    ("POST", "/api/auth/password"): "viewer",
    ("GET", "/api/users"): "admin",
    ("POST", "/api/users"): "admin",
    ("PATCH", "/api/users/{user_id}"): "admin",
    ("DELETE", "/api/users/{user_id}"): "admin",
    ("GET", "/api/tokens"): "viewer",
    ("POST", "/api/tokens"): "viewer",
    ("DELETE", "/api/tokens/{token_id}"): "viewer",
    ("GET", "/api/bans"): "admin",
    ("DELETE", "/api/bans/{address}"): "admin",
    ("GET", "/api/states"): "viewer",
    ("GET", "/api/states/{entity_id}"): "viewer",
    ("POST", "/api/services/{domain}/{service}"): "viewer",  # and the service's own role
    ("GET", "/api/chargers"): "viewer",
    ("GET", "/api/chargers/{device_id}"): "viewer",
    ("GET", "/api/pending_chargers"): "viewer",
    ("POST", "/api/pending_chargers/{cp_id}/approve"): "operator",
    ("POST", "/api/pending_chargers/{cp_id}/reject"): "operator",
    ("PATCH", "/api/devices/{device_id}"): "operator",
    ("GET", "/api/sites"): "viewer",
    ("GET", "/api/notifications"): "viewer",
    ("POST", "/api/notifications/{notification_id}/dismiss"): "operator",
    ("POST", "/api/notifications/{notification_id}/read"): "operator",
    ("GET", "/api/security/events"): "viewer",
    ("GET", "/api/audit"): "admin",
    ("GET", "/api/config"): "viewer",
    ("GET", "/api/services"): "viewer",
    ("POST", "/api/events/{event_type}"): "operator",
    ("POST", "/api/template"): "admin",
    ("GET", "/api/error_log"): "admin",
    ("GET", "/api/logbook"): "viewer",
    ("GET", "/api/logbook/{start}"): "viewer",
    ("GET", "/api/history"): "viewer",
    ("GET", "/api/sessions"): "viewer",
    ("GET", "/api/statistics"): "viewer",
    ("GET", "/api/statistics/fleet"): "viewer",
    ("GET", "/api/websocket"): None,
    ("GET", "/api/openapi.json"): None,
    ("GET", "/api/panels"): "viewer",
    ("GET", "/api/panels/{domain}/{module}"): "viewer",
    ("GET", "/metrics"): "admin",
    ("GET", "/{tail}"): None,
}
# The views the built-in integrations serve through the dispatcher (hub.http.extensions),
# registered through their set-up context; a default hub sets every one of them up.
VIEWS: dict[tuple[str, str], str | None] = {
    ("GET", "/api/alerts"): "viewer",
    ("POST", "/api/alerts/{alert_id}/acknowledge"): "operator",
    ("POST", "/api/alerts/{alert_id}/resolve"): "operator",
    ("GET", "/api/automations"): "viewer",
    ("POST", "/api/automations/{automation_id}/enable"): "operator",
    ("POST", "/api/automations/{automation_id}/disable"): "operator",
    ("POST", "/api/automations/{automation_id}/trigger"): "operator",
    ("GET", "/api/automations/{automation_id}/traces"): "viewer",
    ("GET", "/api/uptime"): "viewer",
    ("GET", "/api/uptime/monthly"): "viewer",
    ("GET", "/api/uptime/daily"): "viewer",
    ("GET", "/api/reports/uptime.csv"): "viewer",
    ("GET", "/api/reports/evchart.csv"): "viewer",
    ("GET", "/api/reports/cec.csv"): "viewer",
    ("GET", "/api/reports/cec_intervals.csv"): "viewer",
    ("GET", "/api/uptime/exclusions"): "viewer",
    ("POST", "/api/uptime/exclusions"): "operator",
    ("PATCH", "/api/uptime/exclusions/{exclusion_id}"): "operator",
    ("DELETE", "/api/uptime/exclusions/{exclusion_id}"): "operator",
    ("GET", "/api/charge_success"): "viewer",
    ("GET", "/api/charge_success/error_codes"): "viewer",
}
# The walk calls the service route as charger/reset, which needs an operator.
WALK_OVERRIDES = {("POST", "/api/services/{domain}/{service}"): "operator"}
RANK = {None: -1, "viewer": 0, "operator": 1, "admin": 2}
IDENTITIES = (None, "viewer", "operator", "admin")


@pytest.fixture
async def walk_api(tmp_path: Path) -> AsyncIterator[Api]:
    """A hub whose login bans are off (the walk fails logins on purpose) with a frontend."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>evhub</title>")
    hub = await start_api(tmp_path, f"  ip_ban_enabled: false\n  frontend_dir: {dist}\n")
    tokens, ids = await make_users(hub)
    yield Api(hub, hub.data[DATA_HTTP].url, tokens, ids)
    await hub.stop()


def _routes(api: Api) -> list[tuple[str, str]]:
    server: HttpServer = api.hub.data[DATA_HTTP]
    found = []
    for route in server.app.router.routes():
        if route.method == "*":
            continue  # the dispatcher of integrations' views (tests/hub/test_setup_context.py)
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        found.append((route.method, path))
    return found


def _views(api: Api) -> dict[tuple[str, str], str]:
    """The views integrations registered, with their roles."""
    return {(view.method, view.path): str(view.role) for view in extensions(api.hub).views}


def _sample(path: str) -> str:
    return (
        path.replace("{domain}/{service}", "charger/reset")
        .replace("{domain}/{module}", "nobody/none.js")
        .replace("{tail}", "some/client/route")
        .replace("{entity_id}", "sensor.unknown")
        .replace("{user_id}", "no-such-user")
        .replace("{token_id}", "no-such-token")
        .replace("{address}", "192.0.2.77")
        .replace("{device_id}", "no-such-device")
        .replace("{cp_id}", "NO-SUCH-CP")
        .replace("{alert_id}", "no-such-alert")
        .replace("{automation_id}", "no-such-automation")
        .replace("{exclusion_id}", "no-such-exclusion")
        .replace("{event_type}", "route_walk")
        .replace("{start}", "2026-01-01T00:00:00Z")
        .replace("{notification_id}", "no-such-notification")
    )


async def test_every_route_checks_its_role(walk_api: Api, session: aiohttp.ClientSession) -> None:
    api = walk_api
    routes = _routes(api)
    registered = {(method, path.replace("{tail:.*}", "{tail}")) for method, path in routes}
    assert registered == set(EXPECTED), "a route was added or removed: update EXPECTED"
    assert _views(api) == VIEWS, "a view was added, removed or changed its role: update VIEWS"
    checked = 0
    for (method, path), declared in {**EXPECTED, **VIEWS}.items():
        needed = WALK_OVERRIDES.get((method, path), declared)
        for identity in IDENTITIES:
            url = api.url + _sample(path)
            kwargs = {"headers": api.headers(identity)}
            if method != "GET":
                kwargs["json"] = {}
            async with session.request(method, url, **kwargs) as resp:
                status = resp.status
                body = await resp.read()
            where = f"{method} {path} as {identity or 'anonymous'}: {status} {body[:120]!r}"
            if needed is not None and identity is None:
                assert status == 401, where
            elif path == "/api/auth/login":
                # Public, and {} are no credentials: refused whoever asks.
                assert status == 401, where
                assert b"invalid_credentials" in body, where
            elif RANK[identity] < RANK[needed]:
                assert status == 403, where
            else:
                assert status not in (401, 403), where
                assert status < 500, where
            if status >= 400 and path.startswith("/api/"):
                error = await _json(body)
                assert set(error) == {"error", "message"}, where
            checked += 1
    assert checked == (len(EXPECTED) + len(VIEWS)) * len(IDENTITIES)


async def _json(body: bytes) -> dict[str, str]:
    import json

    return json.loads(body)


@pytest.mark.parametrize(
    ("service", "least"),
    [
        ("charger/reset", "operator"),
        ("alert/raise", "operator"),
        ("automation/trigger", "operator"),
        ("automation/reload", "admin"),
        ("notify/persistent", "admin"),
        ("recorder/purge", "admin"),
    ],
)
async def test_service_calls_need_the_service_role(
    tmp_path: Path, session: aiohttp.ClientSession, service: str, least: str
) -> None:
    """The role is the one the integration registered the service with."""
    hub = await start_api(tmp_path, extra="automations: []\n")
    try:
        server: HttpServer = hub.data[DATA_HTTP]
        tokens, ids = await make_users(hub)
        api = Api(hub, server.url, tokens, ids)
        for identity in ("viewer", "operator", "admin"):
            async with session.post(
                f"{api.url}/api/services/{service}",
                json={"data": {}},
                headers=api.headers(identity),
            ) as resp:
                if RANK[identity] < RANK[least]:
                    assert resp.status == 403, (service, identity)
                else:
                    assert resp.status not in (401, 403), (service, identity, await resp.text())
                    assert resp.status < 500
    finally:
        await hub.stop()


async def test_an_unknown_service_is_not_found_for_an_admin_only(
    api: Api, session: aiohttp.ClientSession
) -> None:
    for identity, status in (("viewer", 403), ("operator", 403), ("admin", 404)):
        async with session.post(
            f"{api.url}/api/services/nothing/here", json={"data": {}}, headers=api.headers(identity)
        ) as resp:
            assert resp.status == status, identity


async def test_openapi_documents_exactly_the_real_routes(
    walk_api: Api, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{walk_api.url}/api/openapi.json") as resp:
        assert resp.status == 200
        document = await resp.json()
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    real = {(m, p.replace("{tail:.*}", "{tail}")) for m, p in _routes(walk_api)}
    assert documented == real | set(_views(walk_api))
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            role = {**EXPECTED, **VIEWS}[(method.upper(), path)]
            assert operation["x-evhub-role"] == (role or "public"), (method, path)
            assert operation["summary"]
            params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert params == {part[1:-1] for part in path.split("/") if part.startswith("{")}
    # An integration's view documents its query and body as a core route does.
    alerts = document["paths"]["/api/alerts"]["get"]
    assert {p["name"] for p in alerts["parameters"] if p["in"] == "query"} == {"status", "limit"}
    assert alerts["tags"] == ["alerts"]
    exclusion = document["paths"]["/api/uptime/exclusions"]["post"]
    assert set(exclusion["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {
        "device_id",
        "start",
        "end",
        "reason",
        "note",
    }
