"""Zaptec's documented cloud API: the OAuth password grant and the calls evhub makes.

One client per account. Every request is bounded (a timeout, a body size), answers are
checked for shape before use, and what went wrong is one of a few errors with one root:

- ``CloudUnreachableError``: no answer, a timeout, a 5xx, a 429 (``retry_after`` when the
  cloud said how long to wait): the cloud, not a charger, is away;
- ``AuthenticationError``: the username or password is refused (no use retrying soon);
- ``ZaptecApiError``: the cloud answered and refused the request (a 4xx), with its reason;
- ``BadResponseError``: the cloud answered something that is not what it documents.

The token is renewed before it expires, and once again after a 401. The password never
appears in an error or a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from hub.exceptions import HubError

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api.zaptec.com"
TOKEN_PATH: Final = "/oauth/token"
# Bodies larger than this are refused unread (a state list is a few kB).
MAX_BODY: Final = 1_048_576
# Renew the token this long before it expires (a tenth of its life when that is shorter).
TOKEN_MARGIN: Final = 300.0
MAX_RETRY_AFTER: Final = 3600.0
# Pages of the charger list followed at most (100 chargers a page).
MAX_PAGES: Final = 20
MAX_CHARGERS: Final = 1000
# Charger and installation ids go into URL paths: GUIDs, nothing that could leave the path.
_ID: Final = re.compile(r"^[A-Za-z0-9-]{1,64}$")

# A command refused because of the charger's state (a pause while not charging): an answer,
# not a failure of the cloud, despite its 5xx number.
REJECTED: Final = 528
# Command ids of POST /api/chargers/{id}/sendCommand/{commandId}.
COMMAND_RESTART: Final = 102
COMMAND_STOP_CHARGING: Final = 506
COMMAND_RESUME_CHARGING: Final = 507


class ZaptecError(HubError):
    """Something went wrong talking to the Zaptec cloud."""


class CloudUnreachableError(ZaptecError):
    """The cloud cannot be reached or does not serve now (timeout, 5xx, 429)."""

    http_status = 503
    error_code = "unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationError(ZaptecError):
    """The cloud refuses the username or password."""

    http_status = 502
    error_code = "auth_failed"


class ZaptecApiError(ZaptecError):
    """The cloud answered and refused the request (a 4xx other than 401 and 429)."""

    http_status = 409
    error_code = "rejected"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BadResponseError(ZaptecError):
    """The cloud answered something that is not what its API documents."""


@dataclass(frozen=True, slots=True)
class ChargerInfo:
    """One charger of GET /api/chargers."""

    charger_id: str
    name: str
    serial: str | None
    installation_id: str | None
    is_online: bool | None


@dataclass(frozen=True, slots=True)
class Observation:
    """One state observation of GET /api/chargers/{id}/state."""

    state_id: int
    value: str | None
    timestamp: str | None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds only; a date is treated as absent)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _text(value: Any, limit: int = 200) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)[:limit]
    return None


def parse_chargers(body: Any) -> tuple[list[ChargerInfo], int]:
    """The chargers of a GET /api/chargers answer, and its page count; BadResponseError."""
    if not isinstance(body, dict) or not isinstance(body.get("Data"), list):
        raise BadResponseError("the charger list is not an object with a Data list")
    pages = body.get("Pages", 1)
    if not isinstance(pages, int) or isinstance(pages, bool) or pages < 0:
        pages = 1
    found: list[ChargerInfo] = []
    for index, item in enumerate(body["Data"]):
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
            _LOGGER.warning("Zaptec: charger list item %d has no Id; left out", index)
            continue
        if not _ID.match(item["Id"]):
            _LOGGER.warning("Zaptec: charger list item %d has a malformed Id; left out", index)
            continue
        installation = _text(item.get("InstallationId"), 64)
        if installation is not None and not _ID.match(installation):
            installation = None
        online = item.get("IsOnline")
        found.append(
            ChargerInfo(
                charger_id=item["Id"][:64],
                name=_text(item.get("Name"), 64) or item["Id"][:64],
                serial=_text(item.get("DeviceId"), 64) or _text(item.get("SerialNo"), 64),
                installation_id=installation,
                is_online=online if isinstance(online, bool) else None,
            )
        )
    return found, pages


def parse_state(body: Any) -> dict[int, Observation]:
    """The observations of a GET /api/chargers/{id}/state answer by StateId; BadResponseError."""
    if not isinstance(body, list):
        raise BadResponseError("the charger state is not a list of observations")
    found: dict[int, Observation] = {}
    for item in body:
        if not isinstance(item, dict):
            continue
        state_id = item.get("StateId")
        if not isinstance(state_id, int) or isinstance(state_id, bool):
            continue
        found[state_id] = Observation(
            state_id, _text(item.get("ValueAsString"), 4096), _text(item.get("Timestamp"), 40)
        )
    return found


class ZaptecApi:
    """An authenticated client of one Zaptec account."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        username: str,
        password: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        now: Callable[[], float],
    ) -> None:
        self._session = session
        self._username = username
        self._password = password
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._now = now
        self._token: str | None = None
        self._expires_at = 0.0
        self._login_lock = asyncio.Lock()
        # Counters (the API and tests read them).
        self.logins = 0
        self.requests = 0

    @property
    def token_expires_at(self) -> float:
        """When the current token expires (hub clock); 0 without one."""
        return self._expires_at

    def _token_fresh(self) -> bool:
        if self._token is None:
            return False
        return self._now() < self._expires_at

    async def login(self) -> None:
        """Get a token with the password grant; AuthenticationError when refused."""
        async with self._login_lock:
            if self._token_fresh():
                return
            await self._login()

    async def _login(self) -> None:
        form = {"grant_type": "password", "username": self._username, "password": self._password}
        status, headers, body = await self._send("POST", TOKEN_PATH, data=form)
        if status in (400, 401, 403):
            detail = (
                body.get("error_description") or body.get("error")
                if isinstance(body, dict)
                else None
            )
            raise AuthenticationError(
                f"the Zaptec cloud refused the username or password ({status}"
                + (f": {_text(detail)}" if _text(detail) else "")
                + ")"
            )
        self._raise_for(status, headers, body, "log in")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise BadResponseError("the token answer has no access_token")
        expires_in = body.get("expires_in", 3600)
        if (
            not isinstance(expires_in, int | float)
            or isinstance(expires_in, bool)
            or not math.isfinite(expires_in)
            or expires_in <= 0
        ):
            raise BadResponseError(f"the token answer's expires_in is {expires_in!r}")
        life = float(min(expires_in, 366 * 86400))
        self._token = body["access_token"][:8192]
        self._expires_at = self._now() + life - min(TOKEN_MARGIN, life / 10)
        self.logins += 1

    async def request(self, method: str, path: str, *, json_body: Any = None) -> Any:
        """An authenticated request; its JSON body (None when empty). Logs in as needed."""
        if not self._token_fresh():
            await self.login()
        token = self._token
        status, headers, body = await self._send(method, path, json_body=json_body, token=token)
        if status == 401:
            # Revoked or expired early: one new token, one more try.
            async with self._login_lock:
                if self._token == token:
                    self._token = None
                    await self._login()
            status, headers, body = await self._send(
                method, path, json_body=json_body, token=self._token
            )
            if status == 401:
                self._token = None
                raise AuthenticationError("the Zaptec cloud refuses a fresh token (401)")
        self._raise_for(status, headers, body, f"{method} {path}")
        return body

    def _raise_for(self, status: int, headers: Any, body: Any, what: str) -> None:
        if status == 429:
            raise CloudUnreachableError(
                f"the Zaptec cloud asks to slow down (429) on {what}",
                _retry_after(headers.get("Retry-After")),
            )
        if status == REJECTED:
            reason = (
                _text(body.get("message") or body.get("Details"))
                if isinstance(body, dict)
                else None
            )
            raise ZaptecApiError(
                f"the Zaptec cloud rejected {what} in the charger's state"
                + (f" ({reason})" if reason else ""),
                status,
            )
        if status >= 500:
            raise CloudUnreachableError(
                f"the Zaptec cloud failed ({status}) on {what}",
                _retry_after(headers.get("Retry-After")),
            )
        if status >= 400:
            reason = None
            if isinstance(body, dict):
                reason = _text(body.get("message") or body.get("Message") or body.get("Details"))
            raise ZaptecApiError(
                f"the Zaptec cloud refused {what} ({status}"
                + (f": {reason}" if reason else "")
                + ")",
                status,
            )

    async def _send(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, str] | None = None,
        json_body: Any = None,
        token: str | None = None,
    ) -> tuple[int, Any, Any]:
        """One HTTP exchange: (status, headers, parsed JSON or None)."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self.requests += 1
        try:
            async with self._session.request(
                method,
                self.base_url + path,
                data=data,
                json=json_body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                length = response.content_length
                if length is not None and length > MAX_BODY:
                    raise BadResponseError(f"{path}: a body of {length} bytes is too large")
                raw = await response.content.read(MAX_BODY + 1)
                if len(raw) > MAX_BODY:
                    raise BadResponseError(f"{path}: the body is larger than {MAX_BODY} bytes")
                status, answer_headers = response.status, response.headers
        except TimeoutError as err:
            raise CloudUnreachableError(f"the Zaptec cloud did not answer {path} in time") from err
        except aiohttp.ClientError as err:
            # The error's text names the host, never the form (no credentials in it).
            raise CloudUnreachableError(
                f"the Zaptec cloud cannot be reached: {type(err).__name__}"
            ) from err
        parsed: Any = None
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError):
                if status < 400:
                    raise BadResponseError(f"{path}: the answer is not JSON") from None
        return status, answer_headers, parsed

    # The calls --------------------------------------------------------------------------

    async def chargers(self) -> list[ChargerInfo]:
        """Every charger the account sees (all pages)."""
        found: list[ChargerInfo] = []
        page = 0
        while True:
            body = await self.request("GET", f"/api/chargers?PageIndex={page}&PageSize=100")
            chargers, pages = parse_chargers(body)
            found.extend(chargers)
            if len(found) >= MAX_CHARGERS:
                _LOGGER.warning("Zaptec: the account lists more than %d chargers", MAX_CHARGERS)
                return found[:MAX_CHARGERS]
            page += 1
            if page >= min(pages, MAX_PAGES) or not chargers:
                return found

    async def state(self, charger_id: str) -> dict[int, Observation]:
        """A charger's state observations."""
        return parse_state(await self.request("GET", f"/api/chargers/{charger_id}/state"))

    async def send_command(self, charger_id: str, command: int) -> Any:
        """Send a command (COMMAND_*) to a charger."""
        return await self.request("POST", f"/api/chargers/{charger_id}/sendCommand/{command}")

    async def set_available_current(self, installation_id: str, amperes: float) -> Any:
        """Set an installation's available current (every charger of it shares it)."""
        return await self.request(
            "POST",
            f"/api/installation/{installation_id}/update",
            json_body={"availableCurrent": amperes},
        )
