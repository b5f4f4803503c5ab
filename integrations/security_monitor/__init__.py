"""Security monitor: detection rules over the hub's public events, raising alerts.

Each rule watches what every integration fires anyway (security log entries, charger
events, service calls, audit entries, energy readings) and, when it fires, raises an alert
(the ``alert.raise`` service), fires ``security_detection`` on the bus and, about a station,
a ``security_event`` charger event of type ``evhub.<rule>`` that the automations' ``charger``
trigger sees. Every rule runs by default; each can be tuned or turned off::

    security_monitor:
      duplicate_connection: {enabled: true}                    # two sockets, one charge point id
      address_change: {window_seconds: 300}                    # a new address soon after the last
      boot_identity: {}                                        # serial, vendor or model changed
      downgrade: {}                                            # security-profile downgrade attempt
      reconnect_storm: {count: 10, window_seconds: 600}
      charger_auth_failures: {count: 5, window_seconds: 300}   # per charger and per address
      api_login_failures: {count: 5, window_seconds: 300}      # per address
      api_ban: {}
      account_change: {}                                       # new users, role changes, tokens
      unordered_firmware: {window_seconds: 604800}             # no update ordered in the window
      unordered_reboot: {window_seconds: 900}
      meter_backwards: {}                                      # meterStop < meterStart, register
      foreign_stop: {}
      config_change: {interval_minutes: 60, keys: [AuthorizationKey, SecurityProfile]}
      invalid_messages: {count: 10, window_seconds: 60}
      flood: {count: 1, window_seconds: 60}                    # rate limits, oversized frames
      tls_failure: {count: 3, window_seconds: 300}
      charger_reported: {}                                     # critical SecurityEventNotification
      firmware_integrity: {}                                   # bad signature or certificate
      certificate_expiry: {days: [30, 7], files: []}           # hub, listener, charger certs
      cooldown_seconds: 300                                    # one detection per subject per rule
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from hub.hookspecs import hookimpl
from hub.plugins import Integration, SetupContext
from integrations.security_monitor.const import (
    CONF_COOLDOWN,
    CONF_COUNT,
    CONF_DAYS,
    CONF_ENABLED,
    CONF_FILES,
    CONF_INTERVAL,
    CONF_INTERVAL_HOURS,
    CONF_KEYS,
    CONF_KINDS,
    CONF_SEVERITY,
    CONF_TYPES,
    CONF_VARIABLES,
    CONF_WINDOW,
    DOMAIN,
    RULE_ACCOUNT_CHANGE,
    RULE_ADDRESS_CHANGE,
    RULE_API_BAN,
    RULE_API_LOGIN,
    RULE_BOOT_IDENTITY,
    RULE_CERTIFICATE_EXPIRY,
    RULE_CERTIFICATE_REVOKED,
    RULE_CHARGER_AUTH,
    RULE_CHARGER_REPORTED,
    RULE_CONFIG_CHANGE,
    RULE_DOWNGRADE,
    RULE_DUPLICATE_CONNECTION,
    RULE_FIRMWARE_INTEGRITY,
    RULE_FLOOD,
    RULE_FOREIGN_STOP,
    RULE_INVALID_MESSAGES,
    RULE_METER_BACKWARDS,
    RULE_RECONNECT_STORM,
    RULE_TLS_FAILURE,
    RULE_UNORDERED_FIRMWARE,
    RULE_UNORDERED_REBOOT,
)

_SEVERITY = vol.In(("info", "warning", "critical"))
_COUNT = vol.All(vol.Coerce(int), vol.Range(min=1, max=1_000_000))
_SECONDS = vol.All(vol.Coerce(float), vol.Range(min=1, max=366 * 86400))
_KINDS = vol.All([vol.All(str, vol.Length(min=1, max=100))], vol.Length(max=100))
_NAME = vol.All(str, vol.Length(min=1, max=50))


def _rule(
    severity: str,
    *,
    count: int | None = None,
    window: float | None = None,
    kinds: list[str] | None = None,
    extra: dict[Any, Any] | None = None,
) -> Any:
    """A rule's schema: enabled, severity, and the thresholds it has (with their defaults)."""
    schema: dict[Any, Any] = {
        vol.Optional(CONF_ENABLED, default=True): bool,
        vol.Optional(CONF_SEVERITY, default=severity): _SEVERITY,
    }
    if count is not None:
        schema[vol.Optional(CONF_COUNT, default=count)] = _COUNT
    if window is not None:
        schema[vol.Optional(CONF_WINDOW, default=window)] = _SECONDS
    if kinds is not None:
        schema[vol.Optional(CONF_KINDS, default=kinds)] = _KINDS
    schema.update(extra or {})

    def shorthand(value: Any) -> Any:
        # `rule: false` turns it off, `rule: true` or nothing keeps the defaults.
        if isinstance(value, bool):
            return {CONF_ENABLED: value}
        return {} if value is None else value

    return vol.All(shorthand, vol.Schema(schema))


RULES: dict[str, Any] = {
    # Identity.
    RULE_DUPLICATE_CONNECTION: _rule("critical", kinds=["ocpp_duplicate_connection"]),
    RULE_ADDRESS_CHANGE: _rule("warning", window=300.0),
    RULE_BOOT_IDENTITY: _rule("critical"),
    RULE_DOWNGRADE: _rule("critical", kinds=["ocpp_security_profile_downgrade"]),
    RULE_RECONNECT_STORM: _rule("warning", count=10, window=600.0),
    # Authentication.
    RULE_CHARGER_AUTH: _rule(
        "warning",
        count=5,
        window=300.0,
        kinds=[
            "ocpp_bad_password",
            "ocpp_no_credentials",
            "ocpp_unknown_charger",
            "ocpp_bad_certificate",
        ],
    ),
    RULE_API_LOGIN: _rule("warning", count=5, window=300.0, kinds=["login_failed"]),
    RULE_API_BAN: _rule("warning", kinds=["login_banned"]),
    RULE_ACCOUNT_CHANGE: _rule("info"),
    # Integrity.
    RULE_UNORDERED_FIRMWARE: _rule("critical", window=7 * 86400.0),
    RULE_UNORDERED_REBOOT: _rule("warning", window=900.0),
    RULE_METER_BACKWARDS: _rule("warning"),
    RULE_FOREIGN_STOP: _rule("warning", kinds=["ocpp_foreign_stop", "ocpp_foreign_transaction"]),
    RULE_CONFIG_CHANGE: _rule(
        "critical",
        extra={
            vol.Optional(CONF_INTERVAL, default=60.0): vol.All(
                vol.Coerce(float), vol.Range(min=1, max=7 * 1440)
            ),
            vol.Optional(CONF_KEYS, default=["AuthorizationKey", "SecurityProfile"]): vol.All(
                [_NAME], vol.Length(max=50)
            ),
            vol.Optional(
                CONF_VARIABLES,
                default=[
                    {"component": "SecurityCtrlr", "variable": "SecurityProfile"},
                    {"component": "SecurityCtrlr", "variable": "BasicAuthPassword"},
                    {"component": "OCPPCommCtrlr", "variable": "NetworkConfigurationPriority"},
                ],
            ): vol.All(
                [vol.Schema({vol.Required("component"): _NAME, vol.Required("variable"): _NAME})],
                vol.Length(max=50),
            ),
        },
    ),
    RULE_FIRMWARE_INTEGRITY: _rule(
        "critical",
        kinds=[
            "ocpp_firmware_signature",
            "ocpp_firmware_certificate",
            "ocpp_firmware_verification",
        ],
    ),
    # Protocol.
    RULE_INVALID_MESSAGES: _rule(
        "warning",
        count=10,
        window=60.0,
        # Each invalid message a driver announces (EVENT_INVALID_MESSAGE), and these
        # security log kinds, count towards the rate.
        kinds=[
            "ocpp_bad_identity",
            "ocpp_no_subprotocol",
            "ocpp_too_many_ports",
            "ocpp_handshake_timeout",
        ],
    ),
    RULE_FLOOD: _rule(
        "warning", count=1, window=60.0, kinds=["ocpp_rate_limit", "ocpp_frame_too_large"]
    ),
    RULE_TLS_FAILURE: _rule(
        "warning",
        count=3,
        window=300.0,
        kinds=["ocpp_tls_failure"],
        extra={
            vol.Optional(
                CONF_TYPES,
                default=[
                    "InvalidTLSVersion",
                    "InvalidTLSCipherSuite",
                    "InvalidCentralSystemCertificate",
                    "InvalidCsmsCertificate",
                ],
            ): _KINDS
        },
    ),
    # Certificates: the hub's HTTPS one, the OCPP listeners' (and their CA), files named
    # here, and the client certificates chargers present (profile 3).
    RULE_CERTIFICATE_EXPIRY: _rule(
        "warning",
        extra={
            vol.Optional(CONF_DAYS, default=[30, 7]): vol.All(
                [vol.All(vol.Coerce(int), vol.Range(min=1, max=365))], vol.Length(min=1, max=5)
            ),
            vol.Optional(CONF_FILES, default=[]): vol.All([str], vol.Length(max=50)),
            vol.Optional(CONF_INTERVAL_HOURS, default=24.0): vol.All(
                vol.Coerce(float), vol.Range(min=1, max=24 * 31)
            ),
        },
    ),
    # A charger presenting a revoked client certificate, a connected one whose certificate a
    # new CRL revokes, or a hub certificate a listener's CRL lists (checked with the expiry).
    RULE_CERTIFICATE_REVOKED: _rule("critical", kinds=["ocpp_certificate_revoked"]),
    RULE_CHARGER_REPORTED: _rule(
        "critical",
        kinds=["ocpp_charger_security_event"],
        extra={vol.Optional("min_severity", default="critical"): _SEVERITY},
    ),
}

CONFIG_SCHEMA = vol.Schema(
    vol.All(
        lambda value: {} if value is None else value,
        {
            **{vol.Optional(name, default={}): schema for name, schema in RULES.items()},
            vol.Optional(CONF_COOLDOWN, default=300.0): vol.All(
                vol.Coerce(float), vol.Range(min=0, max=86400)
            ),
        },
    )
)


async def async_setup(ctx: SetupContext) -> bool:
    """Attach the rules to the bus and start the configuration poll."""
    from integrations.security_monitor.monitor import SecurityMonitor

    monitor = SecurityMonitor(ctx)
    await monitor.start()
    return True


@hookimpl
def evhub_integration() -> Integration:
    """Describe the security monitor."""
    from hub import __version__

    return Integration(
        domain=DOMAIN,
        name="Security monitor",
        version=__version__,
        setup=async_setup,
        config_schema=CONFIG_SCHEMA,
        # Alerts are raised through alert.raise; the rules must hear a driver's first events.
        dependencies=("alerts",),
        infrastructure=True,
    )
