"""Every operation documents what it answers, and the real answers match.

The operations are read from the running server's route table and the views integrations
registered (what /api/openapi.json is built from), so a route added anywhere without a
response schema fails here. Every GET (and the safe POSTs below) is then called on a real
hub with a real OCPP charger, and each answer is validated against the documented schema
of its status and content type (an error against the Error schema).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator

from hub.http import DATA_HTTP, HttpServer
from hub.http.extensions import extensions
from hub.http.openapi import openapi_path
from hub.http.schemas import COMPONENTS, check_refs
from hub.registry import DeviceKind, device_registry, entity_registry
from hub.testing import Connect
from tests.hub.http.conftest import PING_HANDLER, STATION_A, Api, api_of, start_api
from tests.integrations.ocpp.conftest import (  # noqa: F401 - the fixture
    connect,
    start_transaction,
    stop_transaction,
    wait_state,
    ws_url,
)

EXTRA = STATION_A + PING_HANDLER
# Answers with no body of their own.
BODILESS = frozenset({"101", "204", "304"})
SUCCESS = re.compile(r"[123]\d\d")


@dataclass
class Hub:
    """A running hub, its data and the client."""

    api: Api
    http: aiohttp.ClientSession
    document: dict[str, Any]
    samples: dict[str, str]
    queries: dict[str, dict[str, str]]


def operations(api: Api) -> list[tuple[str, str]]:
    """Every (method, OpenAPI path) the server serves: its routes and integrations' views."""
    server: HttpServer = api.hub.data[DATA_HTTP]
    found = [
        (route.method, openapi_path(route.path)) for route in server.routes if route.method != "*"
    ]
    found.extend((view.method, view.path) for view in extensions(api.hub).views)
    return found


@pytest.fixture
async def hub(
    tmp_path: Path,
    connect: Connect,  # noqa: F811
) -> AsyncIterator[Hub]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>evhub</title>")
    (dist / "assets" / "app.js").write_text("export {};\n")
    instance = await start_api(tmp_path, f"  frontend_dir: {dist}\n", EXTRA)
    api = await api_of(instance)
    cp = await connect(ws_url(instance, "CP-A"))
    await cp.call("BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "X"})
    await cp.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    transaction_id = await start_transaction(cp)
    await stop_transaction(cp, transaction_id, 2000)
    devices = device_registry(instance)
    station = next(d for d in devices.devices(kind=DeviceKind.STATION) if d.integration == "ocpp")
    port = next(d for d in devices.descendants(station.id) if d.kind is DeviceKind.CONNECTOR)
    status_entity = next(
        e.entity_id
        for e in entity_registry(instance).entities_for_device(port.id)
        if e.original_name == "status"
    )
    await wait_state(instance, status_entity, "Available")
    async with aiohttp.ClientSession() as http:
        # A wrong token: a security event to list.
        async with http.get(f"{api.url}/api/states", headers={"Authorization": "Bearer x"}):
            pass
        async with http.get(f"{api.url}/api/openapi.json") as resp:
            document = await resp.json()
        async with http.get(f"{api.url}/api/panels", headers=api.headers("admin")) as resp:
            panels = await resp.json()
        panel = panels[0]["url"].rsplit("/", 2) if panels else ["", "none", "none.js"]
        samples = {
            "entity_id": status_entity,
            "device_id": station.id,
            "domain": panel[1],
            "module": panel[2],
            "start": datetime.now(UTC).date().isoformat(),
            "tail": "overview",
            "automation_id": "ping_handler",
            "charge_point_id": "CP-A",
            "event_type": "site_ping",
            "user_id": api.user_ids["viewer"],
        }
        queries = {
            "/api/history": {"entity_id": status_entity},
            "/api/statistics": {"device_id": station.id},
            "/api/sessions": {"station_id": station.id},
        }
        yield Hub(api, http, document, samples, queries)
    await cp.close()
    await instance.stop()


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    # The document's components ride along, so "#/components/schemas/X" resolves.
    return Draft202012Validator({**schema, "components": {"schemas": COMPONENTS}})


def _check(
    operation: dict[str, Any], where: str, status: int, content_type: str, body: bytes
) -> list[str]:
    """What is wrong with an answer, by the operation's documented responses."""
    responses: dict[str, Any] = operation["responses"]
    key = str(status)
    documented = responses.get(key) or responses.get(f"{key[0]}XX")
    if documented is None:
        return [f"{where}: status {status} is not documented ({sorted(responses)})"]
    content: dict[str, Any] = documented.get("content") or {}
    if not content:
        if body and key not in BODILESS:
            return [f"{where}: {status} documents no body but sent {body[:80]!r}"]
        return []
    media = content.get(content_type) or content.get("*/*")
    if media is None:
        return [f"{where}: {status} {content_type} is not documented ({sorted(content)})"]
    if content_type != "application/json":
        return []
    value = json.loads(body)
    errors = sorted(_validator(media["schema"]).iter_errors(value), key=str)
    return [
        f"{where}: {status} body at /{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in errors[:5]
    ]


def _successes(operation: dict[str, Any]) -> dict[str, Any]:
    """An operation's documented success responses by status."""
    return {k: v for k, v in operation["responses"].items() if SUCCESS.fullmatch(k)}


def _undocumented(document: dict[str, Any], method: str, path: str) -> list[str]:
    """What the document lacks of an operation: itself, a success answer, or the schema of a
    success answer's body."""
    where = f"{method} {path}"
    operation = document["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return [f"{where}: not in the OpenAPI document"]
    successes = _successes(operation)
    if not successes:
        return [f"{where}: no success response documented"]
    missing = []
    for status, response in successes.items():
        content = response.get("content")
        if not content and status not in BODILESS:
            missing.append(f"{where}: {status} has no content schema")
        for media, entry in (content or {}).items():
            if "schema" not in entry:
                missing.append(f"{where}: {status} {media} has no schema")
    return missing


async def test_every_operation_documents_its_success_answer(hub: Hub) -> None:
    missing: list[str] = []
    for method, path in operations(hub.api):
        missing.extend(_undocumented(hub.document, method, path))
    assert not missing, "operations without a documented answer:\n" + "\n".join(sorted(missing))


async def _checked_call(
    http: aiohttp.ClientSession,
    api: Api,
    operation: dict[str, Any],
    call: tuple[str, str, str | None, Any],
    expected: int,
    problems: list[str],
) -> tuple[str, bytes]:
    """Send a call (method, url, role, JSON body or None), assert its status, and add to
    problems what the answer does not match of the operation's documentation; the answer's
    content type and body."""
    method, url, role, body = call
    kwargs = {} if body is None else {"json": body}
    async with http.request(method, api.url + url, headers=api.headers(role), **kwargs) as resp:
        raw = await resp.read()
        where = f"{method} {url} as {role}"
        assert resp.status == expected, f"{where}: {resp.status} {raw[:300]!r}"
        problems.extend(_check(operation, where, resp.status, resp.content_type, raw))
        return resp.content_type, raw


async def test_the_document_is_sound() -> None:
    for name, schema in COMPONENTS.items():
        Draft202012Validator.check_schema(schema)
        assert check_refs(schema) == [], name


async def test_real_answers_match_the_documented_schemas(hub: Hub) -> None:
    api, document = hub.api, hub.document
    problems: list[str] = []
    succeeded: set[tuple[str, str]] = set()
    calls: list[tuple[str, str, dict[str, Any]]] = []
    for method, path in operations(api):
        if method == "GET" and path != "/api/websocket":
            calls.append((method, path, {"params": hub.queries.get(path, {})}))
    # The safe others: they change nothing the hub keeps but an audit line.
    calls += [
        ("POST", "/api/template", {"json": {"template": "{{ states('sensor.none') }}"}}),
        ("POST", "/api/template", {"json": {"template": "{{ 1 + }}"}}),
        ("POST", "/api/events/{event_type}", {"json": {"bay": 1}}),
        ("POST", "/api/events/{event_type}", {"json": [1]}),
        (
            "POST",
            "/api/services/{domain}/{service}",
            {"json": {"data": {"automation_id": "ping_handler"}}},
        ),
        ("POST", "/api/pending_chargers/{cp_id}/approve", {"json": {}}),
    ]
    samples = {**hub.samples}
    for method, path, kwargs in calls:
        operation = document["paths"].get(path, {}).get(method.lower())
        if operation is None:
            problems.append(f"{method} {path}: not in the OpenAPI document")
            continue
        url = path
        if path == "/api/services/{domain}/{service}":
            url = "/api/services/automation/trigger"
        for name in re.findall(r"\{(\w+)\}", path):
            url = url.replace(f"{{{name}}}", samples.get(name, f"no-such-{name}"))
        async with hub.http.request(
            method, api.url + url, headers=api.headers("admin"), **kwargs
        ) as resp:
            body = await resp.read()
            where = f"{method} {url}"
            problems.extend(_check(operation, where, resp.status, resp.content_type, body))
            if resp.status < 300:
                succeeded.add((method, path))
    # The WebSocket: its 101.
    async with hub.http.ws_connect(f"{api.url}/api/websocket") as ws:
        assert (await ws.receive_json())["type"] == "auth_required"
    assert not problems, "answers that do not match their documentation:\n" + "\n".join(problems)
    # Every core GET whose parameters are known here answered with a success, so its success
    # schema was checked (not only its error).
    core = {
        (m, p)
        for m, p, _ in calls
        if m == "GET"
        and p.startswith("/api/")
        and all(n in samples for n in re.findall(r"\{(\w+)\}", p))
    }
    for must in (
        ("GET", "/api/config"),
        ("GET", "/api/services"),
        ("GET", "/api/logbook"),
        ("GET", "/api/logbook/{start}"),
        ("GET", "/api/error_log"),
        ("GET", "/api/states"),
        ("GET", "/api/states/{entity_id}"),
        ("GET", "/api/chargers"),
        ("GET", "/api/chargers/{device_id}"),
        ("GET", "/api/history"),
        ("GET", "/api/sessions"),
        ("GET", "/api/audit"),
        ("GET", "/api/security/events"),
        ("POST", "/api/template"),
        ("POST", "/api/events/{event_type}"),
    ):
        assert must in core or must[0] == "POST"
        assert must in succeeded, f"{must} did not answer a success"


async def test_monitoring_answers_with_data_behind_them(hub: Hub) -> None:
    """Alerts, uptime and its exclusions, and the report downloads, with data in them.

    The GETs above meet them empty (no alert, no exclusion); here an alert is raised twice,
    acknowledged and resolved, exclusions of a port, a station and the site are added,
    listed, changed and removed, and the charger's month is reported, so every optional and
    nullable part of their schemas is met with a value, and their refusals are checked too.
    """
    api, document = hub.api, hub.document
    problems: list[str] = []
    station_id = hub.samples["device_id"]
    devices = device_registry(api.hub)
    port = next(d for d in devices.descendants(station_id) if d.kind is DeviceKind.CONNECTOR)

    async def call(
        method: str, path: str, url: str, role: str | None, expected: int, body: Any = None
    ) -> Any:
        operation = document["paths"][path][method.lower()]
        content_type, raw = await _checked_call(
            hub.http, api, operation, (method, url, role, body), expected, problems
        )
        if content_type == "application/json":
            return json.loads(raw)
        assert content_type == "text/csv", f"{method} {url} as {role}"
        return raw.decode()

    # ---- Alerts: raised (twice: updated), acknowledged by the operator, resolved ----------
    raised = {
        "key": "cabinet_door",
        "title": "Cabinet door open",
        "message": "The door of Station A's cabinet is open",
        "severity": "critical",
        "station_id": station_id,
        "device_id": port.id,
    }
    for _ in range(2):
        async with hub.http.post(
            f"{api.url}/api/services/alert/raise",
            headers=api.headers("operator"),
            json={"data": raised},
        ) as resp:
            assert resp.status == 200, await resp.text()
    listed = await call("GET", "/api/alerts", "/api/alerts?status=open", "viewer", 200)
    alert = next(a for a in listed if a["key"] == "cabinet_door")
    assert (alert["count"], alert["acknowledged_by_name"]) == (2, None)
    assert [h["action"] for h in alert["history"]] == ["raised", "updated"]
    alert_url = f"/api/alerts/{alert['id']}"
    acknowledge, resolve = "/api/alerts/{alert_id}/acknowledge", "/api/alerts/{alert_id}/resolve"
    done = await call(
        "POST", acknowledge, f"{alert_url}/acknowledge", "operator", 200, {"note": "On my way"}
    )
    assert done["result"]["state"] == "acknowledged"
    assert done["result"]["acknowledged_by"] == api.user_ids["operator"]
    listed = await call("GET", "/api/alerts", "/api/alerts?status=acknowledged", "viewer", 200)
    alert = next(a for a in listed if a["id"] == alert["id"])
    assert alert["acknowledged_by_name"] == "operator_user"
    assert alert["history"][-1]["note"] == "On my way"
    done = await call("POST", resolve, f"{alert_url}/resolve", "operator", 200, {})
    assert (done["result"]["state"], done["result"]["resolution"]) == ("resolved", "manual")
    listed = await call("GET", "/api/alerts", "/api/alerts?status=resolved", "viewer", 200)
    alert = next(a for a in listed if a["id"] == alert["id"])
    assert alert["resolved_by_name"] == "operator_user"
    assert alert["resolved_at"] >= alert["acknowledged_at"] >= alert["raised_at"]
    await call("GET", "/api/alerts", "/api/alerts", "viewer", 200)
    # Refusals: resolved already, no such alert, a viewer, a note that is no string, no user.
    await call("POST", resolve, f"{alert_url}/resolve", "operator", 409, {})
    await call("POST", acknowledge, "/api/alerts/no-such-alert/acknowledge", "admin", 404, {})
    await call("POST", acknowledge, f"{alert_url}/acknowledge", "viewer", 403, {})
    await call("POST", acknowledge, f"{alert_url}/acknowledge", "admin", 400, {"note": 5})
    await call("GET", "/api/alerts", "/api/alerts?status=closed", "viewer", 400)
    await call("GET", "/api/alerts", "/api/alerts", None, 401)

    # ---- Exclusions: a port's (open-ended), a station's and the site's --------------------
    now = datetime.now(UTC)
    an_hour_ago = (now - timedelta(hours=1)).isoformat()
    exclusions = "/api/uptime/exclusions"
    one = "/api/uptime/exclusions/{exclusion_id}"
    added = await call(
        "POST",
        exclusions,
        exclusions,
        "operator",
        201,
        {
            "device_id": port.id,
            "start": an_hour_ago,
            "end": None,
            "reason": "maintenance",
            "note": "Cable replaced",
        },
    )
    assert (added["port_id"], added["end"], added["note"]) == (port.id, None, "Cable replaced")
    station_wide = await call(
        "POST",
        exclusions,
        exclusions,
        "operator",
        201,
        {
            "device_id": station_id,
            "start": an_hour_ago,
            "end": now.isoformat(),
            "reason": "vandalism",
        },
    )
    assert (station_wide["station_id"], station_wide["target"]) == (station_id, "Station A")
    site = await call(
        "POST",
        exclusions,
        exclusions,
        "operator",
        201,
        {"start": an_hour_ago, "end": now.isoformat(), "reason": "utility_power"},
    )
    assert (site["port_id"], site["station_id"], site["target"]) == (None, None, "site")
    month = now.strftime("%Y-%m")
    listed = await call("GET", exclusions, exclusions, "viewer", 200)
    assert {x["exclusion_id"] for x in listed} >= {
        added["exclusion_id"],
        station_wide["exclusion_id"],
        site["exclusion_id"],
    }
    assert len(await call("GET", exclusions, f"{exclusions}?month={month}", "viewer", 200)) == 3
    changed = await call(
        "PATCH",
        one,
        f"{exclusions}/{added['exclusion_id']}",
        "operator",
        200,
        {"end": now.isoformat(), "note": None},
    )
    assert changed["end"] is not None
    assert changed["note"] is None
    removed = await call("DELETE", one, f"{exclusions}/{site['exclusion_id']}", "operator", 200)
    assert removed["exclusion_id"] == site["exclusion_id"]
    assert len(await call("GET", exclusions, exclusions, "viewer", 200)) == 2
    # Refusals: no such exclusion, unknown fields, nothing to change, a viewer, a bad reason.
    await call("PATCH", one, f"{exclusions}/no-such", "operator", 404, {"note": "x"})
    await call("DELETE", one, f"{exclusions}/no-such", "operator", 404)
    await call("PATCH", one, f"{exclusions}/{added['exclusion_id']}", "operator", 400, {})
    await call("POST", exclusions, exclusions, "operator", 400, {"colour": "red"})
    await call("POST", exclusions, exclusions, "viewer", 403, {"start": an_hour_ago})
    await call(
        "POST", exclusions, exclusions, "operator", 400, {"start": an_hour_ago, "reason": "rain"}
    )

    # ---- Uptime: this month of the charger's port, per month of the year, per day ---------
    uptime = await call("GET", "/api/uptime", f"/api/uptime?month={month}", "viewer", 200)
    [row] = [p for p in uptime["ports"] if p["port_id"] == port.id]
    assert row["uptime_pct"] is not None
    assert row["station_id"] == station_id
    assert row["connector"] == 1
    [station_row] = [s for s in uptime["stations"] if s["station_id"] == station_id]
    assert station_row["ports"] == 1
    assert uptime["fleet_uptime_pct"] is not None
    await call("GET", "/api/uptime", f"/api/uptime?station_id={station_id}", "viewer", 200)
    monthly = await call(
        "GET", "/api/uptime/monthly", f"/api/uptime/monthly?year={now.year}", "viewer", 200
    )
    [this_month] = [r for r in monthly["rows"] if r["port_id"] == port.id and r["month"] == month]
    assert this_month["uptime_pct"] is not None
    daily = await call("GET", "/api/uptime/daily", "/api/uptime/daily?days=3", "viewer", 200)
    assert (daily["ports"], len(daily["rows"])) == (1, 3)
    assert daily["rows"][-1]["uptime_pct"] is not None
    await call("GET", "/api/uptime/monthly", "/api/uptime/monthly?year=nineteen", "viewer", 400)
    await call("GET", "/api/uptime/daily", "/api/uptime/daily?days=1000", "viewer", 400)
    await call("GET", "/api/uptime", "/api/uptime?station_id=nowhere", "viewer", 404)

    # ---- The downloads: each a header and the port's (or the session's) rows --------------
    quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    half = f"{now.year}H{1 if now.month <= 6 else 2}"
    downloads = {
        "/api/reports/uptime.csv": f"/api/reports/uptime.csv?month={month}",
        "/api/reports/cec.csv": f"/api/reports/cec.csv?half={half}",
        "/api/reports/cec_intervals.csv": f"/api/reports/cec_intervals.csv?half={half}",
        "/api/reports/evchart.csv": f"/api/reports/evchart.csv?quarter={quarter}&module=2",
    }
    for path, url in downloads.items():
        text = await call("GET", path, url, "viewer", 200)
        header, *rows = text.strip().splitlines()
        assert "," in header, f"{url}: {text[:300]!r}"
        assert rows, f"{url} has no rows: {text[:300]!r}"
    for module in ("3", "4", "outages", "uptime"):
        url = f"/api/reports/evchart.csv?quarter={quarter}&module={module}"
        assert "," in await call("GET", "/api/reports/evchart.csv", url, "viewer", 200)
    await call("GET", "/api/reports/cec.csv", "/api/reports/cec.csv?half=2026H3", "viewer", 400)
    await call(
        "GET", "/api/reports/evchart.csv", "/api/reports/evchart.csv?quarter=2026Q1", "viewer", 400
    )
    await call("GET", "/api/reports/uptime.csv", "/api/reports/uptime.csv", None, 401)
    assert not problems, "answers that do not match their documentation:\n" + "\n".join(problems)
