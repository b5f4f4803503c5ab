"""Integrations as plugins: entry points, dependency order, failing set-ups retried."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import voluptuous as vol

from hub.bootstrap import ConfigInvalidError, check_config, new_hub
from hub.core import CoreState, Hub
from hub.hookspecs import hookimpl
from hub.http import DATA_HTTP
from hub.plugins import (
    HealthReporter,
    Integration,
    IntegrationNotReadyError,
    SetupContext,
    SetupState,
    health_reporter,
    plugin_registry,
)


def write_config(directory: Path, text: str) -> None:
    text = textwrap.dedent(text)
    if "http:" not in text:
        # A free port: never the default 8300, which something else may hold.
        text += "\nhttp:\n  server_host: 127.0.0.1\n  server_port: 0\n"
    directory.joinpath("configuration.yaml").write_text(text)


class _Plugin:
    """A plugin object (hashable, as modules and classes are): its hooks are attributes."""


def make_plugin(domain: str, **kwargs: Any) -> _Plugin:
    """A plugin object whose evhub_integration hook returns an Integration."""
    integration = Integration(domain=domain, name=domain.title(), version="0.1", **kwargs)

    @hookimpl
    def evhub_integration() -> Integration:
        return integration

    plugin = _Plugin()
    plugin.evhub_integration = evhub_integration  # type: ignore[attr-defined]
    return plugin


async def test_third_party_package_loads_through_its_entry_point(
    acme_installed: Path, tmp_path: Path
) -> None:
    """A package installed from tests/ with one entry point adds a charger vendor."""
    write_config(
        tmp_path,
        """
        http:
          server_port: 0
        acme:
          stations:
            - id: ACME-1
              name: Garage
              connectors: 2
        """,
    )
    hub = new_hub(tmp_path)
    await hub.start()
    try:
        registry = plugin_registry(hub)
        assert registry.is_loaded("acme")
        integration = registry.integration("acme")
        assert integration is not None
        assert integration.version == "1.2.0"
        assert registry.pm.get_plugin("acme") is not None
        assert hub.states.get("sensor.garage_connector_1_status").state == "Available"
        assert hub.states.get("sensor.garage_connector_2_status").state == "Available"
    finally:
        await hub.stop()


async def test_dependencies_set_up_first(tmp_path: Path) -> None:
    order: list[str] = []

    def setup_for(domain: str) -> Any:
        async def setup(ctx: SetupContext) -> bool:
            await asyncio.sleep(0)
            order.append(domain)
            return True

        return setup

    write_config(tmp_path, "http:\n  server_port: 0\nchild:\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.register(make_plugin("child", setup=setup_for("child"), dependencies=("parent",)))
    registry.register(make_plugin("parent", setup=setup_for("parent"), dependencies=("base",)))
    registry.register(make_plugin("base", setup=setup_for("base")))
    await hub.start()
    assert order == ["base", "parent", "child"]
    assert all(registry.is_loaded(d) for d in ("base", "parent", "child"))
    await hub.stop()


async def test_failing_setup_is_retried_while_the_rest_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = 0
    loaded = asyncio.Event()

    async def flaky(ctx: SetupContext) -> bool:
        nonlocal attempts
        attempts += 1
        # Registered before the failure: a failed attempt must not leave it behind (the next
        # attempt could not register it again).
        ctx.register_service("poke", lambda _: attempts)
        if attempts < 3:
            raise IntegrationNotReadyError("cloud not reachable")
        loaded.set()
        return True

    async def steady(ctx: SetupContext) -> bool:
        return True

    async def dependent(ctx: SetupContext) -> bool:
        assert attempts == 3, "set up before its dependency"
        return True

    write_config(tmp_path, "flaky:\nsteady:\nneeds_flaky:\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.retry_base = 0.01
    registry.register(make_plugin("flaky", setup=flaky))
    registry.register(make_plugin("steady", setup=steady))
    registry.register(make_plugin("needs_flaky", setup=dependent, dependencies=("flaky",)))
    with caplog.at_level(logging.WARNING):
        await hub.start()
    # The hub runs although flaky is still being retried.
    assert hub.state is CoreState.running
    assert registry.is_loaded("steady")
    statuses = registry.statuses()
    assert statuses["flaky"].state is SetupState.retrying
    assert statuses["flaky"].error == "cloud not reachable"
    assert statuses["needs_flaky"].state is SetupState.waiting
    assert "Set-up of flaky failed (attempt 1): cloud not reachable" in caplog.text
    await asyncio.wait_for(loaded.wait(), 5)
    for _ in range(10):
        if registry.is_loaded("needs_flaky"):
            break
        await asyncio.sleep(0.01)
    assert attempts == 3
    assert registry.is_loaded("flaky")
    assert registry.is_loaded("needs_flaky")
    assert await hub.services.call("flaky", "poke") == 3
    await hub.stop()


async def test_setup_returning_false_or_raising_is_reported(tmp_path: Path) -> None:
    async def false(ctx: SetupContext) -> bool:
        return False

    async def boom(ctx: SetupContext) -> bool:
        raise RuntimeError("bad wiring")

    write_config(tmp_path, "falsy:\nboom:\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.retry_base = 60
    registry.register(make_plugin("falsy", setup=false))
    registry.register(make_plugin("boom", setup=boom))
    await hub.start()
    statuses = registry.statuses()
    assert statuses["falsy"].error == "set-up returned False"
    assert statuses["boom"].error == "RuntimeError: bad wiring"
    assert statuses["boom"].next_retry_at is not None
    await hub.stop()
    assert hub.state is CoreState.stopped


async def test_bad_section_is_skipped_and_the_rest_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    async def setup(ctx: SetupContext) -> bool:
        calls.append(ctx.config)
        return True

    schema = vol.Schema({vol.Required("port"): int})
    write_config(tmp_path, "good:\n  port: 1\nbad:\n  port: nope\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.register(make_plugin("good", setup=setup, config_schema=schema))
    registry.register(make_plugin("bad", setup=setup, config_schema=schema))
    with caplog.at_level(logging.ERROR):
        await hub.start()
    assert calls == [{"port": 1}]
    assert "configuration.yaml:4: bad.port: expected a whole number" in caplog.text
    assert registry.is_loaded("good")
    assert "bad" not in registry.statuses()
    await hub.stop()


async def test_unknown_integration_and_cycle(tmp_path: Path) -> None:
    async def setup(ctx: SetupContext) -> bool:
        return True

    write_config(tmp_path, "one:\ntwo:\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.register(make_plugin("one", setup=setup, dependencies=("two",)))
    registry.register(make_plugin("two", setup=setup, dependencies=("one",)))
    await hub.start()
    statuses = registry.statuses()
    assert statuses["one"].state is SetupState.failed
    assert "cycle" in (statuses["one"].error or "") or "cycle" in (statuses["two"].error or "")
    await hub.stop()


async def test_core_section_error_stops_start(tmp_path: Path) -> None:
    write_config(tmp_path, "hub:\n  time_zone: Mars/Olympus\n")
    hub = new_hub(tmp_path)
    with pytest.raises(ConfigInvalidError) as info:
        await hub.start()
    assert "configuration.yaml:2: hub.time_zone: unknown time zone 'Mars/Olympus'" in str(
        info.value
    )
    await hub.stop()


def test_check_config_lists_every_error(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        """
        hub:
          name: Site
          time_zone: Nowhere/Land
        http:
          server_port: 99999
        no_such_integration:
          x: 1
        """,
    )
    errors = [str(e) for e in check_config(tmp_path)]
    assert errors == [
        "configuration.yaml:4: hub.time_zone: unknown time zone 'Nowhere/Land'",
        "configuration.yaml:6: http.server_port: must be at most 65535, got 99999",
        "configuration.yaml:7: no_such_integration: integration 'no_such_integration' not found",
    ]


async def test_unload_runs_in_reverse_order(tmp_path: Path) -> None:
    unloaded: list[str] = []

    async def setup(ctx: SetupContext) -> bool:
        return True

    def unload_for(domain: str) -> Any:
        async def unload(ctx: SetupContext) -> None:
            unloaded.append(domain)

        return unload

    write_config(tmp_path, "top:\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.register(
        make_plugin("top", setup=setup, unload=unload_for("top"), dependencies=("bottom",))
    )
    registry.register(make_plugin("bottom", setup=setup, unload=unload_for("bottom")))
    await hub.start()
    await hub.stop()
    assert unloaded == ["top", "bottom"]


async def test_a_default_integration_can_be_turned_off(tmp_path: Path) -> None:
    write_config(tmp_path, "http:\n  server_port: 0\nalerts: false\n")
    hub = new_hub(tmp_path)
    await hub.start()
    statuses = plugin_registry(hub).statuses()
    assert "alerts" not in statuses
    assert statuses["recorder"].state is SetupState.loaded  # the other defaults still run
    await hub.stop()


async def test_turning_off_what_another_integration_needs_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def setup(ctx: SetupContext) -> bool:
        return True

    write_config(tmp_path, "http:\n  server_port: 0\nneeds_alerts:\nalerts: false\n")
    hub = new_hub(tmp_path)
    plugin_registry(hub).register(
        make_plugin("needs_alerts", setup=setup, dependencies=("alerts",))
    )
    await hub.start()
    statuses = plugin_registry(hub).statuses()
    assert "alerts" not in statuses
    assert "needs_alerts" not in statuses
    assert "configuration.yaml:4: alerts: alerts is turned off (alerts: false)" in caplog.text
    await hub.stop()


async def health(hub: Hub) -> tuple[int, dict[str, Any]]:
    """GET /api/health over a real socket."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{hub.data[DATA_HTTP].url}/api/health") as response,
    ):
        return response.status, await response.json()


async def test_a_part_that_stops_working_shows_in_health_until_it_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reporters: list[HealthReporter] = []

    async def setup(ctx: SetupContext) -> bool:
        reporters.append(health_reporter(hub, "pump", "poller"))
        reporters.append(health_reporter(hub, "pump", "uplink"))
        return True

    write_config(
        tmp_path, "pump:\nhttp:\n  server_host: 127.0.0.1\n  server_port: 0\n  metrics_open: true\n"
    )
    hub = new_hub(tmp_path)
    plugin_registry(hub).register(make_plugin("pump", setup=setup))
    await hub.start()
    try:
        poller, uplink = reporters
        status, body = await health(hub)
        assert (status, body["status"], body["problems"]) == (200, "ok", [])
        assert body["integrations"]["pump"]["state"] == "loaded"

        uplink.degraded("broker slow: 3 s round trips")
        status, body = await health(hub)
        assert (status, body["status"], body["problems"]) == (200, "degraded", ["pump"])
        pump = body["integrations"]["pump"]
        assert (pump["state"], pump["error"]) == (
            "degraded",
            "uplink: broker slow: 3 s round trips",
        )

        poller.failed("device unreachable")
        poller.failed("device unreachable")  # repeated reports change nothing
        status, body = await health(hub)
        pump = body["integrations"]["pump"]
        # The worst part decides; every part is listed with its own health.
        assert (pump["state"], pump["error"]) == ("failed", "poller: device unreachable")
        assert pump["components"]["poller"]["health"] == "failed"
        assert pump["components"]["uplink"]["health"] == "degraded"
        assert body["integrations"]["recorder"]["state"] == "loaded"  # the others are fine
        assert "pump poller failed: device unreachable" in caplog.text
        assert caplog.text.count("device unreachable") == 1
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{hub.data[DATA_HTTP].url}/metrics") as response,
        ):
            text = await response.text()
        assert 'evhub_integration_working{domain="pump"} 0.0' in text
        assert 'evhub_integration_working{domain="recorder"} 1.0' in text

        poller.ok()
        uplink.ok()
        status, body = await health(hub)
        assert (status, body["status"], body["problems"]) == (200, "ok", [])
        pump = body["integrations"]["pump"]
        assert (pump["state"], pump["error"], pump["components"]) == ("loaded", None, {})
        assert "pump poller works again" in caplog.text
    finally:
        await hub.stop()


async def test_an_integration_that_cannot_set_up_makes_health_degraded(tmp_path: Path) -> None:
    async def never(ctx: SetupContext) -> bool:
        raise IntegrationNotReadyError("cloud not reachable")

    write_config(tmp_path, "cloudy:\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.retry_base = 60
    registry.register(make_plugin("cloudy", setup=never))
    await hub.start()
    try:
        status, body = await health(hub)
        assert (status, body["status"], body["problems"]) == (200, "degraded", ["cloudy"])
        assert body["integrations"]["cloudy"]["state"] == "retrying"
    finally:
        await hub.stop()


async def test_what_a_driver_fires_during_its_set_up_reaches_history_and_uptime(
    tmp_path: Path,
) -> None:
    """Infrastructure (recorder, uptime, alerts, automations) is up before any driver starts:
    a fault a charger reports right as its driver sets up is recorded and counted."""
    from hub.charger import fire_charger_event
    from hub.registry import DeviceKind, device_registry
    from integrations.recorder import get_recorder
    from integrations.uptime import engine_of

    async def setup(ctx: SetupContext) -> bool:
        hub = ctx.hub
        devices = device_registry(hub)
        station = devices.get_or_create(
            integration="acme", identifiers=frozenset({("acme", "st")}), kind=DeviceKind.STATION
        )
        port = devices.get_or_create(
            integration="acme",
            identifiers=frozenset({("acme", "st-1")}),
            kind=DeviceKind.CONNECTOR,
            via_device=("acme", "st"),
            connector_id=1,
        )
        fire_charger_event(
            hub,
            "status",
            station_id=station.id,
            device_id=port.id,
            data={"port": 1, "status": "Faulted", "previous": None, "error_code": "GroundFailure"},
        )
        return True

    write_config(tmp_path, "acme:\n")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.register(make_plugin("acme", setup=setup))
    await hub.start()
    try:
        assert registry.is_loaded("acme")
        recorder = get_recorder(hub)
        await recorder.flush()
        rows = await recorder.port_status(0)
        assert [(row["status"], row["error_code"]) for row in rows] == [
            ("Faulted", "GroundFailure")
        ]
        [outage] = engine_of(hub).open_outages()
        assert outage.cause == "faulted"
    finally:
        await hub.stop()


async def test_started_and_stopping_are_told_through_pluggy_to_late_plugins_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The notification hooks are historic: a plugin registered after the start is told it
    started when it registers; an error in one is logged, not raised."""
    told: list[tuple[str, str]] = []

    class Early:
        @hookimpl
        def evhub_hub_started(self, hub: Hub) -> None:
            told.append(("early", "started"))

        @hookimpl
        def evhub_hub_stopping(self, hub: Hub) -> None:
            told.append(("early", "stopping"))
            raise RuntimeError("a plugin's own trouble")

    class Late:
        @hookimpl
        def evhub_hub_started(self, hub: Hub) -> None:
            told.append(("late", "started"))

    write_config(tmp_path, "")
    hub = new_hub(tmp_path)
    registry = plugin_registry(hub)
    registry.pm.register(Early())
    await hub.start()
    await hub.block_till_done()
    assert told == [("early", "started")]
    registry.pm.register(Late())
    assert told == [("early", "started"), ("late", "started")]
    with caplog.at_level(logging.ERROR):
        await hub.stop()
    assert ("early", "stopping") in told
    assert "Error in evhub_hub_stopping hooks" in caplog.text
