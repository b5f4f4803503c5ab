"""Authorization (C): what an id token's status is, with expiry and group, the master pass,
and the authorization cache. The local authorization list (D) is authorization_local_list.

Tokens come from the ``ocpp:`` section (``id_tags``: plain accepted tags; ``id_tokens``:
tokens with a status, an expiry, a group and a type) and from the ``ocpp.*_id_token``
services, which keep theirs in a store. Ids are case-insensitive, as OCPP says of both
IdToken (2.0.1) and IdTag (1.6). A token nobody knows is Unknown (2.0.1) / Invalid (1.6),
unless ``authorize_unknown_id_tags``.

A token of a group may stop a transaction another token of its group started (C09), a token
of ``master_pass_group`` any transaction (C16); the station enforces both with the group the
hub answers. A stop by a token outside the starter's group is recorded as a security event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol

from hub.auth import Role
from hub.core import Hub, HubKey, ServiceCall
from hub.exceptions import ServiceValidationError
from hub.security import Severity
from hub.storage import Store
from integrations.ocpp.const import CONF_AUTHORIZE_UNKNOWN, CONF_ID_TAGS
from integrations.ocpp.features.base import (
    ID_TOKEN_TYPES,
    MessageHandler,
    register_station_services,
    station_for,
)

if TYPE_CHECKING:
    from hub.plugins import SetupContext
    from integrations.ocpp.station import Station
    from integrations.ocpp.system import CentralSystem
    from integrations.ocpp.transactions import Transaction

CONF_ID_TOKENS: Final = "id_tokens"
CONF_MASTER_PASS_GROUP: Final = "master_pass_group"
CONF_LOCAL_AUTH_LIST: Final = "local_auth_list"
CONF_SYNC_ON_BOOT: Final = "sync_on_boot"
CONF_ALLOW_CONCURRENT_TX: Final = "allow_concurrent_tx"

# A stop by a token that is neither the starter, nor of its group, nor a master pass.
SEC_FOREIGN_STOP: Final = "ocpp_foreign_stop"

FOREIGN_STOPS_KEPT: Final = 1024
STORE_KEY: Final = "ocpp.id_tokens"
STORE_VERSION: Final = 1

# 2.0.1 AuthorizationStatusEnumType, less Unknown (a token the hub holds is known).
STATUSES: Final = (
    "Accepted",
    "Blocked",
    "ConcurrentTx",
    "Expired",
    "Invalid",
    "NoCredit",
    "NotAllowedTypeEVSE",
    "NotAtThisLocation",
    "NotAtThisTime",
)
# 1.6 AuthorizationStatus: a 2.0.1-only status is Invalid to a 1.6 charger.
STATUSES_16: Final = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})
DEFAULT_TYPE: Final = "ISO14443"
MAX_ID_16: Final = 20  # 1.6 IdToken (idTag, parentIdTag)
MAX_ID: Final = 36  # 2.0.1 IdTokenType.idToken
MAX_TOKENS: Final = 100_000
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def valid_token_id(value: Any) -> str:
    """A token id: 1 to 36 printable ASCII characters (what both versions can carry)."""
    if not isinstance(value, str):
        raise vol.Invalid("an id token is a string")
    if not 1 <= len(value) <= MAX_ID:
        raise vol.Invalid(f"an id token has 1 to {MAX_ID} characters")
    if not value.isascii() or not value.isprintable():
        raise vol.Invalid("an id token has printable ASCII characters only")
    return value


def valid_expiry(value: Any) -> datetime:
    """An expiry: an ISO 8601 date-time (UTC when it names no zone), 2000 to 2100."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise vol.Invalid(f"expiry {value!r} is not an ISO 8601 date-time") from None
    else:
        raise vol.Invalid("expiry is an ISO 8601 date-time")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if not _EARLIEST <= when < _LATEST:
        raise vol.Invalid("expiry lies between 2000 and 2100")
    return when


def _or_none(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A validator that lets None through (to clear a field) and keeps check's reason."""

    def validate(value: Any) -> Any:
        return None if value is None else check(value)

    return validate


TOKEN_FIELDS: dict[Any, Any] = {
    vol.Optional("status"): vol.In(STATUSES),
    vol.Optional("expiry"): _or_none(valid_expiry),
    vol.Optional("group"): _or_none(valid_token_id),
    vol.Optional("type"): vol.In(ID_TOKEN_TYPES),
}
_TOKEN_SCHEMA = vol.Schema({vol.Required("id"): valid_token_id, **TOKEN_FIELDS})


def _unique_tokens(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    for index, token in enumerate(tokens):
        key = token["id"].casefold()
        if key in seen:
            raise vol.Invalid(f"id token {token['id']!r} listed twice", path=[index])
        seen.add(key)
    return tokens


HANDLERS_16: dict[str, MessageHandler] = {}
HANDLERS_201: dict[str, MessageHandler] = {}
CONFIG: dict[Any, Any] = {
    vol.Optional(CONF_ID_TOKENS, default=[]): vol.All(
        [_TOKEN_SCHEMA], vol.Length(max=MAX_TOKENS), _unique_tokens
    ),
    vol.Optional(CONF_MASTER_PASS_GROUP): valid_token_id,
    # 1.6: an idTag may run one transaction at a time (ConcurrentTx otherwise), unless this.
    vol.Optional(CONF_ALLOW_CONCURRENT_TX, default=False): bool,
    # The local authorization list (D): after a station's accepted boot, ask its list
    # version and send the hub's list when it is not the one the hub sent last.
    vol.Optional(CONF_LOCAL_AUTH_LIST, default={}): vol.Schema(
        {vol.Optional(CONF_SYNC_ON_BOOT, default=False): bool}
    ),
}


@dataclass(frozen=True, slots=True)
class IdToken:
    """A token the hub knows."""

    id: str
    status: str = "Accepted"
    expiry: datetime | None = None
    group: str | None = None
    type: str = DEFAULT_TYPE
    configured: bool = False  # from configuration.yaml: the services leave it alone

    @property
    def key(self) -> str:
        return self.id.casefold()

    def status_at(self, now: float) -> str:
        """The status at a time (POSIX seconds): an accepted token past its expiry is
        Expired."""
        if self.expiry is not None and self.status == "Accepted" and self.expiry.timestamp() <= now:
            return "Expired"
        return self.status

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "expiry": iso(self.expiry) if self.expiry is not None else None,
            "group": self.group,
            "type": self.type,
            "configured": self.configured,
        }


def iso(when: datetime) -> str:
    """A date-time as OCPP writes it (UTC, seconds, Z)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_from(data: dict[str, Any], configured: bool) -> IdToken:
    return IdToken(
        id=data["id"],
        status=data.get("status") or "Accepted",
        expiry=data.get("expiry"),
        group=data.get("group"),
        type=data.get("type") or DEFAULT_TYPE,
        configured=configured,
    )


class TokenRegistry:
    """The hub's id tokens: the configured ones and those the services added."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self.hub = hub
        self.authorize_unknown: bool = bool(config.get(CONF_AUTHORIZE_UNKNOWN, False))
        self.master_pass_group: str | None = config.get(CONF_MASTER_PASS_GROUP)
        self.allow_concurrent_tx: bool = bool(config.get(CONF_ALLOW_CONCURRENT_TX, False))
        self.configured: dict[str, IdToken] = {}
        for tag in config.get(CONF_ID_TAGS, ()):
            token = IdToken(id=tag, configured=True)
            self.configured[token.key] = token
        for entry in config.get(CONF_ID_TOKENS, ()):
            token = _token_from(entry, configured=True)
            self.configured[token.key] = token
        self.added: dict[str, IdToken] = {}
        # The transactions whose foreign stop was recorded lately (oldest first).
        self.foreign_stops: dict[tuple[str, str], None] = {}
        self._store: Store[dict[str, Any]] = Store(hub, STORE_VERSION, STORE_KEY, private=True)

    async def async_load(self) -> None:
        """Read the tokens the services added (bad records are skipped, not fatal)."""
        data = await self._store.load() or {}
        for record in data.get("tokens", ()):
            try:
                checked = _TOKEN_SCHEMA(record)
            except vol.Invalid:
                continue
            token = _token_from(checked, configured=False)
            if token.key not in self.configured:
                self.added[token.key] = token

    def _data(self) -> dict[str, Any]:
        tokens = []
        for token in self.added.values():
            record = token.as_dict()
            record.pop("configured")
            tokens.append({key: value for key, value in record.items() if value is not None})
        return {"tokens": tokens}

    def _save(self) -> None:
        self._store.delay_save(self._data)

    def get(self, token_id: str | None) -> IdToken | None:
        if not token_id:
            return None
        key = token_id.casefold()
        return self.configured.get(key) or self.added.get(key)

    def all(self) -> list[IdToken]:
        return [*self.configured.values(), *self.added.values()]

    def add(self, data: dict[str, Any]) -> IdToken:
        if self.get(data["id"]) is not None:
            raise ServiceValidationError(f"id token {data['id']!r} exists; update it instead")
        if len(self.configured) + len(self.added) >= MAX_TOKENS:
            raise ServiceValidationError(f"the hub holds {MAX_TOKENS} id tokens at most")
        token = _token_from(data, configured=False)
        self.added[token.key] = token
        self._save()
        return token

    def update(self, data: dict[str, Any]) -> IdToken:
        current = self._changeable(data["id"])
        changes = {key: data[key] for key in ("status", "expiry", "group", "type") if key in data}
        if changes.get("status") is None:
            changes.pop("status", None)
        if changes.get("type") is None:
            changes.pop("type", None)
        token = replace(current, **changes)
        self.added[token.key] = token
        self._save()
        return token

    def remove(self, token_id: str) -> IdToken:
        token = self._changeable(token_id)
        del self.added[token.key]
        self._save()
        return token

    def _changeable(self, token_id: str) -> IdToken:
        key = token_id.casefold()
        if key in self.configured:
            raise ServiceValidationError(
                f"id token {token_id!r} is set in configuration.yaml; change it there"
            )
        token = self.added.get(key)
        if token is None:
            raise ServiceValidationError(f"no id token {token_id!r}")
        return token

    def group_type(self, group: str) -> str:
        """The IdTokenEnumType of a group id: its own token's, else Central."""
        token = self.get(group)
        return token.type if token is not None else "Central"


DATA_TOKENS: Final[HubKey[TokenRegistry]] = HubKey("ocpp.id_tokens")


def registry(system: CentralSystem) -> TokenRegistry:
    """The hub's token registry (made from the configuration on first use)."""
    hub = system.hub
    found = hub.data.get(DATA_TOKENS)
    if found is None:
        found = hub.data[DATA_TOKENS] = TokenRegistry(hub, system.config)
    return found


def _resolve(station: Station, token_id: str | None) -> tuple[IdToken | None, str | None]:
    """The hub's token and its status now; (None, None) for a token nobody knows."""
    tokens = registry(station.system)
    token = tokens.get(token_id)
    if token is not None:
        return token, token.status_at(station.now())
    if token_id is not None and tokens.authorize_unknown:
        return None, "Accepted"
    return None, None


def id_tag_info(station: Station, id_tag: str | None) -> dict[str, Any]:
    """OCPP 1.6 IdTagInfo for an idTag (Authorize, StartTransaction, StopTransaction)."""
    token, status = _resolve(station, id_tag)
    return tag_info_16(token, status)


def start_tag_info(station: Station, id_tag: str | None, connector: int | None) -> dict[str, Any]:
    """1.6 IdTagInfo for an Authorize (connector None) or a StartTransaction on a connector:
    ConcurrentTx when the accepted idTag already runs a transaction elsewhere (1.6 §7.2,
    AuthorizationStatus). An Authorize at the station of the running transaction may be
    the driver's stop, so only another station's transaction counts for it."""
    token, status = _resolve(station, id_tag)
    if (
        status == "Accepted"
        and id_tag
        and not registry(station.system).allow_concurrent_tx
        and _running_elsewhere(station, id_tag, connector)
    ):
        status = "ConcurrentTx"
    return tag_info_16(token, status)


def _running_elsewhere(station: Station, id_tag: str, connector: int | None) -> bool:
    """Whether an open transaction of id_tag runs on another station, or on another
    connector of this one (when a connector is given)."""
    wanted = id_tag.casefold()
    for other in station.system.stations.values():
        if other is station and connector is None:
            continue
        for number, port in other.ports.items():
            running = port.transaction
            if running is None or running.stopped_at is not None or not running.id_tag:
                continue
            if other is station and number == connector:
                continue  # the connector's own (a new start there supersedes it)
            if running.id_tag.casefold() == wanted:
                return True
    return False


def tag_info_16(token: IdToken | None, status: str | None) -> dict[str, Any]:
    """1.6 IdTagInfo of a token with a status (None: unknown, which is Invalid)."""
    info: dict[str, Any] = {"status": status if status in STATUSES_16 else "Invalid"}
    if token is not None:
        if token.expiry is not None:
            info["expiryDate"] = iso(token.expiry)
        if token.group is not None and len(token.group) <= MAX_ID_16:
            info["parentIdTag"] = token.group
    return info


def id_token_info(station: Station, token: dict[str, Any] | None) -> dict[str, Any]:
    """OCPP 2.0.1 IdTokenInfo for an IdToken (Authorize, TransactionEvent)."""
    if token is None:
        return {"status": "Invalid"}
    known, status = _resolve(station, token.get("idToken"))
    return token_info_201(registry(station.system), known, status)


def token_info_201(
    tokens: TokenRegistry, token: IdToken | None, status: str | None
) -> dict[str, Any]:
    """2.0.1 IdTokenInfo of a token with a status (None: Unknown)."""
    info: dict[str, Any] = {"status": status or "Unknown"}
    if token is not None:
        if token.expiry is not None:
            info["cacheExpiryDateTime"] = iso(token.expiry)
        if token.group is not None:
            info["groupIdToken"] = {"idToken": token.group, "type": tokens.group_type(token.group)}
    return info


def stop_tag_info(
    station: Station, id_tag: str | None, transaction: Transaction | None
) -> dict[str, Any]:
    """1.6 IdTagInfo for the idTag of a StopTransaction; a stop by a token outside the
    starter's group is recorded."""
    if transaction is not None:
        _check_stop(station, id_tag, transaction)
    return id_tag_info(station, id_tag)


def transaction_token_info(
    station: Station, payload: dict[str, Any], transaction: Transaction
) -> dict[str, Any]:
    """2.0.1 IdTokenInfo for a TransactionEvent's idToken; a stop (Ended, StopAuthorized)
    by a token outside the starter's group is recorded."""
    token = payload.get("idToken")
    stopping = payload.get("eventType") == "Ended" or payload.get("triggerReason") in (
        "StopAuthorized",
        "Deauthorized",
    )
    if stopping and token is not None:
        _check_stop(station, token.get("idToken"), transaction)
    return id_token_info(station, token)


def may_stop(tokens: TokenRegistry, stopper: str, starter: str) -> bool:
    """Whether a token may stop a transaction another token started: the same token, one
    of the starter's group (C09.FR.03), or one of the master pass group (C16)."""
    if stopper.casefold() == starter.casefold():
        return True
    stop_token = tokens.get(stopper)
    if stop_token is None or stop_token.group is None:
        return False
    group = stop_token.group.casefold()
    if tokens.master_pass_group is not None and group == tokens.master_pass_group.casefold():
        return True
    start_token = tokens.get(starter)
    if start_token is not None and start_token.group is not None:
        return start_token.group.casefold() == group
    # A group's own id (1.6's parentIdTag is an idTag) started it.
    return group == starter.casefold()


def _check_stop(station: Station, stopper: str | None, transaction: Transaction) -> None:
    starter = transaction.id_tag
    tokens = registry(station.system)
    if transaction.replayed or not stopper or not starter or may_stop(tokens, stopper, starter):
        return
    # Once per transaction (2.0.1 says it in StopAuthorized and again in Ended).
    seen = (station.cp_id, str(transaction.ocpp_id))
    if seen in tokens.foreign_stops:
        return
    tokens.foreign_stops[seen] = None
    while len(tokens.foreign_stops) > FOREIGN_STOPS_KEPT:
        del tokens.foreign_stops[next(iter(tokens.foreign_stops))]
    station.system.security_event(
        SEC_FOREIGN_STOP,
        f"{station.cp_id}: transaction {transaction.ocpp_id} started by {starter} was "
        f"stopped by {stopper}, not of its group",
        station.connection,
        {"transaction_id": str(transaction.ocpp_id), "started_by": starter, "stopped_by": stopper},
        cp_id=station.cp_id,
        severity=Severity.WARNING,
    )


# Services -------------------------------------------------------------------------------


async def setup(ctx: SetupContext, system: CentralSystem) -> None:
    """Register the authorization and local list services."""
    hub = ctx.hub
    tokens = registry(system)
    await tokens.async_load()

    def _unload() -> None:
        if hub.data.get(DATA_TOKENS) is tokens:
            hub.data.pop(DATA_TOKENS)

    ctx.on_unload(_unload)

    async def clear_cache(call: ServiceCall) -> Any:
        return await station_for(hub, call).call("ClearCache", {})

    register_station_services(ctx, {"clear_cache": (clear_cache, {})})

    async def add_id_token(call: ServiceCall) -> Any:
        return tokens.add(dict(call.data)).as_dict()

    async def update_id_token(call: ServiceCall) -> Any:
        return tokens.update(dict(call.data)).as_dict()

    async def remove_id_token(call: ServiceCall) -> Any:
        return tokens.remove(call.data["id"]).as_dict()

    async def get_id_tokens(call: ServiceCall) -> Any:
        wanted = call.data.get("id")
        found = [token for token in tokens.all() if wanted is None or token == tokens.get(wanted)]
        now = system.clock.time()
        return {
            "id_tokens": [
                {**token.as_dict(), "status_now": token.status_at(now)} for token in found
            ],
            "authorize_unknown": tokens.authorize_unknown,
            "master_pass_group": tokens.master_pass_group,
        }

    # Issuing, blocking and withdrawing cards is an operator's daily job.
    ctx.register_service(
        "add_id_token",
        add_id_token,
        vol.Schema({vol.Required("id"): valid_token_id, **TOKEN_FIELDS}),
        role=Role.OPERATOR,
        description="Add an id token (RFID card, key code...) with a status, expiry and group",
    )
    ctx.register_service(
        "update_id_token",
        update_id_token,
        vol.Schema({vol.Required("id"): valid_token_id, **TOKEN_FIELDS}),
        role=Role.OPERATOR,
        description="Change an id token's status, expiry, group or type",
    )
    ctx.register_service(
        "remove_id_token",
        remove_id_token,
        vol.Schema({vol.Required("id"): valid_token_id}),
        role=Role.OPERATOR,
        description="Remove an id token the services added",
    )
    ctx.register_service(
        "get_id_tokens",
        get_id_tokens,
        vol.Schema({vol.Optional("id"): valid_token_id}),
        role=Role.VIEWER,
        description="The hub's id tokens, with their status now",
    )
    # Imported here: the local list module builds on this one.
    from integrations.ocpp.features import authorization_local_list

    await authorization_local_list.setup(ctx, system, tokens)
