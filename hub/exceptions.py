"""The evhub error hierarchy: every error the hub raises derives from HubError.

Each class carries the HTTP status and error code the API answers it with, so a view, a
WebSocket command or an integration's own view maps any hub error the same way.
"""

from __future__ import annotations


class HubError(Exception):
    """Root of every evhub error."""

    # The device or integration refused (a charger answered Rejected, timed out...).
    http_status: int = 502
    error_code: str = "failed"


class InvalidEntityIdError(HubError, ValueError):
    """An entity id is not of the form domain.object_id."""

    http_status = 400
    error_code = "invalid"


class InvalidStateError(HubError, ValueError):
    """A state value is not a string of at most 255 characters."""

    http_status = 400
    error_code = "invalid"


class ServiceExistsError(HubError):
    """A service is already registered under that domain and name by someone else."""

    http_status = 409
    error_code = "conflict"

    def __init__(self, domain: str, service: str) -> None:
        super().__init__(
            f"service {domain}.{service} is already registered; its owner must remove it first"
        )
        self.domain = domain
        self.service = service


class ServiceNotFoundError(HubError):
    """No service is registered under that domain and name."""

    http_status = 404
    error_code = "not_found"

    def __init__(self, domain: str, service: str) -> None:
        super().__init__(f"service {domain}.{service} not found")
        self.domain = domain
        self.service = service


class ServiceValidationError(HubError, ValueError):
    """Service data failed its schema."""

    http_status = 400
    error_code = "invalid"


class CapabilityNotSupportedError(HubError):
    """A device was asked for a capability it does not declare."""

    http_status = 400
    error_code = "invalid"


class DeviceNotFoundError(HubError):
    """A service target names a device or entity that does not exist."""

    http_status = 404
    error_code = "not_found"


class HubStateError(HubError):
    """An operation is not allowed in the hub's current lifecycle state."""

    http_status = 503
    error_code = "unavailable"


class IntegrationError(HubError):
    """An integration could not be loaded or set up."""


class StorageError(HubError):
    """A store file cannot be read, parsed, migrated or written."""


class RegistryError(HubError, ValueError):
    """A device or entity registry change was refused (taken id, bad value, cycle)."""

    http_status = 400
    error_code = "invalid"


class TemplateError(HubError):
    """A template could not be compiled or rendered."""


class ForbiddenError(HubError):
    """The user's role is too low for what they asked."""

    http_status = 403
    error_code = "forbidden"
