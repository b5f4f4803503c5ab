"""OCPP central system: chargers speaking OCPP 1.6J or 2.0.1 connect to evhub.

Configuration::

    ocpp:
      listeners:
        - port: 9000
          security_profile: 1          # 0 none, 1 Basic, 2 Basic over TLS, 3 mutual TLS
      unknown_chargers: reject         # reject | pending | accept
      chargers:
        - id: CP-1
          name: Bay 1
          site: Depot North
          password: !secret cp1_password
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.core import Hub, HubKey, ServiceCall
from hub.exceptions import ServiceValidationError
from hub.hookspecs import hookimpl
from hub.plugins import Integration, SetupContext
from integrations.ocpp import features
from integrations.ocpp.cli import evhub_cli_commands as evhub_cli_commands  # the CLI hook
from integrations.ocpp.const import (
    CONF_AUTHORIZE_UNKNOWN,
    CONF_BURST,
    CONF_CA_CERTS,
    CONF_CALL_TIMEOUT,
    CONF_CERTFILE,
    CONF_CHARGERS,
    CONF_CRL_FILE,
    CONF_DUPLICATE_CONNECTION,
    CONF_FUTURE_MINUTES,
    CONF_HANDSHAKE_TIMEOUT,
    CONF_HEARTBEAT_INTERVAL,
    CONF_HOST,
    CONF_ID,
    CONF_ID_TAGS,
    CONF_KEYFILE,
    CONF_LISTENERS,
    CONF_MAX_FRAME_SIZE,
    CONF_MAX_PENDING,
    CONF_MAX_PORTS,
    CONF_NAME,
    CONF_OFFLINE_AFTER,
    CONF_PASSWORD,
    CONF_PASSWORD_HASH,
    CONF_PAST_DAYS,
    CONF_PATH,
    CONF_PENDING_EXPIRY,
    CONF_PORT,
    CONF_RATE,
    CONF_RATE_LIMIT,
    CONF_SECURITY_PROFILE,
    CONF_SITE,
    CONF_TIMESTAMP_WINDOW,
    CONF_UNKNOWN_CHARGERS,
    DEFAULT_BURST,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_PENDING,
    DEFAULT_OFFLINE_AFTER,
    DEFAULT_PATH,
    DEFAULT_PENDING_EXPIRY_HOURS,
    DEFAULT_PORT,
    DEFAULT_RATE,
    DOMAIN,
    DUPLICATE_REFUSE_BOTH,
    DUPLICATE_REFUSE_NEW,
    DUPLICATE_REPLACE,
    SERVICES,
    UNKNOWN_ACCEPT,
    UNKNOWN_PENDING,
    UNKNOWN_REJECT,
)
from integrations.ocpp.features.base import valid_cp_id
from integrations.ocpp.limits import DEFAULT_FUTURE_MINUTES, DEFAULT_MAX_PORTS, DEFAULT_PAST_DAYS
from integrations.ocpp.transactions import (
    CONF_TRANSACTIONS_DB_URL,
    store_for,
    valid_db_url,
)

if TYPE_CHECKING:
    from integrations.ocpp.system import CentralSystem

_LOGGER = logging.getLogger(__name__)

DATA_SYSTEM: Final[HubKey[CentralSystem]] = HubKey("ocpp.system")


_CP_ID = valid_cp_id


def _listener(value: Any) -> Any:
    value = _LISTENER_SCHEMA(value)
    profile = value[CONF_SECURITY_PROFILE]
    if profile >= 2:
        for key in (CONF_CERTFILE, CONF_KEYFILE):
            if key not in value:
                raise vol.Invalid(f"security_profile {profile} needs {key}", path=[key])
    if profile >= 2:
        certfiles, keyfiles = value[CONF_CERTFILE], value[CONF_KEYFILE]
        if (1 if isinstance(certfiles, str) else len(certfiles)) != (
            1 if isinstance(keyfiles, str) else len(keyfiles)
        ):
            raise vol.Invalid("give one keyfile for each certfile", path=[CONF_KEYFILE])
    if profile == 3 and CONF_CA_CERTS not in value:
        raise vol.Invalid("security_profile 3 needs ca_certs", path=[CONF_CA_CERTS])
    if profile != 3 and CONF_CRL_FILE in value:
        raise vol.Invalid(
            "crl_file checks client certificates: only security_profile 3 has them",
            path=[CONF_CRL_FILE],
        )
    return value


_LISTENER_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_HOST, default="0.0.0.0"): str,
        vol.Optional(CONF_PORT, default=DEFAULT_PORT): vol.All(
            vol.Coerce(int), vol.Range(min=0, max=65535)
        ),
        vol.Optional(CONF_PATH, default=DEFAULT_PATH): vol.All(str, vol.Match(r"^/")),
        # Required on purpose: running without security must be a choice someone wrote down.
        vol.Required(CONF_SECURITY_PROFILE): vol.All(vol.Coerce(int), vol.In([0, 1, 2, 3])),
        # One file, or two: an RSA and an ECDSA certificate (and their keys, in order).
        vol.Optional(CONF_CERTFILE): vol.Any(str, vol.All([str], vol.Length(min=1, max=2))),
        vol.Optional(CONF_KEYFILE): vol.Any(str, vol.All([str], vol.Length(min=1, max=2))),
        vol.Optional(CONF_CA_CERTS): str,
        # Certificate revocation lists (PEM, one or more, or DER) the client certificates
        # are checked against; re-read when the file changes.
        vol.Optional(CONF_CRL_FILE): str,
    }
)

_CHARGER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_ID): _CP_ID,
        vol.Optional(CONF_NAME): str,
        vol.Optional(CONF_SITE): str,
        # OCPP's security profiles ask for an AuthorizationKey of 16 to 40 characters.
        vol.Exclusive(CONF_PASSWORD, "password"): vol.All(str, vol.Length(min=16, max=40)),
        vol.Exclusive(CONF_PASSWORD_HASH, "password"): vol.All(str, vol.Match(r"^sha256\$")),
        # The lowest profile it may connect with; default: the highest any listener offers.
        vol.Optional(CONF_SECURITY_PROFILE): vol.All(vol.Coerce(int), vol.In([0, 1, 2, 3])),
    }
)


def _unique_ids(chargers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    for index, charger in enumerate(chargers):
        if charger[CONF_ID] in seen:
            raise vol.Invalid(f"charge point id {charger[CONF_ID]!r} listed twice", path=[index])
        seen.add(charger[CONF_ID])
    return chargers


CONFIG_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_LISTENERS): vol.All([_listener], vol.Length(min=1)),
        vol.Optional(CONF_UNKNOWN_CHARGERS, default=UNKNOWN_REJECT): vol.In(
            [UNKNOWN_REJECT, UNKNOWN_PENDING, UNKNOWN_ACCEPT]
        ),
        vol.Optional(CONF_HEARTBEAT_INTERVAL, default=DEFAULT_HEARTBEAT_INTERVAL): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=86400)
        ),
        vol.Optional(CONF_OFFLINE_AFTER, default=DEFAULT_OFFLINE_AFTER): vol.All(
            vol.Coerce(float), vol.Range(min=1.0, max=100.0)
        ),
        vol.Optional(CONF_CALL_TIMEOUT, default=DEFAULT_CALL_TIMEOUT): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=600)
        ),
        vol.Optional(CONF_MAX_FRAME_SIZE, default=DEFAULT_MAX_FRAME_SIZE): vol.All(
            vol.Coerce(int), vol.Range(min=1024, max=16 * 1024 * 1024)
        ),
        vol.Optional(CONF_RATE_LIMIT, default={}): vol.Schema(
            {
                vol.Optional(CONF_RATE, default=DEFAULT_RATE): vol.All(
                    vol.Coerce(float), vol.Range(min=0.1)
                ),
                vol.Optional(CONF_BURST, default=DEFAULT_BURST): vol.All(
                    vol.Coerce(float), vol.Range(min=1)
                ),
            }
        ),
        vol.Optional(CONF_ID_TAGS, default=[]): [vol.All(str, vol.Length(min=1, max=36))],
        vol.Optional(CONF_AUTHORIZE_UNKNOWN, default=False): bool,
        vol.Optional(CONF_CHARGERS, default=[]): vol.All([_CHARGER_SCHEMA], _unique_ids),
        vol.Optional(CONF_MAX_PORTS, default=DEFAULT_MAX_PORTS): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=1000)
        ),
        vol.Optional(CONF_TIMESTAMP_WINDOW, default={}): vol.Schema(
            {
                vol.Optional(CONF_PAST_DAYS, default=DEFAULT_PAST_DAYS): vol.All(
                    vol.Coerce(float), vol.Range(min=1, max=3660)
                ),
                vol.Optional(CONF_FUTURE_MINUTES, default=DEFAULT_FUTURE_MINUTES): vol.All(
                    vol.Coerce(float), vol.Range(min=1, max=525600)
                ),
            }
        ),
        vol.Optional(CONF_HANDSHAKE_TIMEOUT, default=DEFAULT_HANDSHAKE_TIMEOUT): vol.All(
            vol.Coerce(float), vol.Range(min=0.5, max=300)
        ),
        vol.Optional(CONF_DUPLICATE_CONNECTION, default=DUPLICATE_REFUSE_NEW): vol.In(
            [DUPLICATE_REFUSE_NEW, DUPLICATE_REPLACE, DUPLICATE_REFUSE_BOTH]
        ),
        vol.Optional(CONF_MAX_PENDING, default=DEFAULT_MAX_PENDING): vol.All(
            vol.Coerce(int), vol.Range(min=0, max=10000)
        ),
        vol.Optional(CONF_PENDING_EXPIRY, default=DEFAULT_PENDING_EXPIRY_HOURS): vol.All(
            vol.Coerce(float), vol.Range(min=0.01, max=8760)
        ),
        # Where transactions are kept (default: ocpp_transactions.db in the config dir).
        vol.Optional(CONF_TRANSACTIONS_DB_URL): valid_db_url,
        **features.config_keys(),
    }
)


async def async_setup(ctx: SetupContext) -> bool:
    """Start the central system and register the ocpp.* services."""
    from integrations.ocpp import protocol
    from integrations.ocpp.system import CentralSystem

    hub = ctx.hub
    # Compile every schema once, off the loop, before the first charger speaks.
    for version in protocol.OcppVersion:
        await hub.run_in_executor(protocol.precompile, version)
    system = CentralSystem(hub, ctx.config)
    # The transaction store on the database transactions_db_url names (default: SQLite).
    system.transactions = store_for(hub, ctx.config.get(CONF_TRANSACTIONS_DB_URL))
    ctx.on_unload(lambda: _stop(hub, system))
    await system.start()
    hub.data[DATA_SYSTEM] = system
    _register_services(ctx, system)
    await features.setup(ctx, system)
    ctx.register_admission(system)
    ctx.register_discovery_property("ocpp_url", lambda address: _charger_url(system, address))
    return True


async def _stop(hub: Hub, system: CentralSystem) -> None:
    """Close every connection and the listeners."""
    if hub.data.get(DATA_SYSTEM) is system:
        hub.data.pop(DATA_SYSTEM)
    await system.stop()


def _charger_url(system: CentralSystem, address: str) -> str | None:
    """The URL chargers should use on address: the first listener, on its bound port."""
    if not system.listeners:
        return None
    first = system.listeners[0]
    scheme = "wss" if first.profile >= 2 else "ws"
    return f"{scheme}://{address}:{first.port}{first.path}"


def charger_urls(hub: Hub, max_profile: int = 3) -> list[str]:
    """The URLs of the running central system's listeners up to a security profile.

    Public: the simulator (and a test) connect to the hub's own listener through it.
    """
    system = hub.data.get(DATA_SYSTEM)
    if system is None:
        return []
    found = []
    for listener in system.listeners:
        if listener.profile > max_profile:
            continue
        host = "127.0.0.1" if listener.host in ("0.0.0.0", "::", "") else listener.host
        scheme = "wss" if listener.profile >= 2 else "ws"
        found.append(f"{scheme}://{host}:{listener.port}{listener.path}")
    return found


def _register_services(ctx: SetupContext, system: CentralSystem) -> None:
    """The admission services; the protocol's own are the features' (features/)."""

    async def approve(call: ServiceCall) -> Any:
        try:
            await system.approve(call.data["charge_point_id"])
        except ValueError as err:
            raise ServiceValidationError(str(err)) from err
        return {"charge_point_id": call.data["charge_point_id"], "approved": True}

    async def reject(call: ServiceCall) -> Any:
        try:
            await system.reject(call.data["charge_point_id"])
        except ValueError as err:
            raise ServiceValidationError(str(err)) from err
        return {"charge_point_id": call.data["charge_point_id"], "rejected": True}

    async def reload_tls(call: ServiceCall) -> Any:
        return {"listeners": await system.reload_tls(force=True)}

    by_id = {vol.Required("charge_point_id"): _CP_ID}
    ctx.register_service("approve_charger", approve, by_id, role=Role.OPERATOR)
    ctx.register_service("reject_charger", reject, by_id, role=Role.OPERATOR)
    # Re-read the TLS listeners' certificates, keys, CA and CRL (also done by itself within
    # a minute of a file changing); a revoked client certificate's connection is closed.
    ctx.register_service("reload_tls", reload_tls, {}, role=Role.ADMIN)


@hookimpl
def evhub_integration() -> Integration:
    """Describe the OCPP integration."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="OCPP central system",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        documentation="OCPP 1.6J and 2.0.1 chargers connect to the hub over websockets.",
        services=lambda _config: [f"{DOMAIN}.{name}" for name in SERVICES],
    )
