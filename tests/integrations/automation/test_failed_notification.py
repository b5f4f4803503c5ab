"""A notification that cannot be delivered fails its step in the automation's trace, the run
ends in error (unless the step continues on error), the automations list says so, and the
runs are kept across a restart; against a real hub and a real (failing) webhook receiver."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hub.bootstrap import new_hub
from hub.core import Event, Hub
from hub.http import DATA_HTTP
from hub.notify import persistent_notifications
from tests.hub.http.conftest import Api, make_users

SECRET_PATH = "/hooks/T0SECRET"

AUTOMATIONS = """
automations:
  - id: tell_ops
    alias: Tell ops
    triggers:
      - trigger: event
        event_type: never_fired
    actions:
      - action: notify.ops_hook
        data: {title: "Bay 1 faulted", message: "GroundFailure"}
      - event: after_notify
  - id: tell_ops_anyway
    alias: Tell ops, then go on
    triggers:
      - trigger: event
        event_type: never_fired
    actions:
      - action: notify.ops_hook
        continue_on_error: true
        data: {message: "Bay 2 faulted"}
      - event: after_notify
  - id: quiet
    alias: Nothing to tell
    triggers:
      - trigger: event
        event_type: never_fired
    actions:
      - event: after_quiet
"""


@pytest.fixture
async def receiver_url() -> AsyncIterator[str]:
    """A webhook receiver on a free loopback port that answers 503 to every POST."""

    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    app = web.Application()
    app.router.add_post(SECRET_PATH, hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def start(config_dir: Path, receiver_url: str) -> Hub:
    config_dir.joinpath("configuration.yaml").write_text(
        "hub:\n  time_zone: UTC\n"
        "http:\n  server_host: 127.0.0.1\n  server_port: 0\n  zeroconf: false\n"
        "notify_webhook:\n"
        "  - name: ops_hook\n"
        f"    url: {receiver_url}{SECRET_PATH}\n"
        "    retries: 0\n" + textwrap.dedent(AUTOMATIONS)
    )
    hub = new_hub(config_dir)
    await hub.start()
    return hub


async def request(
    session: aiohttp.ClientSession, api: Api, method: str, path: str, role: str = "operator"
) -> Any:
    async with session.request(method, api.url + path, headers=api.headers(role)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_a_failed_notification_fails_the_step_and_marks_the_automation(
    tmp_path: Path, receiver_url: str
) -> None:
    hub = await start(tmp_path, receiver_url)
    try:
        tokens, ids = await make_users(hub)
        api = Api(hub, hub.data[DATA_HTTP].url, tokens, ids)
        after: list[Event] = []
        hub.bus.listen("after_notify", after.append)
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{api.url}/api/websocket")
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": tokens["viewer"]})
            assert (await ws.receive_json())["type"] == "auth_ok"
            await ws.send_json(
                {"id": 1, "type": "subscribe_events", "event_type": "automation_run_finished"}
            )
            assert (await ws.receive_json())["success"] is True

            answer = await request(session, api, "POST", "/api/automations/tell_ops/trigger")
            assert answer["result"]["outcome"] == "error"
            finished = await asyncio.wait_for(ws.receive_json(), 5)
            data = finished["event"]["data"]
            assert (data["automation_id"], data["outcome"]) == ("tell_ops", "error")
            assert data["error"] == (
                f"notify.ops_hook failed: {receiver_url} answered HTTP 503: maintenance"
            )

            [trace] = await request(
                session, api, "GET", "/api/automations/tell_ops/traces", "viewer"
            )
            [step] = trace["steps"]  # the run stopped: no event after the failed step
            assert step["path"] == "action/0"
            assert step["error"] == (
                f"notify.ops_hook failed: {receiver_url} answered HTTP 503: maintenance"
            )
            assert step["result"]["status"] == "failed"
            assert step["result"]["attempts"] == 1
            assert trace["outcome"] == "error"
            assert "SECRET" not in str(trace)
            assert after == []

            # continue_on_error: the step still shows the failure; the run goes on.
            await request(session, api, "POST", "/api/automations/tell_ops_anyway/trigger")
            await request(session, api, "POST", "/api/automations/quiet/trigger")
            [trace] = await request(
                session, api, "GET", "/api/automations/tell_ops_anyway/traces", "viewer"
            )
            assert [s["error"] is not None for s in trace["steps"]] == [True, False]
            assert trace["outcome"] == "finished"
            assert len(after) == 1

            listed = await request(session, api, "GET", "/api/automations", "viewer")
            last = {a["id"]: a["last_run"] for a in listed}
            assert last["tell_ops"]["outcome"] == "error"
            assert last["tell_ops"]["error"] == data["error"]
            assert last["tell_ops_anyway"]["outcome"] == "finished"
            assert last["quiet"]["outcome"] == "finished"
            await ws.close()
        # Both failed deliveries are kept as failed persistent notifications.
        assert [n.status for n in persistent_notifications(hub)] == ["failed", "failed"]
    finally:
        await hub.stop()

    # After a restart the runs are there: the list still marks the failed automation.
    hub = await start(tmp_path, receiver_url)
    try:
        api = Api(hub, hub.data[DATA_HTTP].url, tokens, ids)
        async with aiohttp.ClientSession() as session:
            listed = await request(session, api, "GET", "/api/automations", "viewer")
            last = {a["id"]: a["last_run"] for a in listed}
            assert last["tell_ops"]["outcome"] == "error"
            assert last["tell_ops"]["error"].startswith("notify.ops_hook failed: ")
            [trace] = await request(
                session, api, "GET", "/api/automations/tell_ops/traces", "viewer"
            )
            assert trace["steps"][0]["result"]["status"] == "failed"
            # A new run adds to the kept ones, it does not replace them.
            await request(session, api, "POST", "/api/automations/quiet/trigger")
            runs = await request(session, api, "GET", "/api/automations/quiet/traces", "viewer")
            assert len(runs) == 2
    finally:
        await hub.stop()
