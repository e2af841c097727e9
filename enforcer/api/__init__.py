"""HTTP API (FastAPI): signed webhook intake, orders, lifts and approvals, devices,
health and metrics. See ``docs/api.md``."""

from enforcer.api.app import create_app
from enforcer.api.engine import Engine

__all__ = ["Engine", "create_app"]
