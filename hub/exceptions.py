"""The evhub error hierarchy: every error the hub raises derives from HubError."""

from __future__ import annotations


class HubError(Exception):
    """Root of every evhub error."""


class InvalidEntityIdError(HubError, ValueError):
    """An entity id is not of the form domain.object_id."""


class InvalidStateError(HubError, ValueError):
    """A state value is not a string of at most 255 characters."""


class ServiceExistsError(HubError):
    """A service is already registered under that domain and name by someone else."""

    def __init__(self, domain: str, service: str) -> None:
        super().__init__(
            f"service {domain}.{service} is already registered; its owner must remove it first"
        )
        self.domain = domain
        self.service = service


class ServiceNotFoundError(HubError):
    """No service is registered under that domain and name."""

    def __init__(self, domain: str, service: str) -> None:
        super().__init__(f"service {domain}.{service} not found")
        self.domain = domain
        self.service = service


class ServiceValidationError(HubError, ValueError):
    """Service data failed its schema."""


class CapabilityNotSupportedError(HubError):
    """A device was asked for a capability it does not declare."""


class DeviceNotFoundError(HubError):
    """A service target names a device or entity that does not exist."""


class HubStateError(HubError):
    """An operation is not allowed in the hub's current lifecycle state."""


class IntegrationError(HubError):
    """An integration could not be loaded or set up."""


class StorageError(HubError):
    """A store file cannot be read, parsed, migrated or written."""


class RegistryError(HubError, ValueError):
    """A device or entity registry change was refused (taken id, bad value, cycle)."""


class TemplateError(HubError):
    """A template could not be compiled or rendered."""
