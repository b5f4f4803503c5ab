"""evhub: a self-hosted monitoring hub for EV charging infrastructure."""

from __future__ import annotations

__version__ = "0.1.0"
