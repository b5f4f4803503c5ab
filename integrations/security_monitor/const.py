"""Names shared by the security monitor's modules."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "security_monitor"
# Fired on the bus for every detection (the automations' `event` trigger sees it); a
# detection about a station is also a `security_event` charger event (the `charger` trigger).
EVENT_DETECTION: Final = "security_detection"
# The charger event's type of a detection: "evhub.<rule>" (a charger's own types have no dot).
DETECTION_TYPE_PREFIX: Final = "evhub."
STORAGE_KEY: Final = "security_monitor.records"
STORAGE_VERSION: Final = 1

CONF_ENABLED: Final = "enabled"
CONF_COUNT: Final = "count"
CONF_WINDOW: Final = "window_seconds"
CONF_SEVERITY: Final = "severity"
CONF_KINDS: Final = "kinds"
CONF_COOLDOWN: Final = "cooldown_seconds"
CONF_INTERVAL: Final = "interval_minutes"
CONF_KEYS: Final = "keys"
CONF_VARIABLES: Final = "variables"
CONF_TYPES: Final = "types"
CONF_DAYS: Final = "days"
CONF_FILES: Final = "files"
CONF_INTERVAL_HOURS: Final = "interval_hours"
# What a driver fires when a charger presented a client certificate (profile 3):
# charge_point_id, not_after (POSIX seconds), subject.
EVENT_CLIENT_CERTIFICATE: Final = "ocpp_client_certificate"
# What a driver fires for each invalid message a charger sent: charge_point_id, remote,
# action, code.
EVENT_INVALID_MESSAGE: Final = "ocpp_invalid_message"

# The rules, by group (the README's list; each is a key of the config section).
RULE_DUPLICATE_CONNECTION: Final = "duplicate_connection"
RULE_ADDRESS_CHANGE: Final = "address_change"
RULE_BOOT_IDENTITY: Final = "boot_identity"
RULE_DOWNGRADE: Final = "downgrade"
RULE_RECONNECT_STORM: Final = "reconnect_storm"
RULE_CHARGER_AUTH: Final = "charger_auth_failures"
RULE_API_LOGIN: Final = "api_login_failures"
RULE_API_BAN: Final = "api_ban"
RULE_ACCOUNT_CHANGE: Final = "account_change"
RULE_UNORDERED_FIRMWARE: Final = "unordered_firmware"
RULE_UNORDERED_REBOOT: Final = "unordered_reboot"
RULE_METER_BACKWARDS: Final = "meter_backwards"
RULE_FOREIGN_STOP: Final = "foreign_stop"
RULE_CONFIG_CHANGE: Final = "config_change"
RULE_INVALID_MESSAGES: Final = "invalid_messages"
RULE_FLOOD: Final = "flood"
RULE_TLS_FAILURE: Final = "tls_failure"
RULE_CHARGER_REPORTED: Final = "charger_reported"
RULE_FIRMWARE_INTEGRITY: Final = "firmware_integrity"
RULE_CERTIFICATE_EXPIRY: Final = "certificate_expiry"
RULE_CERTIFICATE_REVOKED: Final = "certificate_revoked"

# Services whose call orders what would otherwise be suspicious: a reboot, a new firmware, a
# changed configuration key (whatever domain offers them: charger.*, ocpp.*, a vendor's).
ORDERS_REBOOT: Final = frozenset(
    {
        "reset",
        "update_firmware",
        "signed_update_firmware",
        "change_configuration",
        "set_variables",
        # A BootNotification the hub asked for: after an approval, or by TriggerMessage.
        "approve_charger",
        "trigger_message",
    }
)
ORDERS_FIRMWARE: Final = frozenset({"update_firmware", "signed_update_firmware"})
ORDERS_CONFIG: Final = frozenset(
    {"change_configuration", "set_variables", "set_network_profile", "rotate_password"}
)
