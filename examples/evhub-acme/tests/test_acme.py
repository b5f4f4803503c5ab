"""The ACME integration against a real hub: entities, chargers, history, API, CLI, panel."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from evhub_acme import AcmeWallbox

from hub.charger import get_charger
from hub.cli import main
from hub.core import Hub
from hub.exceptions import CapabilityNotSupportedError
from hub.http.extensions import extensions
from hub.plugins import SetupState, plugin_registry
from hub.testing import HubFactory, http_url, manual_clock_of

CONFIG = """
acme:
  stations:
    - id: garage
      name: Garage
      connectors: 2
    - id: street
      model: Wallbox 11
      boot_status: Faulted
"""


def _wallbox(hub: Hub, station: str) -> AcmeWallbox:
    from hub.registry import device_registry

    device = device_registry(hub).get_by_identifier(("acme", station))
    assert device is not None
    charger = get_charger(hub, device.id)
    assert isinstance(charger, AcmeWallbox)
    return charger


async def test_wallboxes_are_chargers_with_entities(hub_factory: HubFactory) -> None:
    hub = await hub_factory(CONFIG)
    states = {s.entity_id: s.state for s in hub.states.all() if "garage" in s.entity_id}
    assert sorted(states.values()) == ["Available", "Available"]
    garage = _wallbox(hub, "garage")
    await hub.services.call("charger", "reset", {"type": "soft"}, {"device_id": garage.device_id})
    assert [command for command, _ in garage.commands] == ["reset"]
    with pytest.raises(CapabilityNotSupportedError):
        await hub.services.call(
            "charger", "unlock_connector", {"connector_id": 1}, {"device_id": garage.device_id}
        )


async def test_what_the_set_up_reports_reaches_history_and_uptime(hub_factory: HubFactory) -> None:
    from integrations.recorder import get_recorder
    from integrations.uptime import engine_of

    hub = await hub_factory(CONFIG)
    recorder = get_recorder(hub)
    await recorder.flush()
    clock = manual_clock_of(hub)
    rows = await recorder.port_status(0, clock.time() + 1)
    assert sorted(row["status"] for row in rows) == ["Available", "Available", "Faulted"]
    [outage] = engine_of(hub).open_outages()
    assert outage.cause == "faulted"
    await clock.advance(600)
    assert engine_of(hub).open_outages() == [outage]


async def _get(session: aiohttp.ClientSession, url: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(url, headers=headers) as resp:
        body = await resp.read()
        return resp.status, body


async def test_view_command_service_and_panel_check_their_roles(
    hub_factory: HubFactory, api_user: Any
) -> None:
    hub = await hub_factory(CONFIG)
    url = http_url(hub)
    viewer, operator = await api_user(hub, "viewer"), await api_user(hub, "operator")
    async with aiohttp.ClientSession() as session:
        assert (await _get(session, f"{url}/api/acme/wallboxes", None))[0] == 401
        async with session.get(
            f"{url}/api/acme/wallboxes", headers={"Authorization": f"Bearer {viewer}"}
        ) as resp:
            assert resp.status == 200
            boxes = await resp.json()
        assert boxes["street"]["max_power_w"] == 11_000
        assert boxes["street"]["connectors"] == {"1": "Faulted"}
        status, _ = await _get(session, f"{url}/api/acme/wallboxes/nowhere", viewer)
        assert status == 404

        for token, expected in ((viewer, 403), (operator, 200)):
            async with session.post(
                f"{url}/api/services/acme/identify",
                json={"data": {"station": "garage"}},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == expected, await resp.text()
        assert _wallbox(hub, "garage").identified == 1

        async with session.ws_connect(f"{url}/api/websocket") as ws:
            assert (await ws.receive_json())["type"] == "auth_required"
            await ws.send_json({"type": "auth", "access_token": viewer})
            assert (await ws.receive_json())["type"] == "auth_ok"
            await ws.send_json({"id": 1, "type": "acme/wallboxes"})
            answer = await ws.receive_json()
            assert answer["success"] is True
            assert answer["result"]["garage"]["name"] == "Garage"

        async with session.get(
            f"{url}/api/panels", headers={"Authorization": f"Bearer {viewer}"}
        ) as resp:
            panels = await resp.json()
        assert panels == [
            {
                "domain": "acme",
                "name": "wallboxes",
                "title": "ACME wallboxes",
                "icon": "extension",
                "element": "acme-wallboxes-panel",
                "role": "viewer",
                "placement": "page",
                "url": "/api/panels/acme/wallboxes.js",
            }
        ]
        async with session.get(
            url + panels[0]["url"], headers={"Authorization": f"Bearer {viewer}"}
        ) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/javascript"
            assert 'customElements.define("acme-wallboxes-panel"' in await resp.text()


async def test_the_views_answer_what_the_openapi_document_says(
    hub_factory: HubFactory, api_user: Any
) -> None:
    import fastjsonschema

    hub = await hub_factory(CONFIG)
    url = http_url(hub)
    viewer = await api_user(hub, "viewer")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {viewer}"}) as session:
        async with session.get(f"{url}/api/openapi.json") as resp:
            paths = (await resp.json())["paths"]
        for path, concrete in (
            ("/api/acme/wallboxes", "/api/acme/wallboxes"),
            ("/api/acme/wallboxes/{station}", "/api/acme/wallboxes/street"),
        ):
            operation = paths[path]["get"]
            assert operation["x-evhub-role"] == "viewer"
            schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
            async with session.get(url + concrete) as resp:
                assert resp.status == 200
                answer = await resp.json()
            # Raises, naming the field, where the answer differs from the document.
            fastjsonschema.compile(schema)(answer)
    # The schema is no formality: a wallbox with its power as text is refused.
    with pytest.raises(fastjsonschema.JsonSchemaValueException, match="max_power_w"):
        fastjsonschema.compile(schema)({**answer, "max_power_w": "11 kW"})


def test_the_cli_command_comes_from_the_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["acme", "models"]) == 0
    assert "Wallbox 11\t11 kW" in capsys.readouterr().out


async def test_a_failed_set_up_leaves_nothing_behind(hub_factory: HubFactory) -> None:
    # Two stations with one id: the second one's entities clash after the first registered
    # its charger, entities and events.
    hub = await hub_factory("acme:\n  stations:\n    - id: twin\n    - id: twin\n")
    status = plugin_registry(hub).statuses()["acme"]
    assert status.state is SetupState.retrying
    assert "added twice" in (status.error or "")
    assert not hub.services.has_service("acme", "identify")
    added = extensions(hub)
    assert not [v for v in added.views if v.domain == "acme"]
    assert "acme/wallboxes" not in added.commands
    assert not added.panels
    from hub.registry import device_registry

    twin = device_registry(hub).get_by_identifier(("acme", "twin"))
    assert twin is not None
    assert get_charger(hub, twin.id) is None
