"""A faithful stand-in for Zaptec's documented cloud API, on a free loopback port.

It serves what https://api.zaptec.com documents: the OAuth password grant (tokens that
expire, 401 after), GET /api/chargers (Pages, Data), GET /api/chargers/{id}/state
(StateId, ValueAsString, Timestamp; 404 for an unknown charger), POST sendCommand (102,
506, 507; 528 for a command the charger's state refuses) and POST /api/installation/{id}/
update (availableCurrent). Tests script failures: 429 with Retry-After, 5xx, a hang, garbage.
Tokens expire on the hub's manual clock (``now``), so expiry needs no real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from hub.testing import (  # noqa: F401 (evhub's pytest plugin's fixtures)
    api_user,
    hub_factory,
)

USERNAME = "owner@example.com"
PASSWORD = "s3cret-Pa55word"
CHARGER_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
INSTALLATION_ID = "aa11bb22-cc33-dd44-ee55-ff6677889900"

CHARGING: dict[int, str] = {
    -2: "1",  # IsOnline
    501: "230.1",
    502: "229.8",
    503: "231.0",
    507: "10.5",
    508: "10.4",
    509: "10.6",
    510: "32",  # ChargerMaxCurrent
    513: "7245.5",  # TotalChargePower, W
    553: "5.230",  # TotalChargePowerSession, kWh
    554: 'OCMF|{"FV":"1.0","RD":[{"TM":"2027-01-15T08:00:00,000+00:00 S",'
    '"RV":1234.5,"RI":"1-0:1.8.0","RU":"kWh","ST":"G"}]}|{"SA":"ECDSA-secp384r1-SHA256"}',
    708: "16",  # ChargeCurrentSet
    710: "3",  # ChargerOperationMode: charging
    711: "1",  # IsEnabled
    718: "0",  # FinalStopActive
    804: "0",  # Warnings
}


@dataclass
class Failure:
    """One scripted answer instead of the real one."""

    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: float = 0.0


class FakeZaptec:
    """The cloud's state and what it was asked."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.token_life = 3600
        self.tokens: dict[str, float] = {}
        self._serial = itertools.count(1)
        self.chargers: dict[str, dict[str, Any]] = {
            CHARGER_ID: {
                "Id": CHARGER_ID,
                "Name": "Carport",
                "DeviceId": "ZAP012345",
                "InstallationId": INSTALLATION_ID,
                "IsOnline": True,
                "OperatingMode": 3,
            }
        }
        self.observations: dict[str, dict[int, str]] = {CHARGER_ID: dict(CHARGING)}
        self.failures: list[Failure] = []
        # Fail every /api request with this until set to None (the token endpoint too).
        self.down: Failure | None = None
        self.logins = 0
        self.requests: list[tuple[float, str, str]] = []
        self.commands: list[tuple[str, int]] = []
        self.installation_updates: list[tuple[str, Any]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def state_requests(self) -> list[float]:
        return [when for when, _method, path in self.requests if path.endswith("/state")]

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def set(self, charger_id: str = CHARGER_ID, **values: str) -> None:
        """Set observations by id: set(**{"710": "1"})."""
        for key, value in values.items():
            self.observations[charger_id][int(key)] = value

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get("/api/chargers", self._chargers)
        app.router.add_get("/api/chargers/{id}/state", self._state)
        app.router.add_post("/api/chargers/{id}/sendCommand/{command}", self._command)
        app.router.add_post("/api/installation/{id}/update", self._installation)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._released.set()  # hung answers end now
        if self._runner is not None:
            await self._runner.cleanup()

    async def _scripted(self, request: web.Request) -> web.StreamResponse | None:
        self.requests.append((self.now(), request.method, request.path))
        failure = self.down or (self.failures.pop(0) if self.failures else None)
        if failure is None:
            return None
        if failure.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), failure.hang)
        return web.Response(
            status=failure.status,
            headers=failure.headers,
            body=failure.body,
            content_type="application/json",
        )

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        expires = self.tokens.get(token)
        return header.startswith("Bearer ") and expires is not None and self.now() < expires

    async def _token(self, request: web.Request) -> web.StreamResponse:
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        form = await request.post()
        if form.get("grant_type") != "password":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if form.get("username") != USERNAME or form.get("password") != PASSWORD:
            return web.json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "The user name or password is incorrect.",
                },
                status=400,
            )
        self.logins += 1
        token = f"token-{next(self._serial)}"
        self.tokens[token] = self.now() + self.token_life
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_life}
        )

    async def _guard(self, request: web.Request) -> web.StreamResponse | None:
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        if not self._authorized(request):
            return web.Response(status=401)
        return None

    async def _chargers(self, request: web.Request) -> web.StreamResponse:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        return web.json_response({"Pages": 1, "Data": list(self.chargers.values())})

    async def _state(self, request: web.Request) -> web.StreamResponse:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        charger_id = request.match_info["id"]
        observations = self.observations.get(charger_id)
        if observations is None:
            return web.json_response(
                {"errorCode": 512, "message": "Charger not found."}, status=404
            )
        return web.json_response(
            [
                {
                    "ChargerId": charger_id,
                    "StateId": state_id,
                    "Timestamp": "2027-01-15T08:00:00.000",
                    "ValueAsString": value,
                }
                for state_id, value in observations.items()
            ]
        )

    async def _command(self, request: web.Request) -> web.StreamResponse:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        charger_id = request.match_info["id"]
        command = int(request.match_info["command"])
        observations = self.observations.get(charger_id)
        if observations is None:
            return web.json_response(
                {"errorCode": 512, "message": "Charger not found."}, status=404
            )
        mode = observations.get(710)
        if command == 506 and mode != "3":
            return web.json_response(
                {"Code": 528, "Details": "Charger is not charging"}, status=528, reason="Rejected"
            )
        if command == 507 and not (mode == "5" and observations.get(718) == "1"):
            return web.json_response(
                {"Code": 528, "Details": "Charger is not paused"}, status=528, reason="Rejected"
            )
        if command not in (102, 506, 507, 10001):
            return web.json_response({"message": "Unknown command"}, status=400)
        self.commands.append((charger_id, command))
        if command == 506:
            observations.update({710: "5", 718: "1", 513: "0"})
        elif command == 507:
            observations.update({710: "3", 718: "0"})
        return web.json_response({"Code": 200, "Details": "Command accepted"})

    async def _installation(self, request: web.Request) -> web.StreamResponse:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.json_response({"message": "Invalid body"}, status=400)
        self.installation_updates.append((request.match_info["id"], body))
        return web.Response(status=200)


CLOCK_START = 1_800_000_000.0
StartCloud = Callable[[], Awaitable[FakeZaptec]]


@pytest.fixture
async def zaptec_cloud() -> AsyncIterator[StartCloud]:
    """``await zaptec_cloud()``: a started fake cloud; set ``cloud.now`` to the hub's clock."""
    started: list[FakeZaptec] = []

    async def start() -> FakeZaptec:
        cloud = FakeZaptec(lambda: CLOCK_START)
        await cloud.start()
        started.append(cloud)
        return cloud

    yield start
    for cloud in started:
        await cloud.stop()
