"""Zaptec chargers through Zaptec's cloud API, built on nothing but the plugin contract.

Configuration::

    zaptec:
      username: !secret zaptec_username
      password: !secret zaptec_password
      scan_interval: 30        # seconds between state polls (10 or more: the cloud's limits)
      timeout: 10              # seconds one request may take
      unknown_after: 2         # failed rounds before the chargers' state is unknown
      chargers: [...]          # only these charger ids (default: every one the account sees)
      base_url: https://api.zaptec.com

Each charger is a station with one connector; ``charger.reset`` (restart),
``charger.start_charging``/``stop_charging`` (resume/pause), ``charger.set_current_limit``
(the installation's available current, shared by its chargers) and
``charger.trigger_status`` reach it through the cloud.
"""

from __future__ import annotations

from typing import Final

import aiohttp
import voluptuous as vol
from aiohttp import web

from hub.auth import Role
from hub.clock import clock
from hub.core import Hub, HubKey
from hub.hookspecs import hookimpl
from hub.http.schemas import (
    BOOLEAN,
    CHARGER_SESSION,
    CONNECTOR_STATUS,
    INTEGER,
    NUMBER,
    OPT_BOOLEAN,
    OPT_NUMBER,
    OPT_STRING,
    STRING,
    array,
    dict_of,
    json_ok,
    nullable,
    obj,
)
from hub.http.view import json_response
from hub.plugins import Integration, IntegrationNotReadyError, SetupContext
from integrations.zaptec.account import Account
from integrations.zaptec.api import DEFAULT_BASE_URL, CloudUnreachableError, ZaptecApi
from integrations.zaptec.charger import DOMAIN, ZaptecCharger

__all__ = ["CONFIG_SCHEMA", "DOMAIN", "async_setup", "evhub_integration"]

CONF_USERNAME: Final = "username"
CONF_PASSWORD: Final = "password"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_TIMEOUT: Final = "timeout"
CONF_UNKNOWN_AFTER: Final = "unknown_after"
CONF_CHARGERS: Final = "chargers"
CONF_BASE_URL: Final = "base_url"

CONFIG_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_USERNAME): vol.All(str, vol.Length(min=1, max=254)),
        vol.Required(CONF_PASSWORD): vol.All(str, vol.Length(min=1, max=1024)),
        vol.Optional(CONF_SCAN_INTERVAL, default=30.0): vol.All(
            vol.Coerce(float), vol.Range(min=10, max=3600)
        ),
        vol.Optional(CONF_TIMEOUT, default=10.0): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=120)
        ),
        vol.Optional(CONF_UNKNOWN_AFTER, default=2): vol.All(int, vol.Range(min=1, max=100)),
        vol.Optional(CONF_CHARGERS): [vol.Match(r"^[A-Za-z0-9-]{1,64}$", msg="a charger id")],
        vol.Optional(CONF_BASE_URL, default=DEFAULT_BASE_URL): vol.All(
            vol.Url(), vol.Match(r"^https?://", msg="an http(s) URL")
        ),
    }
)

DATA_ZAPTEC: Final[HubKey[Account]] = HubKey("zaptec.account")

# What GET /api/zaptec/chargers answers (never the account's credentials).
ACCOUNT_ANSWER: Final = obj(
    {
        "base_url": STRING,
        "reachable": BOOLEAN,
        "failures": INTEGER,  # failed requests in a row
        "last_error": OPT_STRING,
        "retry_in": NUMBER,  # seconds until the next try after a failure; 0 when reachable
        "rounds": INTEGER,
        "chargers": array(
            obj(
                {
                    "id": STRING,
                    "name": STRING,
                    "device_id": STRING,
                    "installation_id": OPT_STRING,
                    "serial": OPT_STRING,
                    "online": OPT_BOOLEAN,  # None: unknown (the cloud unreachable)
                    "status": nullable(CONNECTOR_STATUS),
                    "warnings": OPT_STRING,
                    "last_error": OPT_STRING,
                    # power, energy, session_energy, current limit, per phase voltage and
                    # current: None where the cloud said nothing (readable) about it
                    "values": dict_of(OPT_NUMBER),
                    "session": CHARGER_SESSION,
                }
            )
        ),
    }
)


async def async_setup(ctx: SetupContext) -> bool:
    """Log in, list the chargers, register them and start polling their state."""
    hub, config = ctx.hub, ctx.config
    session = aiohttp.ClientSession()
    ctx.on_unload(session.close)
    api = ZaptecApi(
        session,
        config[CONF_USERNAME],
        config[CONF_PASSWORD],
        base_url=config[CONF_BASE_URL],
        timeout=config[CONF_TIMEOUT],
        now=clock(hub).time,
    )
    try:
        found = await api.chargers()
    except CloudUnreachableError as err:
        raise IntegrationNotReadyError(str(err)) from err
    wanted = config.get(CONF_CHARGERS)
    if wanted is not None:
        found = [info for info in found if info.charger_id in wanted]
    account = Account(
        ctx, api, interval=config[CONF_SCAN_INTERVAL], unknown_after=config[CONF_UNKNOWN_AFTER]
    )
    for info in found:
        charger = ZaptecCharger(hub, account, info)
        account.chargers[info.charger_id] = charger
        ctx.register_charger(charger)
        if hub.states.get(charger.station_entities.entity_id(hub, "connectivity")) is None:
            charger.station_entities.write(hub, "connectivity", None)
    hub.data[DATA_ZAPTEC] = account
    ctx.on_unload(lambda: hub.data.pop(DATA_ZAPTEC, None))
    ctx.data = account

    async def chargers_view(request: web.Request) -> web.Response:
        return json_response(account.as_dict())

    ctx.register_view(
        "GET",
        "/api/zaptec/chargers",
        chargers_view,
        role=Role.VIEWER,
        summary="Zaptec chargers and the cloud's reachability",
        responses=json_ok(ACCOUNT_ANSWER),
    )
    account.start()
    return True


def account_of(hub: Hub) -> Account | None:
    """The running account (tests and other plugins' views), or None."""
    return hub.data.get(DATA_ZAPTEC)


@hookimpl
def evhub_integration() -> Integration:
    """Describe the Zaptec integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Zaptec cloud chargers",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
    )
