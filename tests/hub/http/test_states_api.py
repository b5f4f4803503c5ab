"""GET /api/states over HTTP: same answers as before, filters, pages, ETags, since polling."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from hub.core import Context, State
from hub.http.view import dumps
from hub.registry import DeviceKind, device_registry, entity_registry
from tests.hub.http.conftest import Api


def expected(state: State) -> dict[str, Any]:
    """StateJSON as the API contract defines it."""
    return {
        "entity_id": state.entity_id,
        "state": state.state,
        "attributes": dict(state.attributes),
        "last_changed": state.last_changed.isoformat(),
        "last_updated": state.last_updated.isoformat(),
    }


async def get(
    session: aiohttp.ClientSession, api: Api, path: str, **headers: str
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """GET as the viewer; the body read with the standard json module (big integers exact)."""
    async with session.get(
        api.url + path, headers={**api.headers("viewer"), **headers}
    ) as response:
        raw = await response.read()
        body = json.loads(raw) if raw else None
        return response.status, body, response


def fill(api: Api) -> None:
    hub = api.hub
    hub.states.set("sensor.power", "7400", {"unit_of_measurement": "W", "friendly_name": "P"})
    hub.states.set("sensor.energy", "12.5", {"unit_of_measurement": "kWh"})
    hub.states.set("switch.lock", "off")
    hub.states.set("binary_sensor.online", "on", {"device_class": "connectivity"})


async def test_unfiltered_answer_is_the_same_json_as_before(
    api: Api, session: aiohttp.ClientSession
) -> None:
    fill(api)
    async with session.get(api.url + "/api/states", headers=api.headers("viewer")) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        raw = await response.read()
    # Byte for byte what the API answered before states were cached: the list serialised.
    assert raw == dumps([expected(s) for s in api.hub.states.all()])
    status, body, _ = await get(session, api, "/api/states/sensor.power")
    assert status == 200
    assert body == expected(api.hub.states.get("sensor.power"))  # type: ignore[arg-type]


async def test_big_answer_is_gzipped_when_asked_and_still_the_same(
    api: Api, session: aiohttp.ClientSession
) -> None:
    for n in range(3000):
        api.hub.states.set(f"sensor.meter_{n}", str(n), {"unit_of_measurement": "Wh", "n": n})
    want = [expected(s) for s in api.hub.states.all()]
    url = api.url + "/api/states"
    headers = {**api.headers("viewer"), "Accept-Encoding": "gzip"}
    async with session.get(url, headers=headers, auto_decompress=False) as response:
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        raw = await response.read()
    assert json.loads(gzip.decompress(raw)) == want
    headers = {**api.headers("viewer"), "Accept-Encoding": "identity"}
    async with session.get(url, headers=headers, auto_decompress=False) as response:
        assert "Content-Encoding" not in response.headers
        assert int(response.headers["Content-Length"]) > 256 * 1024  # streamed in chunks
        assert json.loads(await response.read()) == want


async def test_non_ascii_and_big_numbers_round_trip(
    api: Api, session: aiohttp.ClientSession
) -> None:
    attributes = {
        "name": "Borne Gare de l'Est — 充电桩 🚗",
        "big": 2**70,
        "negative_big": -(2**80),
        "u64": 2**64 - 1,
        "i64": -(2**63),
        "float": 1.5e300,
        "nested": {"list": [2**65, "x", {"deep": 10**30}]},
        "looks_like_a_number": "\x00123\x00",
    }
    api.hub.states.set("sensor.borne", "42", attributes)
    api.hub.states.set("sensor.plain", "1")
    status, one, _ = await get(session, api, "/api/states/sensor.borne")
    assert status == 200
    assert one["attributes"] == attributes
    status, every, _ = await get(session, api, "/api/states")
    assert status == 200
    assert {s["entity_id"]: s["attributes"] for s in every}["sensor.borne"] == attributes
    assert [s["entity_id"] for s in every] == ["sensor.borne", "sensor.plain"]


async def test_filters_by_domain_entity_and_device(
    api: Api, session: aiohttp.ClientSession
) -> None:
    fill(api)
    hub = api.hub
    devices = device_registry(hub)
    station = devices.get_or_create(
        integration="test", identifiers={("test", "st1")}, kind=DeviceKind.STATION, name="St"
    )
    port = devices.get_or_create(
        integration="test",
        identifiers={("test", "st1:1")},
        kind=DeviceKind.CONNECTOR,
        name="St 1",
        via_device_id=station.id,
        connector_id=1,
    )
    entities = entity_registry(hub)
    on_station = entities.get_or_create(
        "sensor", "test", "st1-status", suggested_object_id="st1 status", device_id=station.id
    ).entity_id
    on_port = entities.get_or_create(
        "sensor", "test", "st1-1-power", suggested_object_id="st1 1 power", device_id=port.id
    ).entity_id
    hub.states.set(on_station, "Available")
    hub.states.set(on_port, "0")

    async def ids(query: str) -> list[str]:
        status, body, _ = await get(session, api, "/api/states?" + query)
        assert status == 200, body
        return [s["entity_id"] for s in body]

    assert await ids("domain=sensor") == [
        "sensor.power",
        "sensor.energy",
        on_station,
        on_port,
    ]
    assert await ids("domain=switch,binary_sensor") == ["switch.lock", "binary_sensor.online"]
    assert await ids("domain=switch&domain=binary_sensor") == [
        "switch.lock",
        "binary_sensor.online",
    ]
    assert await ids("entity_id=switch.lock,sensor.nothing,sensor.power") == [
        "switch.lock",
        "sensor.power",
    ]
    assert await ids(f"device_id={station.id}") == [on_station, on_port]
    assert await ids(f"device_id={port.id}") == [on_port]
    assert await ids(f"device_id={station.id}&entity_id={on_port},switch.lock") == [on_port]
    assert await ids("domain=light") == []

    status, body, _ = await get(session, api, "/api/states?device_id=nope")
    assert (status, body["error"]) == (404, "not_found")
    hostile = (
        "colour=red",
        "limit=0",
        "limit=x",
        "limit=100001",
        "cursor=garbage",
        "since=yesterday",
        "since=1.2",
        "domain=,",
        "entity_id=" + "x" * 300,
    )
    for bad in hostile:
        status, body, _ = await get(session, api, "/api/states?" + bad)
        assert (status, body["error"]) == (400, "invalid"), bad
    status, body, _ = await get(session, api, "/api/states?since=0&limit=2")
    assert status == 400
    assert "since" in body["message"]


async def follow_pages(
    session: aiohttp.ClientSession, api: Api, query: str
) -> tuple[list[str], list[str]]:
    """Walk the next links; return the ids seen and the cursors used."""
    seen: list[str] = []
    cursors: list[str] = []
    path: str | None = "/api/states?" + query
    while path is not None:
        status, body, response = await get(session, api, path)
        assert status == 200, body
        seen.extend(s["entity_id"] for s in body)
        link = response.headers.get("Link")
        if link is None:
            path = None
        else:
            assert link.endswith('>; rel="next"')
            path = link[1 : link.index(">")]
            cursors.append(parse_qs(urlsplit(path).query)["cursor"][0])
    return seen, cursors


async def test_pages_cover_every_state_once(api: Api, session: aiohttp.ClientSession) -> None:
    for n in range(10):
        api.hub.states.set(f"sensor.s{n}", str(n))
    api.hub.states.set("switch.x", "on")
    seen, cursors = await follow_pages(session, api, "limit=3")
    assert seen == [s.entity_id for s in api.hub.states.all()]
    assert len(cursors) == 3
    seen, _ = await follow_pages(session, api, "limit=4&domain=sensor")
    assert seen == [f"sensor.s{n}" for n in range(10)]
    seen, _ = await follow_pages(session, api, "limit=11")
    assert len(seen) == 11


async def test_a_page_after_removals_skips_nothing(
    api: Api, session: aiohttp.ClientSession
) -> None:
    for n in range(9):
        api.hub.states.set(f"sensor.s{n}", str(n))
    status, first, response = await get(session, api, "/api/states?limit=3")
    assert [s["entity_id"] for s in first] == ["sensor.s0", "sensor.s1", "sensor.s2"]
    link = response.headers["Link"]
    following = link[1 : link.index(">")]
    # Entities before the cursor go: the next page still starts after sensor.s2.
    api.hub.states.remove("sensor.s0")
    api.hub.states.remove("sensor.s1")
    status, second, _ = await get(session, api, following)
    assert status == 200
    assert [s["entity_id"] for s in second] == ["sensor.s3", "sensor.s4", "sensor.s5"]
    # The entity the cursor names goes: the client is told to start again, nothing skipped.
    api.hub.states.remove("sensor.s2")
    status, body, _ = await get(session, api, following)
    assert (status, body["error"]) == (410, "cursor_expired")


async def test_etag_304_until_a_state_changes(api: Api, session: aiohttp.ClientSession) -> None:
    fill(api)
    hub = api.hub
    status, _, response = await get(session, api, "/api/states")
    tag = response.headers["ETag"]
    assert status == 200
    status, body, response = await get(session, api, "/api/states", **{"If-None-Match": tag})
    assert (status, body) == (304, None)
    assert response.headers["ETag"] == tag
    # A write that changes nothing (only last_reported moves) keeps the answer the same.
    hub.states.set("sensor.power", "7400", {"unit_of_measurement": "W", "friendly_name": "P"})
    status, _, _ = await get(session, api, "/api/states", **{"If-None-Match": tag})
    assert status == 304
    hub.states.set("sensor.power", "7300", {"unit_of_measurement": "W", "friendly_name": "P"})
    status, body, response = await get(session, api, "/api/states", **{"If-None-Match": tag})
    assert status == 200
    assert response.headers["ETag"] != tag
    assert {s["entity_id"]: s["state"] for s in body}["sensor.power"] == "7300"
    tag = response.headers["ETag"]
    hub.states.remove("switch.lock")
    status, body, response = await get(session, api, "/api/states", **{"If-None-Match": tag})
    assert status == 200
    assert "switch.lock" not in {s["entity_id"] for s in body}


async def test_filtered_etag_ignores_changes_outside_the_filter(
    api: Api, session: aiohttp.ClientSession
) -> None:
    fill(api)
    hub = api.hub
    path = "/api/states?domain=switch"
    _, _, response = await get(session, api, path)
    tag = response.headers["ETag"]
    hub.states.set("sensor.energy", "13.0", {"unit_of_measurement": "kWh"})
    status, _, _ = await get(session, api, path, **{"If-None-Match": tag})
    assert status == 304
    hub.states.set("switch.new", "on")
    status, body, _ = await get(session, api, path, **{"If-None-Match": tag})
    assert status == 200
    assert [s["entity_id"] for s in body] == ["switch.lock", "switch.new"]


async def test_one_state_etag(api: Api, session: aiohttp.ClientSession) -> None:
    fill(api)
    path = "/api/states/switch.lock"
    _, body, response = await get(session, api, path)
    tag = response.headers["ETag"]
    status, _, _ = await get(session, api, path, **{"If-None-Match": tag})
    assert status == 304
    api.hub.states.set("switch.lock", "on")
    status, body, response = await get(session, api, path, **{"If-None-Match": tag})
    assert (status, body["state"]) == (200, "on")
    assert response.headers["ETag"] != tag


async def test_a_changed_state_is_never_served_from_the_cache(
    api: Api, session: aiohttp.ClientSession
) -> None:
    hub = api.hub
    hub.states.set("sensor.v", "1", {"a": 1})
    for value in range(2, 6):
        _, body, _ = await get(session, api, "/api/states")
        _, one, _ = await get(session, api, "/api/states/sensor.v")
        assert body == [expected(hub.states.get("sensor.v"))]  # type: ignore[arg-type]
        assert one == body[0]
        hub.states.set("sensor.v", str(value), {"a": value})
    # A state put back without any event (as a restore does) is seen too.
    _, _, response = await get(session, api, "/api/states")
    tag = response.headers["ETag"]
    old = hub.states.get("sensor.v")
    assert old is not None
    restored = State("sensor.v", "restored", {"a": "r"}, context=Context())
    assert hub.states.restore([restored], lambda present, saved: True) == 1
    status, body, _ = await get(session, api, "/api/states", **{"If-None-Match": tag})
    assert status == 200
    assert body == [expected(restored)]


async def test_since_answers_changes_and_removals(api: Api, session: aiohttp.ClientSession) -> None:
    fill(api)
    hub = api.hub
    status, first, _ = await get(session, api, "/api/states?since=0")
    assert status == 200
    assert first["reset"] is True
    assert first["removed"] == []
    assert first["states"] == [expected(s) for s in hub.states.all()]
    revision = first["revision"]

    status, quiet, _ = await get(session, api, f"/api/states?since={revision}")
    assert (quiet["reset"], quiet["states"], quiet["removed"]) == (False, [], [])

    hub.states.set("sensor.power", "1", {"unit_of_measurement": "W", "friendly_name": "P"})
    hub.states.set("light.new", "on")
    hub.states.remove("switch.lock")
    hub.states.set("binary_sensor.online", "on", {"device_class": "connectivity"})  # same
    status, changes, _ = await get(session, api, f"/api/states?since={quiet['revision']}")
    assert status == 200
    assert changes["reset"] is False
    assert changes["states"] == [
        expected(hub.states.get("sensor.power")),  # type: ignore[arg-type]
        expected(hub.states.get("light.new")),  # type: ignore[arg-type]
    ]
    assert changes["removed"] == ["switch.lock"]

    # Filters apply to changes and removals alike.
    hub.states.set("sensor.energy", "99", {"unit_of_measurement": "kWh"})
    hub.states.remove("light.new")
    path = f"/api/states?since={changes['revision']}&domain=light"
    status, lights, _ = await get(session, api, path)
    assert (lights["states"], lights["removed"]) == ([], ["light.new"])
    path = f"/api/states?since={changes['revision']}&domain=sensor"
    status, sensors, _ = await get(session, api, path)
    assert [s["entity_id"] for s in sensors["states"]] == ["sensor.energy"]
    assert sensors["removed"] == []

    # A revision of another run (or one never given) starts over with everything.
    status, again, _ = await get(session, api, "/api/states?since=0123abcd.5")
    assert again["reset"] is True
    assert [s["entity_id"] for s in again["states"]] == hub.states.entity_ids()


async def test_a_large_selection_follows_every_change(
    api: Api, session: aiohttp.ClientSession
) -> None:
    # Thousands of states: answers are made by comparing with the last answer's states.
    hub = api.hub
    for n in range(3000):
        hub.states.set(f"sensor.m{n}", "0", {"n": n})
    mirror: dict[str, Any] = {}
    revision = "0"
    tag = ""
    for round_ in range(1, 6):
        for n in range(round_, 3000, 97):
            hub.states.set(f"sensor.m{n}", str(round_), {"n": n, "round": round_})
        for n in range(round_ * 10, round_ * 10 + 5):
            hub.states.remove(f"sensor.m{n}")  # shifts every state after them
        hub.states.set(f"light.added_{round_}", "on")
        hub.states.restore(
            [State("sensor.m2999", f"restored {round_}", {"n": 2999})], lambda *_: True
        )
        want = [expected(s) for s in hub.states.all()]
        status, body, response = await get(session, api, "/api/states", **{"If-None-Match": tag})
        assert status == 200
        assert body == want
        tag = response.headers["ETag"]
        status, _, _ = await get(session, api, "/api/states", **{"If-None-Match": tag})
        assert status == 304
        status, changes, _ = await get(session, api, f"/api/states?since={revision}")
        assert status == 200
        if changes["reset"]:
            mirror.clear()
        for state in changes["states"]:
            mirror[state["entity_id"]] = state
        for entity_id in changes["removed"]:
            mirror.pop(entity_id, None)
        revision = changes["revision"]
        assert mirror == {s["entity_id"]: s for s in want}
        if round_ > 1:
            # Only what changed comes: about 31 writes, 5 removals, 1 addition, 1 restore.
            assert len(changes["states"]) < 40
            assert len(changes["removed"]) == 5
