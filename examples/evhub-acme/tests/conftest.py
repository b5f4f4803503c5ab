"""evhub's own pytest plugin: a hub fixture, the manual clock, the clean-up check."""

pytest_plugins = ["hub.testing"]
