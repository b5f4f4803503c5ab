"""A hub with its HTTP server on a free loopback port, users of each role and their tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.auth import Role, auth_manager
from hub.bootstrap import new_hub
from hub.core import Hub
from hub.http import DATA_HTTP, HttpServer
from tests.integrations.ocpp.conftest import ocpp_config

PASSWORD = "correct horse battery"
# A plain OCPP listener, TAG-1 known, and station A (CP-A) at Depot North.
STATION_A = ocpp_config(
    """
    id_tags: [TAG-1]
    chargers:
      - {id: CP-A, name: Station A, site: Depot North}
    """
)
# An automation to run: the event site_ping starts it.
PING_HANDLER = """\
automations:
  - id: ping_handler
    alias: Ping handler
    triggers:
      - trigger: event
        event_type: site_ping
    actions:
      - delay: 0
"""


def write_config(config_dir: Path, extra_http: str = "", extra: str = "") -> None:
    """A configuration.yaml with HTTP on a free loopback port and no zeroconf."""
    (config_dir / "configuration.yaml").write_text(
        "hub:\n  time_zone: UTC\n"
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        + extra_http
        + extra
    )


@dataclass
class Api:
    """A running hub and how to reach it."""

    hub: Hub
    url: str
    tokens: dict[str, str]  # role -> bearer token
    user_ids: dict[str, str]

    def headers(self, role: str | None) -> dict[str, str]:
        """Authorization headers for a role (None: anonymous)."""
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}


def configured_hub(config_dir: Path, extra_http: str = "", extra: str = "") -> Hub:
    """A hub with HTTP (see write_config), not started yet."""
    write_config(config_dir, extra_http, extra)
    return new_hub(config_dir)


async def start_api(config_dir: Path, extra_http: str = "", extra: str = "") -> Hub:
    """Start a hub with HTTP."""
    hub = configured_hub(config_dir, extra_http, extra)
    await hub.start()
    return hub


async def make_users(hub: Hub) -> tuple[dict[str, str], dict[str, str]]:
    """One user per role, each with a token."""
    auth = auth_manager(hub)
    tokens: dict[str, str] = {}
    ids: dict[str, str] = {}
    for role in Role:
        user = await auth.add_user(f"{role}_user", PASSWORD, role)
        tokens[str(role)], _ = await auth.create_token(user, f"{role} test token")
        ids[str(role)] = user.id
    return tokens, ids


async def api_of(hub: Hub) -> Api:
    """A started hub's URL, with one user and token per role made for it."""
    server: HttpServer = hub.data[DATA_HTTP]
    tokens, ids = await make_users(hub)
    return Api(hub, server.url, tokens, ids)


async def request(
    session: aiohttp.ClientSession,
    api: Api,
    method: str,
    path: str,
    role: str | None,
    body: Any = None,
) -> tuple[int, Any]:
    """Send a request with a role's bearer token (None: anonymous); return the status and
    the JSON body (None when there is none)."""
    async with session.request(
        method, api.url + path, json=body, headers=api.headers(role)
    ) as resp:
        text = await resp.text()
        return resp.status, (await resp.json()) if text else None


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """A started hub with HTTP, an admin, an operator and a viewer."""
    hub = await start_api(tmp_path)
    yield await api_of(hub)
    await hub.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client that keeps cookies for 127.0.0.1."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        yield client
