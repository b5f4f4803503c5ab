"""Constants of the OCPP integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "ocpp"

CONF_LISTENERS: Final = "listeners"
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_PATH: Final = "path"
CONF_SECURITY_PROFILE: Final = "security_profile"
CONF_CERTFILE: Final = "certfile"
CONF_KEYFILE: Final = "keyfile"
CONF_CA_CERTS: Final = "ca_certs"
CONF_CRL_FILE: Final = "crl_file"
CONF_CHARGERS: Final = "chargers"
CONF_ID: Final = "id"
CONF_NAME: Final = "name"
CONF_SITE: Final = "site"
CONF_PASSWORD: Final = "password"
CONF_PASSWORD_HASH: Final = "password_hash"
CONF_UNKNOWN_CHARGERS: Final = "unknown_chargers"
CONF_HEARTBEAT_INTERVAL: Final = "heartbeat_interval"
CONF_OFFLINE_AFTER: Final = "offline_after"
CONF_CALL_TIMEOUT: Final = "call_timeout"
CONF_MAX_FRAME_SIZE: Final = "max_frame_size"
CONF_RATE_LIMIT: Final = "rate_limit"
CONF_RATE: Final = "rate"
CONF_BURST: Final = "burst"
CONF_ID_TAGS: Final = "id_tags"
CONF_AUTHORIZE_UNKNOWN: Final = "authorize_unknown_id_tags"
CONF_MAX_PORTS: Final = "max_ports"
CONF_TIMESTAMP_WINDOW: Final = "timestamp_window"
CONF_PAST_DAYS: Final = "past_days"
CONF_FUTURE_MINUTES: Final = "future_minutes"
CONF_HANDSHAKE_TIMEOUT: Final = "handshake_timeout"
CONF_DUPLICATE_CONNECTION: Final = "duplicate_connection"
CONF_MAX_PENDING: Final = "max_pending"
CONF_PENDING_EXPIRY: Final = "pending_expiry_hours"

# What a second connection with the id of an online charger gets (the OCPP hijack pattern).
DUPLICATE_REFUSE_NEW: Final = "refuse_new"  # unless the old socket fails a liveness probe
DUPLICATE_REPLACE: Final = "replace"
DUPLICATE_REFUSE_BOTH: Final = "refuse_both"

UNKNOWN_REJECT: Final = "reject"
UNKNOWN_PENDING: Final = "pending"
UNKNOWN_ACCEPT: Final = "accept"

DEFAULT_PORT: Final = 9000
DEFAULT_PATH: Final = "/ocpp"
DEFAULT_HEARTBEAT_INTERVAL: Final = 60
DEFAULT_OFFLINE_AFTER: Final = 2.5
DEFAULT_CALL_TIMEOUT: Final = 30.0
DEFAULT_MAX_FRAME_SIZE: Final = 64 * 1024
DEFAULT_RATE: Final = 20.0
DEFAULT_BURST: Final = 60
DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
DEFAULT_MAX_PENDING: Final = 50
DEFAULT_PENDING_EXPIRY_HOURS: Final = 168.0
# How long a connected charger has to answer a ping when a second socket claims its id.
PROBE_TIMEOUT: Final = 5.0

# Connectivity states of a station.
ONLINE: Final = "online"
OFFLINE: Final = "offline"
PENDING: Final = "pending"

# Fired when a charger presented a client certificate (profile 3): charge_point_id,
# subject, not_after (POSIX seconds); the security monitor watches it for expiry.
EVENT_CLIENT_CERTIFICATE: Final = "ocpp_client_certificate"

# Fired for each invalid message a charger sent (schema, range, framing): charge_point_id,
# remote, action, code; the security monitor counts their rate.
EVENT_INVALID_MESSAGE: Final = "ocpp_invalid_message"

# Security event kinds.
SEC_UNKNOWN_CHARGER: Final = "ocpp_unknown_charger"
SEC_BAD_PASSWORD: Final = "ocpp_bad_password"
SEC_NO_CREDENTIALS: Final = "ocpp_no_credentials"
SEC_BAD_CERTIFICATE: Final = "ocpp_bad_certificate"
SEC_NO_SUBPROTOCOL: Final = "ocpp_no_subprotocol"
SEC_FRAME_TOO_LARGE: Final = "ocpp_frame_too_large"
SEC_RATE_LIMIT: Final = "ocpp_rate_limit"
SEC_OUT_OF_RANGE: Final = "ocpp_value_out_of_range"
SEC_BAD_IDENTITY: Final = "ocpp_bad_identity"
SEC_DOWNGRADE: Final = "ocpp_security_profile_downgrade"
SEC_DUPLICATE_CONNECTION: Final = "ocpp_duplicate_connection"
SEC_TOO_MANY_PORTS: Final = "ocpp_too_many_ports"
SEC_PENDING_FULL: Final = "ocpp_pending_list_full"
SEC_HANDSHAKE_TIMEOUT: Final = "ocpp_handshake_timeout"
SEC_CHARGER_REPORTED: Final = "ocpp_charger_security_event"
SEC_REJECTED_PENDING: Final = "ocpp_charger_rejected"
SEC_FOREIGN_TRANSACTION: Final = "ocpp_foreign_transaction"

# Every ocpp.* service the integration registers, so check-config can name an unknown one
# (tests/integrations/ocpp/test_services_declared.py keeps the list true).
SERVICES: Final = (
    "add_id_token",
    "approve_charger",
    "cancel_reservation",
    "change_availability",
    "change_configuration",
    "clear_cache",
    "clear_charging_profile",
    "clear_display_message",
    "clear_variable_monitoring",
    "customer_information",
    "data_transfer",
    "delete_certificate",
    "extended_trigger_message",
    "get_base_report",
    "get_charging_profiles",
    "get_composite_schedule",
    "get_configuration",
    "get_customer_information",
    "get_diagnostics",
    "get_display_messages",
    "get_firmware_updates",
    "get_id_tokens",
    "get_installed_certificate_ids",
    "get_local_list_version",
    "get_log",
    "get_monitoring_report",
    "get_monitors",
    "get_report",
    "get_stored_report",
    "get_transaction_status",
    "get_variables",
    "install_certificate",
    "publish_firmware",
    "reject_charger",
    "reload_tls",
    "remove_id_token",
    "renew_certificate",
    "reservations",
    "reserve_now",
    "reset",
    "send_local_list",
    "set_charging_profile",
    "set_display_message",
    "set_monitoring_base",
    "set_monitoring_level",
    "set_network_profile",
    "set_variable_monitoring",
    "set_variables",
    "start_transaction_with_profile",
    "trigger_message",
    "unlock_connector",
    "unpublish_firmware",
    "update_firmware",
    "update_id_token",
    "update_password",
)
