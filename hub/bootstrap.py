"""Start-up and shut-down of a hub: config, storage, integrations, HTTP."""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import voluptuous as vol

from hub.config import (
    ConfigError,
    HubConfig,
    NodeDict,
    did_you_mean,
    find_line,
    load_config_file,
    validate_section,
)
from hub.config_check import unknown_services
from hub.const import (
    CONF_HTTP,
    CONF_HUB,
    CONF_NAME,
    CONF_TIME_ZONE,
    CONFIG_FILE,
    EVENT_HUB_STARTED,
    EVENT_INTEGRATION_LOADED,
)
from hub.core import Event, Hub
from hub.exceptions import HubError, IntegrationError
from hub.http import DATA_HTTP, HTTP_SCHEMA, async_start_http
from hub.plugins import IntegrationStatus, PluginLoader, SetupState, plugin_registry

_LOGGER = logging.getLogger(__name__)

CORE_KEYS = frozenset({CONF_HUB, CONF_HTTP})
# Set up with their defaults even when configuration.yaml does not name them: a site owner
# gets the built-in alert rules without writing YAML. `<domain>: false` turns one off.
DEFAULT_INTEGRATIONS = (
    "alerts",
    "automations",
    "recorder",
    "uptime",
    "reports",
    "charge_success",
    "security_monitor",
)


def _time_zone(value: Any) -> str:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise vol.Invalid(f"unknown time zone {value!r}") from err
    return str(value)


HUB_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_NAME, default="evhub"): str,
        vol.Optional(CONF_TIME_ZONE, default="UTC"): _time_zone,
    }
)


class ConfigInvalidError(HubError):
    """The configuration has errors that keep the hub from starting."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


def process_config(
    raw: Mapping[str, Any], plugins: PluginLoader, *, http_default: bool = True
) -> HubConfig:
    """Validate every section; errors are collected, not raised.

    A bad core section is fatal; a bad integration section skips that integration only.
    The HTTP server runs unless there is no config file at all (a hub embedded in a test).
    """
    result = HubConfig()
    core, errors = validate_section(HUB_SCHEMA, raw.get(CONF_HUB) or {}, CONF_HUB, raw)
    if errors:
        result.errors.extend(errors)
        result.fatal = True
    else:
        result.name, result.time_zone = core[CONF_NAME], core[CONF_TIME_ZONE]
    if CONF_HTTP in raw or http_default:
        http, errors = validate_section(HTTP_SCHEMA, raw.get(CONF_HTTP) or {}, CONF_HTTP, raw)
        if errors:
            result.errors.extend(errors)
            result.fatal = True
        else:
            result.http = http
    # `recorder: false` turns a default integration off.
    turned_off = {key for key in raw if key not in CORE_KEYS and raw[key] is False}
    pending = [key for key in raw if key not in CORE_KEYS and key not in turned_off]
    if http_default:
        pending.extend(domain for domain in DEFAULT_INTEGRATIONS if domain not in raw)
    seen: set[str] = set()
    needed_but_off: set[str] = set()
    while pending:
        domain = pending.pop(0)
        if domain in seen:
            continue
        seen.add(domain)
        file, line = find_line(raw, [domain]) if domain in raw else (None, None)
        if domain in turned_off:
            needed_but_off.add(domain)
            result.errors.append(
                ConfigError(
                    f"{domain} is turned off ({domain}: false) but an integration needs it",
                    file=file,
                    line=line,
                    key=domain,
                )
            )
            continue
        try:
            integration = plugins.load(domain)
        except IntegrationError as err:
            message = str(err)
            installed = plugins.available()
            if domain not in installed:
                close = did_you_mean(domain, [*installed, *CORE_KEYS])
                if close is not None:
                    message += f"; did you mean '{close}'?"
            result.errors.append(ConfigError(message, file=file, line=line, key=domain))
            continue
        section = raw.get(domain)
        if integration.config_schema is None:
            validated: Any = section if section is not None else {}
        else:
            validated, errors = validate_section(
                integration.config_schema, section if section is not None else {}, domain, raw
            )
            if errors:
                result.errors.extend(errors)
                continue
        if integration.config_errors is not None:
            result.errors.extend(integration.config_errors(validated))
        result.integrations[domain] = validated
        pending.extend(dep for dep in integration.dependencies if dep not in seen)
    _drop_dependents(plugins, result, needed_but_off)
    return result


def _drop_dependents(plugins: PluginLoader, result: HubConfig, missing: set[str]) -> None:
    """Leave out every integration that needs, directly or not, one that is turned off."""
    changed = bool(missing)
    while changed:
        changed = False
        for domain in list(result.integrations):
            if any(dep in missing for dep in plugins.load(domain).dependencies):
                del result.integrations[domain]
                missing.add(domain)
                changed = True


def load_hub_config(hub: Hub) -> HubConfig:
    """Load and validate configuration.yaml (blocking: run it in the executor)."""
    path = hub.path(CONFIG_FILE)
    raw: Mapping[str, Any]
    if path.exists():
        raw = load_config_file(hub.config_dir)
        if not isinstance(raw, dict):
            raise ConfigInvalidError(
                [ConfigError("expected a mapping of sections", file=CONFIG_FILE, line=1)]
            )
        return process_config(raw, plugin_registry(hub))
    return process_config(NodeDict(), plugin_registry(hub), http_default=False)


async def setup_hub(hub: Hub) -> None:
    """Load config, storage and restored states; start HTTP; set up integrations."""
    from hub.charger import setup_charger_services
    from hub.notify import setup_persistent_notifications
    from hub.registry import async_load_registries
    from hub.restore_state import async_load_restore_state, mark_orphans_unavailable
    from hub.security import async_load_security_log

    try:
        config = await hub.run_in_executor(load_hub_config, hub)
    except ConfigError as err:
        raise ConfigInvalidError([err]) from err
    if config.fatal:
        raise ConfigInvalidError(config.errors)
    for error in config.errors:
        _LOGGER.error("Configuration error, skipped: %s", error)
    hub.config = config
    await async_load_registries(hub)
    await async_load_restore_state(hub)
    await async_load_security_log(hub)
    setup_charger_services(hub)
    await setup_persistent_notifications(hub)
    if config.http is not None:
        await async_start_http(hub, config.http)
    plugins = plugin_registry(hub)
    hub.bus.listen_once(
        "hub_started", lambda _: _notify(plugins.pm.hook.evhub_hub_started, hub, "started")
    )
    hub.bus.listen_once(EVENT_HUB_STARTED, lambda _: _report_start(hub))
    await plugins.setup(config.integrations)
    loaded = {
        domain for domain, status in plugins.statuses().items() if status.state is SetupState.loaded
    }
    mark_orphans_unavailable(hub, loaded)


def _report_start(hub: Hub) -> None:
    """Log that the hub started, or, while an integration did not, what did not and why.

    "evhub started" only when every integration is set up: a listener whose port another
    program holds is named instead (and "evhub started" follows once its retry succeeds).
    """
    statuses = plugin_registry(hub).statuses()
    down = {
        domain: status
        for domain, status in statuses.items()
        if status.state in (SetupState.failed, SetupState.retrying, SetupState.waiting)
    }
    if not down:
        _LOGGER.info("evhub started (%s)", hub.config_dir)
        return
    _LOGGER.warning(
        "evhub running without %s",
        "; ".join(f"{domain} ({_why_down(status)})" for domain, status in sorted(down.items())),
    )
    retrying = {domain for domain, status in down.items() if status.state is not SetupState.failed}
    if not retrying:
        return

    def loaded(event: Event) -> None:
        retrying.discard(event.data.get("domain"))
        if not retrying:
            unsubscribe()
            _LOGGER.info("evhub started (%s): every integration is set up now", hub.config_dir)

    unsubscribe = hub.bus.listen(EVENT_INTEGRATION_LOADED, loaded)


def _why_down(status: IntegrationStatus) -> str:
    if status.state is SetupState.waiting:
        return "waiting for what it depends on"
    reason = status.error or "set-up failed"
    return f"{reason}; retrying" if status.state is SetupState.retrying else reason


def _notify(hook: Any, hub: Hub, what: str) -> None:
    """Call a historic notification hook through pluggy; a plugin's error is logged."""
    try:
        hook.call_historic(kwargs={"hub": hub})
    except Exception:
        _LOGGER.exception("Error in evhub_hub_%s hooks", what)


async def shutdown_hub(hub: Hub) -> None:
    """Stop HTTP and unload integrations, dependents first."""
    plugins = plugin_registry(hub)
    _notify(plugins.pm.hook.evhub_hub_stopping, hub, "stopping")
    server = hub.data.pop(DATA_HTTP, None)
    if server is not None:
        await server.stop()
    await plugins.unload_all()


def check_config(config_dir: Any) -> list[ConfigError]:
    """Load and validate a config dir the way start-up does; return every error found."""

    directory = Path(config_dir)
    if not directory.joinpath(CONFIG_FILE).exists():
        return [ConfigError(f"no {CONFIG_FILE} in {directory}", file=str(directory))]
    try:
        raw = load_config_file(directory)
    except ConfigError as err:
        return [err]
    plugins = PluginLoader()
    result = process_config(raw, plugins)
    # Beyond start-up's checks: services the configuration calls that nothing provides.
    return [*result.errors, *unknown_services(raw, result, plugins)]


class Bootstrap:
    """The hub's lifecycle from configuration.yaml: what Hub.start and Hub.stop run."""

    async def setup(self, hub: Hub) -> None:
        """Load config, storage and restored states; start HTTP; set up integrations."""
        await setup_hub(hub)

    async def shutdown(self, hub: Hub) -> None:
        """Stop HTTP and unload integrations, dependents first."""
        await shutdown_hub(hub)


def new_hub(config_dir: str | Path) -> Hub:
    """A hub that runs the configuration of config_dir when started (the CLI's, the tests')."""
    return Hub(config_dir, Bootstrap())
