"""The uptime integration (being split into modules: the engine is hub/uptime/engine.py)."""

from hub.uptime.engine import *  # noqa: F403
from hub.uptime.engine import _exclusion_target, _read_alive, _write_alive  # noqa: F401
