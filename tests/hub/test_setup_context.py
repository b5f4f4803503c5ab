"""The set-up context: what an integration registers through it is undone together, on a
failed attempt, on unload and before a reload; its views and commands check their roles."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hub.auth import Role, User
from hub.bootstrap import new_hub
from hub.charger import EVENT_CHARGER
from hub.clock import use_manual_clock
from hub.core import Event, Hub
from hub.exceptions import HubError, HubStateError
from hub.http.extensions import extensions
from hub.http.view import json_response
from hub.plugins import IntegrationNotReadyError, SetupContext, SetupState, plugin_registry
from hub.testing import http_url
from tests.hub.test_plugins import make_plugin, write_config


class _Refused(HubError):
    http_status = 409
    error_code = "refused"


def _listeners(hub: Hub, event_type: str) -> int:
    return hub.bus.listeners().get(event_type, 0)


async def test_failed_attempts_leave_nothing_behind(tmp_path: Path) -> None:
    attempts = 0

    async def setup(ctx: SetupContext) -> bool:
        nonlocal attempts
        attempts += 1
        ctx.listen(EVENT_CHARGER, lambda _event: None)
        ctx.watch(["sensor.x"], lambda *_args: None)
        ctx.register_service("poke", lambda _call: attempts)
        ctx.register_view("GET", "/api/flaky/ping", _ok, role=Role.VIEWER, summary="ping")
        ctx.register_ws_command("flaky/ping", _ws_ok, role=Role.VIEWER)
        ctx.call_later(3600, lambda: None)
        ctx.create_task(asyncio.sleep(3600), "idle")
        if attempts < 4:
            raise IntegrationNotReadyError("cloud not reachable")
        return True

    write_config(tmp_path, "flaky:\n")
    hub = new_hub(tmp_path)
    clock = use_manual_clock(hub)
    registry = plugin_registry(hub)
    registry.register(make_plugin("flaky", setup=setup))
    await hub.start()
    try:
        baseline = _listeners(hub, EVENT_CHARGER)
        for delay in (5, 10, 20):
            assert registry.statuses()["flaky"].state is SetupState.retrying
            # Nothing of the failed attempts is left: three retries used to leave three
            # charger_event listeners.
            assert _listeners(hub, EVENT_CHARGER) == baseline
            assert not hub.services.has_service("flaky", "poke")
            assert not [view for view in extensions(hub).views if view.domain == "flaky"]
            assert "flaky/ping" not in extensions(hub).commands
            await clock.advance(delay)  # the retry's backoff, on the hub clock
        assert registry.is_loaded("flaky")
        assert attempts == 4
        assert _listeners(hub, EVENT_CHARGER) == baseline + 1
        assert hub.services.has_service("flaky", "poke")
    finally:
        await hub.stop()


async def _ok(request: web.Request) -> web.Response:
    return json_response({"ok": True, "params": dict(request.match_info)})


async def _ws_ok(hub: Hub, user: User, msg: dict[str, Any]) -> Any:
    return {"user": user.username}


async def test_unload_and_reload_undo_and_register_again(tmp_path: Path) -> None:
    setups = 0
    ticks: list[float] = []
    task_cancelled = asyncio.Event()

    async def idle() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            task_cancelled.set()

    async def setup(ctx: SetupContext) -> bool:
        nonlocal setups
        setups += 1
        ctx.listen("probe", lambda _event: None)
        ctx.register_service("poke", lambda _call: setups)
        ctx.track_interval(60, lambda: ticks.append(1))
        ctx.create_task(idle(), "idle")
        ctx.data = ctx
        return True

    write_config(tmp_path, "reloadable:\n")
    hub = new_hub(tmp_path)
    clock = use_manual_clock(hub)
    registry = plugin_registry(hub)
    registry.register(make_plugin("reloadable", setup=setup))
    await hub.start()
    try:
        await clock.advance(150)
        assert len(ticks) == 2
        assert await registry.reload("reloadable")
        assert task_cancelled.is_set()
        assert setups == 2
        assert _listeners(hub, "probe") == 1
        assert await hub.services.call("reloadable", "poke") == 2
        ticks.clear()
        await clock.advance(60)
        assert len(ticks) == 1  # one interval: the first set-up's timer is gone
        await registry.unload("reloadable")
        assert _listeners(hub, "probe") == 0
        assert not hub.services.has_service("reloadable", "poke")
        await clock.advance(600)
        assert len(ticks) == 1
    finally:
        await hub.stop()


async def test_registering_after_the_undo_is_refused(hub: Hub) -> None:
    from hub.plugins import Integration

    async def setup(ctx: SetupContext) -> bool:
        return True

    context = SetupContext(
        hub, Integration(domain="late", name="Late", version="1", setup=setup), {}
    )
    unlisten = context.listen("probe", lambda _event: None)
    unlisten()  # an early unsubscribe is not undone twice
    await context.async_undo()
    assert context.pending == 0
    with pytest.raises(HubStateError, match="undone"):
        context.listen("probe", lambda _event: None)


async def test_views_and_commands_of_an_integration_check_roles_over_http(
    tmp_path: Path,
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        raise _Refused("that wallbox is busy")

    async def setup(ctx: SetupContext) -> bool:
        ctx.register_view("GET", "/api/demo/things/{thing}", _ok, role=Role.VIEWER, summary="x")
        ctx.register_view("POST", "/api/demo/things/{thing}", _ok, role=Role.OPERATOR, summary="y")
        ctx.register_view("GET", "/api/demo/busy", refuse, role=Role.VIEWER, summary="z")
        ctx.register_ws_command("demo/admin_only", _ws_ok, role=Role.ADMIN)
        return True

    write_config(tmp_path, "demo:\n")
    hub = new_hub(tmp_path)
    plugin_registry(hub).register(make_plugin("demo", setup=setup))
    await hub.start()
    try:
        from hub.auth import auth_manager

        auth = auth_manager(hub)
        tokens = {}
        for role in Role:
            user = await auth.add_user(f"{role}-user", "correct horse battery", role)
            tokens[role], _ = await auth.create_token(user, "test")
        url = http_url(hub)

        def headers(role: Role | None) -> dict[str, str]:
            return {} if role is None else {"Authorization": f"Bearer {tokens[role]}"}

        async with aiohttp.ClientSession() as session:
            for method, role, status in (
                ("GET", None, 401),
                ("GET", Role.VIEWER, 200),
                ("POST", Role.VIEWER, 403),
                ("POST", Role.OPERATOR, 200),
                ("DELETE", Role.ADMIN, 405),
            ):
                async with session.request(
                    method, f"{url}/api/demo/things/t-1", headers=headers(role)
                ) as resp:
                    assert resp.status == status, (method, role, await resp.text())
                    if status == 200:
                        assert (await resp.json())["params"] == {"thing": "t-1"}
            async with session.get(f"{url}/api/demo/busy", headers=headers(Role.VIEWER)) as resp:
                # A hub error a view raises is answered with the status its class carries.
                assert resp.status == 409
                assert await resp.json() == {"error": "refused", "message": "that wallbox is busy"}
            async with session.get(f"{url}/api/demo/nothing", headers=headers(Role.ADMIN)) as resp:
                assert resp.status == 404
            async with session.ws_connect(f"{url}/api/websocket") as ws:
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": tokens[Role.OPERATOR]})
                await ws.receive_json()
                await ws.send_json({"id": 1, "type": "demo/admin_only"})
                answer = await ws.receive_json()
                assert answer["success"] is False
                assert answer["error"]["code"] == "forbidden"
            async with session.get(f"{url}/api/openapi.json", headers=headers(None)) as resp:
                paths = (await resp.json())["paths"]
            assert paths["/api/demo/things/{thing}"]["post"]["x-evhub-role"] == "operator"
    finally:
        await hub.stop()


async def test_a_view_outside_its_domain_is_refused(hub: Hub) -> None:
    from hub.http.extensions import ExtensionError
    from hub.plugins import Integration

    async def setup(ctx: SetupContext) -> bool:
        return True

    context = SetupContext(
        hub, Integration(domain="sneaky", name="S", version="1", setup=setup), {}
    )
    for path in ("/api/states", "/api/other/x", "/api/sneaky/../states", "/api/sneakyx/y"):
        try:
            context.register_view("GET", path, _ok, role=Role.VIEWER, summary="x")
        except ExtensionError:
            continue
        raise AssertionError(f"{path} was accepted")
    try:
        context.register_ws_command("charger/reset", _ws_ok, role=Role.VIEWER)
    except ExtensionError:
        pass
    else:
        raise AssertionError("a command outside the domain was accepted")
    await context.async_undo()


async def test_event_listener_signature_is_an_event(hub: Hub) -> None:
    """ctx.listen passes the same Event objects as hub.bus.listen."""
    from hub.plugins import Integration

    async def setup(ctx: SetupContext) -> bool:
        return True

    context = SetupContext(hub, Integration(domain="ev", name="E", version="1", setup=setup), {})
    seen: list[Event] = []
    context.listen("probe", seen.append)
    hub.bus.fire("probe", {"n": 1})
    await hub.block_till_done()
    assert [event.data["n"] for event in seen] == [1]
    await context.async_undo()


async def test_device_profiles_come_from_the_plugins_that_offer_them(tmp_path: Path) -> None:
    """evhub_device_profiles: a plugin offers data files to another integration's domain."""
    from hub.hookspecs import hookimpl

    seen: list[list[Path]] = []

    async def setup(ctx: SetupContext) -> bool:
        seen.append(ctx.device_profiles())
        return True

    async def nothing(ctx: SetupContext) -> bool:
        return True

    offered = tmp_path / "acme_box.yaml"
    vendor = make_plugin("vendorprofiles", setup=nothing)

    @hookimpl
    def evhub_device_profiles(domain: str) -> list[Path] | None:
        return [offered] if domain == "wallboxes" else None

    vendor.evhub_device_profiles = evhub_device_profiles  # type: ignore[attr-defined]
    write_config(tmp_path, "wallboxes:\nvendorprofiles:\nother:\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.register(vendor)
    registry.register(make_plugin("wallboxes", setup=setup))
    registry.register(make_plugin("other", setup=setup))
    await hub.start()
    try:
        assert sorted(seen) == [[], [offered]]
    finally:
        await hub.stop()


async def test_nothing_of_a_closed_set_up_runs_while_the_rest_is_undone(hub: Hub) -> None:
    """Listeners, watchers and timers go first, before an undo that awaits: an event fired
    meanwhile (a connection closing) must not reach code that would register again."""
    from hub.plugins import Integration

    async def setup(ctx: SetupContext) -> bool:
        return True

    context = SetupContext(hub, Integration(domain="ev", name="E", version="1", setup=setup), {})
    heard: list[str] = []
    errors: list[BaseException] = []

    def on_probe(event: Event) -> None:
        heard.append(event.event_type)
        try:
            context.call_later(1, lambda: None)
        except HubStateError as err:
            errors.append(err)

    async def slow_close() -> None:
        # Registered after the listener, so undone before it (last first), and awaiting
        # while events fire: a connection that closes.
        hub.bus.fire("probe", {})
        hub.states.set("sensor.x", "2")
        await asyncio.sleep(0.05)
        hub.bus.fire("probe", {})

    context.listen("probe", on_probe)
    context.watch(["sensor.x"], lambda *_args: heard.append("watched"))
    context.call_later(0.01, lambda: heard.append("timer"))
    context.on_unload(slow_close)
    await context.async_undo()
    await asyncio.sleep(0.05)
    await hub.block_till_done()
    assert heard == []
    assert errors == []
    assert context.pending == 0


async def test_timers_that_fired_are_not_kept_for_the_undo(hub: Hub) -> None:
    """A set-up that calls later again and again (a flush every second) keeps no list of
    its past timers: only those still to fire wait to be undone."""
    from hub.plugins import Integration

    async def setup(ctx: SetupContext) -> bool:
        return True

    context = SetupContext(hub, Integration(domain="ev", name="E", version="1", setup=setup), {})
    clock = use_manual_clock(hub)
    fired: list[int] = []
    for n in range(100):
        context.call_later(1, lambda n=n: fired.append(n))
    context.call_later(10, lambda: fired.append(-1))
    assert context.pending == 101
    await clock.advance(2)
    assert len(fired) == 100
    assert context.pending == 1
    await context.async_undo()
    await clock.advance(20)
    assert -1 not in fired
