"""Bad requests get a 4xx with a JSON reason, never a 500."""

from __future__ import annotations

import aiohttp
import pytest

from tests.hub.http.conftest import Api

BAD_REQUESTS = [
    ("POST", "/api/services/alert/raise", b"{not json", 400, "invalid_json"),
    ("POST", "/api/services/alert/raise", b"[1, 2]", 400, "invalid_json"),
    ("POST", "/api/services/alert/raise", b'{"data": [1]}', 400, "invalid"),
    ("POST", "/api/services/alert/raise", b'{"data": {}, "target": 3}', 400, "invalid"),
    ("POST", "/api/services/alert/raise", b'{"data": {"key": 5}}', 400, "invalid"),
    ("POST", "/api/services/alert/raise", b'{"dta": {}}', 400, "invalid"),
    ("POST", "/api/services/charger/reset", b'{"data": {"type": "gentle"}}', 400, "invalid"),
    ("POST", "/api/services/charger/reset", b'{"target": {"device_id": "x"}}', 404, "not_found"),
    ("POST", "/api/services/nope/nothing", b"{}", 404, "not_found"),
    ("GET", "/api/states/sensor.unknown", b"", 404, "not_found"),
    ("GET", "/api/chargers/unknown-device", b"", 404, "not_found"),
    ("POST", "/api/alerts/unknown/acknowledge", b"{}", 404, "not_found"),
    ("POST", "/api/alerts/unknown/resolve", b'{"note": 5}', 400, "invalid"),
    ("POST", "/api/automations/unknown/trigger", b"{}", 404, "not_found"),
    ("GET", "/api/automations/unknown/traces", b"", 404, "not_found"),
    ("POST", "/api/pending_chargers/CP-X/approve", b"{}", 404, "not_found"),
    ("GET", "/api/alerts?status=weird", b"", 400, "invalid"),
    ("GET", "/api/alerts?limit=abc", b"", 400, "invalid"),
    ("GET", "/api/security/events?limit=-1", b"", 400, "invalid"),
    ("GET", "/api/audit?limit=99999999", b"", 400, "invalid"),
    ("GET", "/api/history", b"", 400, "invalid"),
    ("GET", "/api/history?entity_id=Not%20An%20Id", b"", 400, "invalid"),
    ("GET", "/api/history?entity_id=sensor.a&start=yesterday", b"", 400, "invalid"),
    ("GET", "/api/history?entity_id=sensor.a&start=2030-01-02&end=2030-01-01", b"", 400, "invalid"),
    ("POST", "/api/users", b'{"username": "x y", "password": "long enough!", "role": "viewer"}',
     400, "invalid"),
    ("POST", "/api/users", b'{"username": "xy", "password": "long enough!", "role": "god"}',
     400, "invalid"),
    ("POST", "/api/users", b'{"username": "admin_user", "password": "12345678", "role": "viewer"}',
     409, "conflict"),
    ("PATCH", "/api/users/unknown", b'{"role": "viewer"}', 404, "not_found"),
    ("PATCH", "/api/users/unknown", b'{"colour": "red"}', 400, "invalid"),
    ("DELETE", "/api/users/unknown", b"", 404, "not_found"),
    ("POST", "/api/tokens", b'{"name": 42}', 400, "invalid"),
    ("DELETE", "/api/tokens/unknown", b"", 404, "not_found"),
    ("GET", "/api/no/such/endpoint", b"", 404, "no_endpoint"),
    ("POST", "/api/no/such/endpoint", b"{}", 404, "no_endpoint"),
    ("PUT", "/api/states", b"{}", 405, "method_not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_REQUESTS)
async def test_bad_request_gets_a_json_reason(
    api: Api,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: bytes,
    status: int,
    code: str,
) -> None:
    async with session.request(
        method,
        api.url + path,
        data=body,
        headers={**api.headers("admin"), "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == status, await resp.text()
        answer = await resp.json()
    assert answer["error"] == code
    assert answer["message"]


async def test_too_large_body_is_413_json(api: Api, session: aiohttp.ClientSession) -> None:
    async with session.post(
        f"{api.url}/api/services/alert/raise",
        data=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers=api.headers("admin"),
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"] == "too_large"
