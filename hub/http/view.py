"""Routes with their roles, JSON answers and errors, and the auth/error middlewares."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import voluptuous as vol
from aiohttp import web

from hub.auth import LoginThrottledError, Role, Session, User, auth_manager
from hub.core import Hub
from hub.exceptions import HubError

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KEY_HUB: Final[web.AppKey[Hub]] = web.AppKey("hub", Hub)
KEY_ROUTES: Final[web.AppKey[list[Route]]] = web.AppKey("routes", list)
KEY_SECURE: Final[web.AppKey[bool]] = web.AppKey("secure", bool)
KEY_TRUSTED_PROXIES: Final[web.AppKey[tuple[IPNetwork, ...]]] = web.AppKey("trusted_proxies", tuple)

COOKIE_SESSION: Final = "evhub_session"
HEADER_CSRF: Final = "X-CSRF-Token"
REQ_USER: Final[web.RequestKey[User | None]] = web.RequestKey("evhub_user")
REQ_SESSION: Final[web.RequestKey[Session | None]] = web.RequestKey("evhub_session")
REQ_AUTH: Final[web.RequestKey[str]] = web.RequestKey("evhub_auth", str)
REQ_REMOTE: Final[web.RequestKey[str]] = web.RequestKey("evhub_remote", str)
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What the built dashboard needs and nothing more: its own scripts, styles and sockets,
# no inline script or style element, no framing (clickjacking), no plugins, no <base>.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS: Final = "max-age=31536000"
# C0 control characters and DEL: no route, file or query of the hub holds one (a NUL
# would even reach the file system as a truncated name).
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: what it answers, who may call it, and how it is documented."""

    method: str
    path: str
    handler: Handler
    role: Role | None  # None: no login needed
    summary: str
    query: tuple[str, ...] = ()
    body: Mapping[str, str] = field(default_factory=dict)
    tag: str = "core"
    # What a success answers, for the OpenAPI description: status -> {media type: JSON
    # Schema}; {} for no body (204, 101). hub.http.schemas builds them.
    responses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class ApiError(web.HTTPException):
    """A 4xx answer with a JSON body {"error", "message"}."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status
        super().__init__(
            text=orjson.dumps({"error": code, "message": message}).decode(),
            content_type="application/json",
            headers=headers,
        )
        self.code = code
        self.message = message


def _default(value: Any) -> Any:
    as_dict = getattr(value, "as_dict", None)
    if as_dict is not None:
        return as_dict()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)


def dumps(data: Any) -> bytes:
    """Serialise anything an API answer may carry."""
    return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer."""
    return web.Response(body=dumps(data), status=status, content_type="application/json")


async def read_json(request: web.Request) -> dict[str, Any]:
    """Read a JSON object body; an empty body is {}; anything else bad is a 400."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "body must be a JSON object")
    return data


def validate(schema: vol.Schema, data: Any) -> Any:
    """Validate data with a schema; a failure is a 400 naming the field."""
    try:
        return schema(data)
    except vol.Invalid as err:
        raise ApiError(400, "invalid", humanize(err)) from None


def humanize(err: vol.Invalid) -> str:
    """One line naming each bad field."""
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    parts = []
    for error in errors:
        path = ".".join(str(p) for p in error.path)
        parts.append(f"{path}: {error.msg}" if path else str(error.msg))
    return "; ".join(parts)


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within bounds, or a 400."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid", f"{name} must be between {low} and {high}")
    return value


def current_user(request: web.Request) -> User:
    """The authenticated user of a request (the route's guard made sure there is one)."""
    user: User | None = request.get(REQ_USER)
    if user is None:
        raise ApiError(401, "unauthorized", "log in or send a bearer token")
    return user


def remote(request: web.Request) -> str:
    """The client address of a request: the peer, or what a trusted proxy forwarded."""
    address: str | None = request.get(REQ_REMOTE)
    if address is None:
        address = client_address(
            request.remote,
            request.headers.getall("X-Forwarded-For", []),
            request.app.get(KEY_TRUSTED_PROXIES, ()),
        )
        request[REQ_REMOTE] = address
    return address


def _ip(value: str) -> IPAddress:
    address = ipaddress.ip_address(value.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded: Iterable[str], trusted: tuple[IPNetwork, ...]
) -> str:
    """Who is asking: X-Forwarded-For counts only when the peer is a trusted proxy.

    The hops are read right to left, skipping trusted proxies: the first untrusted one is
    the client (the left part of the header is whatever the client wrote). Raises ApiError
    400 for a header from a trusted proxy that is not a list of addresses.
    """
    if peer is None:
        return "unknown"
    try:
        peer_ip = _ip(peer)
    except ValueError:
        return peer  # a Unix socket path
    hops = [hop for header in forwarded for hop in header.split(",")]
    if not hops or not any(peer_ip in network for network in trusted):
        return str(peer_ip)
    try:
        addresses = [_ip(hop) for hop in hops]
    except ValueError:
        raise ApiError(400, "bad_request", "X-Forwarded-For must list IP addresses") from None
    for address in reversed(addresses):
        if not any(address in network for network in trusted):
            return str(address)
    return str(addresses[0])


def guard(route: Route) -> Handler:
    """Wrap a route's handler with its role check."""
    handler, role = route.handler, route.role

    async def guarded(request: web.Request) -> web.StreamResponse:
        if role is not None:
            user: User | None = request.get(REQ_USER)
            if user is None:
                raise ApiError(401, "unauthorized", "log in or send a bearer token")
            if not user.role.allows(role):
                raise ApiError(403, "forbidden", f"needs the {role} role; you are {user.role}")
        return await handler(request)

    guarded.__name__ = getattr(handler, "__name__", "handler")
    guarded.__doc__ = handler.__doc__
    return guarded


def _error_for(err: Exception) -> ApiError | None:
    """Map a hub error raised by a view to its answer: the status its class carries."""
    message = str(err)
    if isinstance(err, LoginThrottledError):
        return ApiError(
            429,
            "banned" if err.banned else "throttled",
            message,
            {"Retry-After": str(max(1, round(err.retry_after)))},
        )
    if isinstance(err, HubError):
        return ApiError(err.http_status, err.error_code, message)
    if isinstance(err, vol.Invalid):
        return ApiError(400, "invalid", humanize(err))
    if isinstance(err, LookupError):
        return ApiError(404, "not_found", message)
    return None


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse paths and queries with control characters; find the client's address."""
    if _CONTROL.search(request.path) or _CONTROL.search(request.query_string):
        raise ApiError(400, "bad_request", "the path or query holds a control character")
    remote(request)
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Add the security headers to every answer (an on_response_prepare signal)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.app.get(KEY_SECURE):
        response.headers.setdefault("Strict-Transport-Security", HSTS)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors into JSON 4xx answers; only a bug is a 500."""
    try:
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPException as err:
        if err.status >= 400 and request.path.startswith("/api/"):
            if err.status in (404, 405) and not await _is_api_path(request):
                raise ApiError(
                    404, "no_endpoint", f"no API endpoint {request.method} {request.path}"
                ) from None
            raise ApiError(err.status, _code(err.status), err.reason) from None
        raise
    except Exception as err:
        mapped = _error_for(err)
        if mapped is not None:
            raise mapped from None
        _LOGGER.exception("Error answering %s %s", request.method, request.path)
        raise ApiError(500, "internal", "internal error; see the hub's log") from None


async def _is_api_path(request: web.Request) -> bool:
    """Whether a core route serves this path (any method): not the frontend's catch-all, nor
    the dispatcher of integrations' views (hub.http.extensions)."""
    for resource in request.app.router.resources():
        if resource.canonical.startswith("/{tail") or resource.canonical == "/api/{tail}":
            continue
        _match, allowed = await resource.resolve(request)
        if allowed:
            return True
    return False


def _code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
    }.get(status, "error")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find who is asking: a bearer token or a session cookie (with CSRF on changes)."""
    hub = request.app[KEY_HUB]
    auth = auth_manager(hub)
    address = remote(request)
    header = request.headers.get("Authorization")
    user: User | None = None
    session: Session | None = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "unauthorized", "Authorization must be 'Bearer <token>'")
        # A valid token is honoured from a banned address too: bans stop password logins.
        found = auth.validate_token(value.strip())
        if found is None:
            auth.record_invalid_token(address, f"{request.method} {request.path[:100]}")
            raise ApiError(401, "unauthorized", "invalid, expired or revoked access token")
        user = found[0]
        request[REQ_AUTH] = "bearer"
    else:
        cookie = request.cookies.get(COOKIE_SESSION)
        if cookie:
            valid = auth.validate_session(cookie)
            if valid is not None:
                user, session = valid
                request[REQ_AUTH] = "cookie"
                if request.method not in SAFE_METHODS:
                    sent = request.headers.get(HEADER_CSRF, "")
                    if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                        raise ApiError(
                            403, "csrf", f"missing or wrong {HEADER_CSRF} header for this session"
                        )
    request[REQ_USER] = user
    request[REQ_SESSION] = session
    return await handler(request)
