"""The recorder: the hub's durable history in SQLite (default) or PostgreSQL.

It keeps state changes, events, charging sessions, port status changes, outages,
exclusions, alerts, security events and audit entries, commits them at most a second after
they happen and purges old history every night in small batches::

    recorder:
      db_url: sqlite:///evhub.db     # default; or postgresql://user:pass@host/db
      commit_interval: 1             # seconds: a change is on disk within this (at most 1)
      purge_keep_days: 30            # states and events
      keep_days: {sensor: 10}        # per domain, for states
      long_keep_days: 731            # sessions, outages, exclusions, alerts, security, audit
      auto_purge: true
      max_backlog: 200000            # state changes and events waiting before some are dropped
      exclude: {domains: [], entity_ids: [], entity_globs: [], event_types: []}
      include: {domains: [], entity_ids: [], entity_globs: [], event_types: []}
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import voluptuous as vol

from hub.clock import Timer, clock
from hub.const import EVENT_HUB_FINAL_WRITE
from hub.core import Hub, HubKey, ServiceCall, Unsubscribe, valid_domain, valid_entity_id
from hub.hookspecs import hookimpl
from hub.plugins import Integration, SetupContext, health_reporter
from hub.restore_state import restore_newer, saved_states
from integrations.recorder.backend import RecorderBackend, RecorderError
from integrations.recorder.core import Recorder
from integrations.recorder.filters import (
    CONF_DOMAINS,
    CONF_ENTITY_GLOBS,
    CONF_ENTITY_IDS,
    CONF_EVENT_TYPES,
    RecorderFilter,
)
from integrations.recorder.history import RecorderHistory, RecorderMetrics

__all__ = ["DOMAIN", "Recorder", "RecorderError", "get_recorder"]

_LOGGER = logging.getLogger(__name__)

DOMAIN: Final = "recorder"
DATA_RECORDER: Final[HubKey[_Setup]] = HubKey("recorder.instance")
DEFAULT_DB_FILE: Final = "evhub.db"
# The part of the recorder /api/health reports on: what commits to the database.
HEALTH_WRITER: Final = "writer"

CONF_DB_URL: Final = "db_url"
CONF_COMMIT_INTERVAL: Final = "commit_interval"
CONF_PURGE_KEEP_DAYS: Final = "purge_keep_days"
CONF_KEEP_DAYS: Final = "keep_days"
CONF_LONG_KEEP_DAYS: Final = "long_keep_days"
CONF_AUTO_PURGE: Final = "auto_purge"
CONF_MAX_BACKLOG: Final = "max_backlog"
CONF_INCLUDE: Final = "include"
CONF_EXCLUDE: Final = "exclude"
ATTR_KEEP_DAYS: Final = "keep_days"
ATTR_LONG_KEEP_DAYS: Final = "long_keep_days"
# The nightly purge runs at this local time (hub.time_zone).
PURGE_HOUR: Final = 4
PURGE_MINUTE: Final = 12


def _db_url(value: Any) -> str:
    url = str(value).strip()
    if url.startswith(("postgresql://", "postgres://")):
        return url
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return url
    raise vol.Invalid(f"unsupported db_url {url!r}: expected sqlite:///PATH or postgresql://...")


def _entity_id(value: Any) -> str:
    if not isinstance(value, str) or not valid_entity_id(value):
        raise vol.Invalid(f"invalid entity id {value!r}")
    return value


def _domain(value: Any) -> str:
    if not isinstance(value, str) or not valid_domain(value):
        raise vol.Invalid(f"invalid domain {value!r}")
    return value


def _none_to_empty(value: Any) -> Any:
    return {} if value is None else value


_DAYS = vol.All(vol.Coerce(float), vol.Range(min=0))
_FILTER = vol.All(
    _none_to_empty,
    vol.Schema(
        {
            vol.Optional(CONF_DOMAINS, default=[]): [_domain],
            vol.Optional(CONF_ENTITY_IDS, default=[]): [_entity_id],
            vol.Optional(CONF_ENTITY_GLOBS, default=[]): [str],
            vol.Optional(CONF_EVENT_TYPES, default=[]): [str],
        }
    ),
)

CONFIG_SCHEMA: Final = vol.All(
    _none_to_empty,
    vol.Schema(
        {
            vol.Optional(CONF_DB_URL): _db_url,
            vol.Optional(CONF_COMMIT_INTERVAL, default=1.0): vol.All(
                vol.Coerce(float), vol.Range(min=0.01, max=1.0)
            ),
            vol.Optional(CONF_PURGE_KEEP_DAYS, default=30.0): _DAYS,
            vol.Optional(CONF_KEEP_DAYS, default={}): vol.All(_none_to_empty, {_domain: _DAYS}),
            vol.Optional(CONF_LONG_KEEP_DAYS, default=731.0): _DAYS,
            vol.Optional(CONF_AUTO_PURGE, default=True): bool,
            vol.Optional(CONF_MAX_BACKLOG, default=200_000): vol.All(int, vol.Range(min=100)),
            vol.Optional(CONF_INCLUDE, default={}): _FILTER,
            vol.Optional(CONF_EXCLUDE, default={}): _FILTER,
        }
    ),
)

PURGE_SCHEMA: Final = vol.Schema(
    {vol.Optional(ATTR_KEEP_DAYS): _DAYS, vol.Optional(ATTR_LONG_KEEP_DAYS): _DAYS}
)


def make_backend(hub: Hub, db_url: str | None) -> RecorderBackend:
    """Return the backend a db_url names (None: evhub.db in the config dir)."""
    if db_url is None or db_url.startswith("sqlite:///"):
        from integrations.recorder.sqlite import SQLiteBackend

        path = Path(db_url[len("sqlite:///") :]) if db_url else Path(DEFAULT_DB_FILE)
        if not path.is_absolute():
            path = hub.path(str(path))
        return SQLiteBackend(path)
    from integrations.recorder.postgres import PostgresBackend

    return PostgresBackend(db_url)


def get_recorder(hub: Hub) -> Recorder:
    """Return the hub's recorder; RecorderError when the integration is not set up."""
    setup = hub.data.get(DATA_RECORDER)
    if setup is None:
        raise RecorderError("the recorder integration is not set up")
    return setup.recorder


@dataclass(slots=True)
class _Setup:
    recorder: Recorder
    unsubs: list[Unsubscribe]
    timer: Timer | None = None
    closed: bool = False


def next_purge_time(now: float, time_zone: str) -> float:
    """Return the next PURGE_HOUR:PURGE_MINUTE local time after now (POSIX seconds)."""
    zone = zoneinfo.ZoneInfo(time_zone)
    local = datetime.fromtimestamp(now, zone)
    target = local.replace(hour=PURGE_HOUR, minute=PURGE_MINUTE, second=0, microsecond=0)
    if target.timestamp() <= now:
        target = (target + timedelta(days=1)).replace(hour=PURGE_HOUR, minute=PURGE_MINUTE)
    return target.timestamp()


async def async_setup(ctx: SetupContext) -> bool:
    """Open the database, start recording and register recorder.purge."""
    hub, config = ctx.hub, ctx.config
    hub_clock = clock(hub)
    recorder = Recorder(
        hub,
        make_backend(hub, config.get(CONF_DB_URL)),
        commit_interval=config[CONF_COMMIT_INTERVAL],
        keep_days=config[CONF_PURGE_KEEP_DAYS],
        domain_keep_days=config[CONF_KEEP_DAYS],
        long_keep_days=config[CONF_LONG_KEEP_DAYS],
        max_backlog=config[CONF_MAX_BACKLOG],
        record_filter=RecorderFilter(config[CONF_INCLUDE], config[CONF_EXCLUDE]),
        now=hub_clock.time,
        health=health_reporter(hub, DOMAIN, HEALTH_WRITER),
    )
    await recorder.start()
    setup = _Setup(recorder, [])
    hub.data[DATA_RECORDER] = setup
    ctx.on_unload(lambda: _unload(hub))
    # The monitoring API reads history through hub.history, never the recorder itself.
    ctx.provide_history(RecorderHistory(hub, recorder))
    ctx.register_metrics(RecorderMetrics(recorder))
    # After a crash the periodic save of states is up to 15 minutes old; the history is at
    # most a commit interval behind.
    saved_until = max((state.last_updated_ts for state in saved_states(hub)), default=None)
    restore_newer(hub, await recorder.latest_states(newer_than=saved_until))

    async def purge_service(call: ServiceCall) -> dict[str, int]:
        return await recorder.purge(
            call.data.get(ATTR_KEEP_DAYS), call.data.get(ATTR_LONG_KEEP_DAYS)
        )

    ctx.register_service("purge", purge_service, PURGE_SCHEMA, description="Purge old history")
    time_zone = hub.config.time_zone if hub.config is not None else "UTC"

    def schedule() -> None:
        delay = next_purge_time(hub_clock.time(), time_zone) - hub_clock.time()
        setup.timer = hub_clock.call_later(delay, run_purge)

    def run_purge() -> None:
        hub.create_task(nightly(), "recorder nightly purge")

    async def nightly() -> None:
        try:
            await recorder.purge()
        except Exception:
            _LOGGER.exception("Recorder nightly purge failed")
        if not setup.closed:
            schedule()

    if config[CONF_AUTO_PURGE]:
        schedule()

    async def final_write(_event: Any) -> None:
        await _close(setup)

    # Not through the set-up context: undone at the final write, after every unload, so the
    # other integrations' last events are recorded.
    setup.unsubs.append(hub.bus.listen_once(EVENT_HUB_FINAL_WRITE, final_write))
    return True


async def _close(setup: _Setup) -> None:
    if setup.closed:
        return
    setup.closed = True
    if setup.timer is not None:
        setup.timer.cancel()
    for unsub in setup.unsubs:
        unsub()
    await setup.recorder.stop()


async def _unload(hub: Hub) -> None:
    """Stop recording: at hub stop only at the final write, so the others' last events count."""
    setup = hub.data.get(DATA_RECORDER)
    if setup is None:
        return
    if hub.is_running:
        hub.data.pop(DATA_RECORDER, None)
        await _close(setup)


@hookimpl
def evhub_integration() -> Integration:
    """Describe the recorder integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Recorder",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        infrastructure=True,
    )
