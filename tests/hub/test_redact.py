"""The redaction rules of hub.redact, and that the bus never carries a service's secrets."""

from __future__ import annotations

import voluptuous as vol

from hub.const import EVENT_CALL_SERVICE
from hub.core import Event, Hub, ServiceCall
from hub.redact import REDACTED, Secret, is_secret_name, redact, redact_text, secret_paths


def test_secret_key_names() -> None:
    secret = [
        "password", "Password", "smtp_password", "BasicAuthPassword", "passwd", "pass",
        "client_secret", "token", "access_token", "refreshToken", "api_key", "X-Api-Key",
        "apiKey", "AuthorizationKey", "authorization_key", "Authorization", "Cookie",
        "private_key", "credentials", "ssh-passphrase", "AWS_SECRET_ACCESS_KEY",
    ]  # fmt: skip
    plain = [
        "idToken", "id_token", "id_tag", "AuthorizationCacheEnabled", "AuthorizeRemoteTxRequests",
        "key", "value", "location", "username", "passenger", "bypass",
        "connector_id", "SecurityProfile", "keyboard",
    ]  # fmt: skip
    assert [name for name in secret if not is_secret_name(name)] == []
    assert [name for name in plain if is_secret_name(name)] == []


def test_redact_keeps_the_shape_and_drops_the_secrets() -> None:
    data = {
        "charge_point_id": "CP-1",
        "key": "AuthorizationKey",
        "value": "deadbeef",
        "variables": [
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "attributeValue": "s3cret-basic",
            },
            {
                "component": {"name": "Ctrlr"},
                "variable": {"name": "Interval"},
                "attributeValue": 60,
            },
        ],
        "location": "ftp://user:pa55@host:21/diag?x=1",
        "hook": "https://abcdef123@hooks.example/x?access_token=tok123&page=2",
        "headers": {"Authorization": "Bearer xyz", "Accept": "*/*"},
        "password_required": True,
        "smtp_password": None,
        "note": "no URL here, password: this is free text",
    }
    before = repr(data)
    out = redact(data)
    assert repr(data) == before  # the caller's data is untouched
    assert out["charge_point_id"] == "CP-1"
    assert out["key"] == "AuthorizationKey"
    assert out["value"] == REDACTED
    assert out["variables"][0]["attributeValue"] == REDACTED
    assert out["variables"][0]["variable"] == {"name": "BasicAuthPassword"}
    assert out["variables"][1]["attributeValue"] == 60
    assert out["location"] == f"ftp://user:{REDACTED}@host:21/diag?x=1"
    assert out["hook"] == f"https://{REDACTED}@hooks.example/x?access_token={REDACTED}&page=2"
    assert out["headers"] == {"Authorization": REDACTED, "Accept": "*/*"}
    assert out["password_required"] is True
    assert out["smtp_password"] is None
    assert out["note"] == data["note"]


def test_secret_fields_declared_in_a_schema() -> None:
    schema = vol.Schema(
        {
            vol.Required("pin"): Secret(str),
            vol.Optional("nested"): {vol.Optional("code"): vol.All(Secret(vol.Coerce(str)))},
            vol.Optional("items"): [{vol.Required("otp"): Secret()}],
            vol.Optional("name"): str,
        }
    )
    paths = secret_paths(schema)
    assert paths == {("pin",), ("nested", "code"), ("items", "otp")}
    assert schema({"pin": "1234", "nested": {"code": 42}}) == {
        "pin": "1234",
        "nested": {"code": "42"},
    }
    out = redact({"pin": "1234", "nested": {"code": 42}, "items": [{"otp": 9}], "name": "x"}, paths)
    assert out == {
        "pin": REDACTED, "nested": {"code": REDACTED}, "items": [{"otp": REDACTED}], "name": "x",
    }  # fmt: skip


def test_redact_text_removes_url_credentials_and_known_secrets() -> None:
    text = "upload to ftp://me:hunter22@host failed; code 987654 refused; pin 12 kept"
    assert redact_text(text, ["987654", "12"]) == (
        f"upload to ftp://me:{REDACTED}@host failed; code {REDACTED} refused; pin 12 kept"
    )


async def test_the_call_service_event_is_redacted_the_handler_gets_the_clear_data(
    hub: Hub,
) -> None:
    seen: list[dict[str, object]] = []
    fired: list[Event] = []

    def handler(call: ServiceCall) -> None:
        seen.append(dict(call.data))

    hub.services.register("lock", "open", handler, {vol.Required("code"): Secret(str)})
    hub.bus.listen(EVENT_CALL_SERVICE, fired.append)
    await hub.services.call("lock", "open", {"code": "s3cr3t!"})
    await hub.block_till_done()
    assert seen == [{"code": "s3cr3t!"}]
    assert fired[0].data["service_data"] == {"code": REDACTED}
