"""evhub's pytest plugin's fixtures for the security audit's tests."""

from hub.testing import (  # noqa: F401 (evhub's pytest plugin's fixtures)
    api_user,
    hub_factory,
)
