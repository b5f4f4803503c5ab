"""The persistent notifications over REST and the WebSocket, against a real hub whose
webhook notifier posts to a real (failing) HTTP receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hub.security import recent_audit
from tests.hub.http.conftest import Api, api_of, request, start_api

SECRET_PATH = "/hooks/T0SECRET/B0SECRET"


@dataclass
class Receiver:
    """A webhook receiver on a free loopback port; answers 500 to every POST."""

    url: str
    posts: list[Any]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    posts: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.Response(status=500, text="receiver down")

    app = web.Application()
    app.router.add_post(SECRET_PATH, hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Receiver(f"http://127.0.0.1:{port}", posts)
    await runner.cleanup()


@pytest.fixture
async def notify_api(tmp_path: Path, receiver: Receiver) -> AsyncIterator[Api]:
    """A hub with HTTP, users of each role, and notify.ops_hook posting to the receiver."""
    hub = await start_api(
        tmp_path,
        extra=(
            "notify_webhook:\n"
            "  - name: ops_hook\n"
            f"    url: {receiver.url}{SECRET_PATH}\n"
            "    retries: 0\n"
        ),
    )
    yield await api_of(hub)
    await hub.stop()


async def notify(
    session: aiohttp.ClientSession, api: Api, target: str, title: str, message: str
) -> Any:
    """notify.<target> called over HTTP by an admin; the call's result."""
    status, answer = await request(
        session,
        api,
        "POST",
        f"/api/services/notify/{target}",
        "admin",
        {"data": {"title": title, "message": message}},
    )
    assert status == 200
    return answer["result"]


async def subscribe(session: aiohttp.ClientSession, api: Api, role: str) -> Any:
    """A WebSocket of a role subscribed to persistent_notifications_updated."""
    ws = await session.ws_connect(f"{api.url}/api/websocket")
    await ws.receive_json()
    await ws.send_json({"type": "auth", "access_token": api.tokens[role]})
    assert (await ws.receive_json())["type"] == "auth_ok"
    await ws.send_json(
        {"id": 1, "type": "subscribe_events", "event_type": "persistent_notifications_updated"}
    )
    assert (await ws.receive_json())["success"] is True
    return ws


async def next_update(ws: Any) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive_json(), 5)
    assert message["type"] == "event"
    data: dict[str, Any] = message["event"]["data"]
    return data


async def test_notifications_listed_read_and_dismissed_with_live_updates(
    notify_api: Api, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    api = notify_api
    ws = await subscribe(session, api, "viewer")
    try:
        made = await notify(session, api, "persistent", "Maintenance", "Bay 2 needs a technician")
        kept_id = made["id"]
        assert await next_update(ws) == {"action": "created", "id": kept_id}

        sent = await notify(session, api, "ops_hook", "Bay 1 faulted", "GroundFailure")
        assert sent["status"] == "failed"
        assert receiver.posts == [
            {"title": "Bay 1 faulted", "message": "GroundFailure", "data": {}, "target": None}
        ]
        created = await next_update(ws)
        assert created["action"] == "created"
        failed_id = created["id"]

        status, listed = await request(session, api, "GET", "/api/notifications", "viewer")
        assert status == 200
        assert [n["id"] for n in listed] == [failed_id, kept_id]  # newest first
        failed, kept = listed
        assert set(failed) == {
            "id",
            "title",
            "message",
            "status",
            "created_at",
            "notifier",
            "error",
        }
        assert failed["status"] == "failed"
        assert failed["notifier"] == "ops_hook"
        assert failed["title"] == "Notification via ops_hook failed"
        assert failed["error"] == f"{receiver.url} answered HTTP 500: receiver down"
        assert "Bay 1 faulted: GroundFailure" in failed["message"]
        # The webhook's path is its secret: never in the error, the message or the log.
        assert "SECRET" not in str(listed)
        assert kept == {
            "id": kept_id,
            "title": "Maintenance",
            "message": "Bay 2 needs a technician",
            "status": "unread",
            "created_at": kept["created_at"],
            "notifier": None,
            "error": None,
        }
        status, only_failed = await request(
            session, api, "GET", "/api/notifications?status=failed", "viewer"
        )
        assert [n["id"] for n in only_failed] == [failed_id]

        # Viewers read; operators mark read and dismiss.
        status, body = await request(
            session, api, "POST", f"/api/notifications/{kept_id}/read", "viewer"
        )
        assert (status, body["error"]) == (403, "forbidden")
        status, _ = await request(
            session, api, "POST", f"/api/notifications/{kept_id}/read", "operator"
        )
        assert status == 204
        assert await next_update(ws) == {"action": "read", "id": kept_id}
        status, _ = await request(
            session, api, "POST", f"/api/notifications/{failed_id}/read", "operator"
        )
        assert status == 204  # a failed one stays failed (no event: nothing changed)
        status, _ = await request(
            session, api, "POST", f"/api/notifications/{failed_id}/dismiss", "operator"
        )
        assert status == 204
        assert await next_update(ws) == {"action": "dismissed", "id": failed_id}
        status, listed = await request(session, api, "GET", "/api/notifications", "viewer")
        assert [(n["id"], n["status"]) for n in listed] == [(kept_id, "read")]
    finally:
        await ws.close()

    entries = [
        (e["action"], e["username"], e["target"], e["result"])
        for e in reversed(recent_audit(api.hub, 100))
        if e["action"] in ("notify.mark_read", "notify.dismiss")
    ]
    assert entries == [
        ("notify.mark_read", "operator_user", f"Maintenance ({kept_id})", "ok"),
        (
            "notify.mark_read",
            "operator_user",
            f"Notification via ops_hook failed ({failed_id})",
            "ok",
        ),
        (
            "notify.dismiss",
            "operator_user",
            f"Notification via ops_hook failed ({failed_id})",
            "ok",
        ),
    ]


async def test_bad_requests_get_a_clear_answer(
    notify_api: Api, session: aiohttp.ClientSession
) -> None:
    api = notify_api
    status, body = await request(session, api, "GET", "/api/notifications?status=lost", "viewer")
    assert status == 400
    assert body["message"] == "status must be one of unread, read, failed, not 'lost'"
    for action in ("read", "dismiss"):
        status, body = await request(
            session, api, "POST", f"/api/notifications/no-such-id/{action}", "operator"
        )
        assert (status, body["error"]) == (404, "not_found")
        status, body = await request(
            session, api, "POST", f"/api/notifications/{'x' * 65}/{action}", "operator"
        )
        assert (status, body["error"]) == (400, "invalid")
    status, _ = await request(session, api, "GET", "/api/notifications", None)
    assert status == 401
    errors = [
        (e["action"], e["result"])
        for e in reversed(recent_audit(api.hub, 100))
        if e["action"].startswith("notify.")
    ]
    assert errors == [
        ("notify.mark_read", "error: not found"),
        ("notify.dismiss", "error: not found"),
    ]
