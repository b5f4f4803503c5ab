"""The transaction store that cannot write shows in /api/health, and chargers hear no Accepted."""

from __future__ import annotations

import asyncio
import resource
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.hub_process import free_port, kill, open_charger, start_hub, wait_port
from tests.integrations.ocpp.conftest import ChargerCallError, RawChargePoint


async def ocpp_health(port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/api/health") as response,
    ):
        body: dict[str, Any] = await response.json()
        return body


async def wait_ocpp(port: int, condition: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = await ocpp_health(port)
        components = body["integrations"]["ocpp"].get("components", {})
        failed = components.get("transactions", {}).get("health") == "failed"
        if (condition == "failed") == failed:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"ocpp transactions never {condition}: {body}")
        await asyncio.sleep(0.1)


def start() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": now}


async def first_refusal(cp: RawChargePoint) -> ChargerCallError:
    """Start transactions until one is refused (a write must grow the database file)."""
    for _ in range(50):
        try:
            await cp.call("StartTransaction", start())
        except ChargerCallError as err:
            return err
    raise AssertionError("every StartTransaction was accepted")


async def test_an_unwritable_transaction_store_fails_health_and_accepts_nothing(
    tmp_path: Path,
) -> None:
    ocpp_port, http_port = free_port(), free_port()
    tmp_path.joinpath("configuration.yaml").write_text(
        f"http:\n  server_host: 127.0.0.1\n  server_port: {http_port}\n  zeroconf: false\n"
        "recorder: false\nuptime: false\n"
        "ocpp:\n"
        f"  listeners:\n    - {{port: {ocpp_port}, host: 127.0.0.1, security_profile: 0}}\n"
        "  authorize_unknown_id_tags: true\n"
        "  chargers:\n    - id: CP-1\n"
    )
    child = await start_hub(tmp_path)
    try:
        await wait_port(ocpp_port)
        await wait_port(http_port)
        cp = await open_charger(ocpp_port, "CP-1")
        try:
            assert "transactionId" in await cp.call("StartTransaction", start())
            await wait_ocpp(http_port, "ok")
            # The disk is full, as SQLite sees it: no file of the hub may grow.
            resource.prlimit(child.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
            refused = await first_refusal(cp)
            assert refused.code == "InternalError"
            body = await wait_ocpp(http_port, "failed")
            assert body["status"] == "degraded"
            assert "ocpp" in body["problems"]
            error = body["integrations"]["ocpp"]["components"]["transactions"]["reason"]
            assert "transaction store" in error
            # Writable again: transactions are accepted, and health says so.
            limit = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            resource.prlimit(child.pid, resource.RLIMIT_FSIZE, limit)
            assert "transactionId" in await cp.call("StartTransaction", start())
            await wait_ocpp(http_port, "ok")
        finally:
            await cp.close()
    finally:
        await kill(child)
