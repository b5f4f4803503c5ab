"""What integrations add to the API: HTTP views, WebSocket commands and dashboard panels.

The server's routes are fixed when it starts, while integrations come and go (a retried
set-up, an unload): their views are found here by one catch-all route, each under its own
``/api/<domain>/`` prefix so it can never shadow a core route or another integration's.
An integration adds them through its set-up context, which removes them again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from prometheus_client.registry import Collector

from hub.auth import Role
from hub.core import HubKey, Unsubscribe
from hub.exceptions import HubError

if TYPE_CHECKING:
    from hub.auth import User
    from hub.core import Hub

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A WebSocket command: (hub, the user, the message) -> the result sent back.
WsHandler = Callable[["Hub", "User", dict[str, Any]], Awaitable[Any]]

_PARAM: Final = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_.~-]+|\{[a-z_][a-z0-9_]*\}")
_COMMAND: Final = re.compile(r"[a-z0-9_]+/[a-z0-9_/]+")
_PANEL_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_ELEMENT: Final = re.compile(r"[a-z][a-z0-9]*-[a-z0-9-]+")
METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class ExtensionError(HubError, ValueError):
    """An integration's view, command or panel is malformed or taken."""

    http_status = 400
    error_code = "invalid"


@dataclass(frozen=True, slots=True)
class View:
    """An HTTP endpoint an integration serves under /api/<domain>/."""

    domain: str
    method: str
    path: str
    handler: Handler
    role: Role
    summary: str
    pattern: re.Pattern[str] = field(compare=False, repr=False)
    # Documented in the OpenAPI description: query parameters, and the JSON body's fields.
    query: tuple[str, ...] = ()
    body: Mapping[str, str] = field(default_factory=dict, compare=False)
    # What a success answers: status -> {media type: JSON Schema} (hub.http.schemas).
    responses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class WsCommand:
    """A WebSocket command type ``<domain>/<name>`` an integration answers."""

    domain: str
    command: str
    handler: WsHandler
    role: Role


@dataclass(frozen=True, slots=True)
class Panel:
    """A dashboard page an integration ships: a JavaScript module defining a custom element.

    The dashboard lists the panels a user's role may see, loads ``module`` from
    ``/api/panels/<domain>/<name>.js`` and shows ``<element>`` with its ``hub`` property set
    to the dashboard's API client. A ``page`` panel is a page of its own in the navigation;
    a ``station`` panel is a section of the station page of every station of its
    integration, given the station too.
    """

    domain: str
    name: str
    title: str
    module: Path
    element: str
    role: Role = Role.VIEWER
    icon: str = "extension"
    placement: str = "page"

    def as_dict(self) -> dict[str, Any]:
        """What the dashboard needs to list and load the panel."""
        return {
            "domain": self.domain,
            "name": self.name,
            "title": self.title,
            "icon": self.icon,
            "element": self.element,
            "role": str(self.role),
            "placement": self.placement,
            "url": f"/api/panels/{self.domain}/{self.name}.js",
        }


class Extensions:
    """The views, WebSocket commands and panels integrations registered."""

    def __init__(self) -> None:
        self.views: list[View] = []
        self.commands: dict[str, WsCommand] = {}
        self.panels: dict[tuple[str, str], Panel] = {}
        # zeroconf TXT properties: key -> value for the advertised address.
        self.discovery: dict[str, Callable[[str], str | None]] = {}
        # Prometheus collectors, collected at every scrape of /metrics.
        self.collectors: list[Collector] = []

    def add_view(
        self,
        domain: str,
        method: str,
        path: str,
        handler: Handler,
        role: Role,
        summary: str,
        query: tuple[str, ...] = (),
        body: Mapping[str, str] | None = None,
        responses: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Unsubscribe:
        """Serve handler at /api/<domain> or under it; ``{name}`` segments match one segment."""
        method = method.upper()
        if method not in METHODS:
            raise ExtensionError(f"method {method!r} is not one of {sorted(METHODS)}")
        prefix = f"/api/{domain}/"
        if path == prefix[:-1]:
            segments: list[str] = []
        elif path.startswith(prefix):
            segments = path[len(prefix) :].split("/")
        else:
            raise ExtensionError(f"a view of {domain} must be {prefix[:-1]} or under {prefix}")
        if not all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments):
            raise ExtensionError(f"malformed view path {path!r}")
        regex = "".join(
            "/" + (f"(?P<{m.group(1)}>[^/]+)" if (m := _PARAM.fullmatch(s)) else re.escape(s))
            for s in segments
        )
        pattern = re.compile(re.escape(prefix[:-1]) + regex)
        if any(v.method == method and v.path == path for v in self.views):
            raise ExtensionError(f"{method} {path} is registered already")
        view = View(
            domain,
            method,
            path,
            handler,
            Role(role),
            summary,
            pattern,
            tuple(query),
            body or {},
            responses or {},
        )
        self.views.append(view)

        def remove() -> None:
            if view in self.views:
                self.views.remove(view)

        return remove

    def match(self, method: str, path: str) -> tuple[View, dict[str, str]] | bool | None:
        """The view for a request and its path parameters; False when only the method differs."""
        other_method = False
        for view in self.views:
            found = view.pattern.fullmatch(path)
            if found is None:
                continue
            if view.method == method or (method == "HEAD" and view.method == "GET"):
                return view, found.groupdict()
            other_method = True
        return False if other_method else None

    def add_command(self, domain: str, command: str, handler: WsHandler, role: Role) -> Unsubscribe:
        """Answer WebSocket messages of type ``command`` (which must be ``<domain>/...``)."""
        if not command.startswith(f"{domain}/") or not _COMMAND.fullmatch(command):
            raise ExtensionError(f"a command of {domain} must be named {domain}/<name>")
        if command in self.commands:
            raise ExtensionError(f"WebSocket command {command} is registered already")
        entry = WsCommand(domain, command, handler, Role(role))
        self.commands[command] = entry

        def remove() -> None:
            if self.commands.get(command) is entry:
                del self.commands[command]

        return remove

    def add_panel(self, panel: Panel) -> Unsubscribe:
        """List a dashboard panel and serve its module."""
        if not _PANEL_NAME.fullmatch(panel.name):
            raise ExtensionError(f"malformed panel name {panel.name!r}")
        if not _ELEMENT.fullmatch(panel.element):
            raise ExtensionError(f"{panel.element!r} is not a custom element name (a-b)")
        if panel.module.suffix != ".js":
            raise ExtensionError(f"a panel's module must be a .js file, not {panel.module}")
        key = (panel.domain, panel.name)
        if key in self.panels:
            raise ExtensionError(f"panel {panel.domain}/{panel.name} is registered already")
        self.panels[key] = panel

        def remove() -> None:
            if self.panels.get(key) is panel:
                del self.panels[key]

        return remove

    def add_discovery_property(self, key: str, value: Callable[[str], str | None]) -> Unsubscribe:
        """Advertise key with the hub (zeroconf); value gets the advertised address."""
        if key in self.discovery or key in ("url", "api", "version"):
            raise ExtensionError(f"discovery property {key!r} is taken")
        self.discovery[key] = value

        def remove() -> None:
            if self.discovery.get(key) is value:
                del self.discovery[key]

        return remove

    def add_collector(self, collector: Collector) -> Unsubscribe:
        """Collect a Prometheus collector's metrics at every scrape of /metrics."""
        if collector in self.collectors:
            raise ExtensionError(f"{collector!r} is registered already")
        self.collectors.append(collector)

        def remove() -> None:
            if collector in self.collectors:
                self.collectors.remove(collector)

        return remove


DATA_EXTENSIONS: Final[HubKey[Extensions]] = HubKey("http.extensions")


def extensions(hub: Hub) -> Extensions:
    """The hub's registry of integration views, commands and panels."""
    found = hub.data.get(DATA_EXTENSIONS)
    if found is None:
        found = hub.data[DATA_EXTENSIONS] = Extensions()
    return found


# The core routes that serve what integrations added -----------------------------------


def _allowed(request: web.Request, role: Role) -> User:
    from hub.http.view import REQ_USER, ApiError

    user: User | None = request.get(REQ_USER)
    if user is None:
        raise ApiError(401, "unauthorized", "log in or send a bearer token")
    if not user.role.allows(role):
        raise ApiError(403, "forbidden", f"needs the {role} role; you are {user.role}")
    return user


@functools.cache
def _installed_domains() -> frozenset[str]:
    # Read once: the entry points are scanned from disk, and a request to an unknown path,
    # anyone's, must not cost that. Installing a package needs a restart anyway.
    from hub.plugins import PluginLoader

    return frozenset(PluginLoader.available())


def _installed(request: web.Request) -> bool:
    """Whether /api/<domain>/... names an installed integration that serves no view now."""
    from hub.http.view import KEY_HUB
    from hub.plugins import plugin_registry

    parts = request.path.split("/")
    domain = parts[2] if len(parts) > 2 else ""
    if not domain or any(view.domain == domain for view in extensions(request.app[KEY_HUB]).views):
        return False  # it runs: a path it does not serve is not found
    return (
        domain in _installed_domains() or domain in plugin_registry(request.app[KEY_HUB]).statuses()
    )


async def dispatch_view(request: web.Request) -> web.StreamResponse:
    """Answer /api/<domain>/... with the view an integration registered there, if any."""
    from hub.http.view import KEY_HUB, ApiError, _is_api_path

    found = extensions(request.app[KEY_HUB]).match(request.method, request.path)
    if found is None and await _is_api_path(request):
        # A core route serves this path with another method.
        raise ApiError(405, "method_not_allowed", f"{request.method} not allowed here")
    if found is None and _installed(request):
        # An integration's view while it does not run (not configured, its set-up failed, or
        # one it depends on is off): unavailable, as its own views answer for what they need.
        _allowed(request, Role.VIEWER)
        domain = request.path.split("/")[2]
        raise ApiError(503, "unavailable", f"the {domain} integration is not running")
    if found is None:
        raise ApiError(404, "no_endpoint", f"no API endpoint {request.method} {request.path}")
    if found is False:
        raise ApiError(405, "method_not_allowed", f"{request.method} not allowed here")
    assert not isinstance(found, bool)
    view, params = found
    _allowed(request, view.role)
    # The handler sees its own path parameters, not the dispatcher's.
    request.match_info.pop("tail", None)
    request.match_info.update(params)
    return await view.handler(request)


async def list_panels(request: web.Request) -> web.Response:
    """The dashboard panels integrations ship that the user's role may see."""
    from hub.http.view import KEY_HUB, json_response

    user = _allowed(request, Role.VIEWER)
    panels = extensions(request.app[KEY_HUB]).panels.values()
    return json_response([panel.as_dict() for panel in panels if user.role.allows(panel.role)])


async def panel_module(request: web.Request) -> web.StreamResponse:
    """The JavaScript module of a panel."""
    from hub.http.view import KEY_HUB, ApiError

    module = request.match_info["module"]
    key = (request.match_info["domain"], module.removesuffix(".js"))
    panel = extensions(request.app[KEY_HUB]).panels.get(key) if module.endswith(".js") else None
    if panel is None:
        raise ApiError(404, "not_found", f"no panel {key[0]}/{key[1]}")
    _allowed(request, panel.role)
    return web.FileResponse(
        panel.module,
        headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache"},
    )
